/* The live challenge on the "My face" page and a takedown notice's status page: ask the service for a challenge, show its poses, record the selfie with
   getUserMedia + MediaRecorder (a second facing the camera, 1.2 seconds per pose, a second back), upload
   it with the challenge id. No library; the CSRF token comes from the page's <meta name="csrf-token">.
   The camera is asked for about 640x480 at 24 frames a second (ideal values: a camera that cannot is used
   as it is): the live check works on frames of at most 640 px and needs 10 frames a second, and every
   larger or faster frame costs a weak laptop encoding time. When the machine is busy the browser drops
   frames; the service times the recording by its frames' timestamps, so that only lowers the frame rate. */
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root) { return; }
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var startBtn = document.getElementById("live-start");
  var recBtn = document.getElementById("live-record");
  var poses = document.getElementById("live-poses");
  var status = document.getElementById("live-status");
  var preview = document.getElementById("live-preview");
  var LABELS = {left: "Turn your head to your left", right: "Turn your head to your right", up: "Look up",
                down: "Look down", center: "Face the camera"};
  var challenge = null;
  function say(text) { status.textContent = text; }
  function sleep(ms) { return new Promise(function (res) { setTimeout(res, ms); }); }
  // H.264 in MP4 first, then VP9: a recording that drops frames on a busy laptop fails the live check, and in
  // Chromium, on 2 busy cores, 5.6 s of 640x480 at 20 fps cost 0.33 s of CPU in H.264 (109-111 of 111 frames
  // kept), 0.9 s in VP9 (86-111 kept) and 2.3 s in VP8 (a median of 44 kept): `python -m bench recorder`,
  // docs/performance.md section 6. A bare "video/mp4" comes last: Chromium 156 records it as VP9 in MP4. Other
  // browsers take the first type they support (Firefox: WebM; Safari: MP4). Each is recorded in Chromium by
  // tests/browser/test_live_recorder.py. The service reads the container from the bytes, never from the
  // upload's name or type; the name still says what was recorded (selfie.webm or selfie.mp4).
  var CAMERA = {width: {ideal: 640}, height: {ideal: 480}, frameRate: {ideal: 24}};
  var TYPES = ["video/mp4;codecs=avc1", "video/webm;codecs=vp9", "video/webm;codecs=vp8", "video/webm", "video/mp4"];
  var NAMES = {"video/webm": "selfie.webm", "video/mp4": "selfie.mp4"};
  function pickType() {
    for (var i = 0; i < TYPES.length; i++) {
      if (MediaRecorder.isTypeSupported(TYPES[i])) { return TYPES[i]; }
    }
    return "";
  }
  function fileName(mime) { return NAMES[mime.split(";")[0].trim().toLowerCase()] || ""; }  // "" if not ours
  // No recorder, or one that records none of the types the service reads: say so before a challenge is spent.
  var type = window.MediaRecorder && navigator.mediaDevices ? pickType() : "";
  if (!type) {
    say(root.dataset.noRecorder || "This browser cannot record video here; enroll with photos or a video file below instead.");
    root.dataset.recorder = "none";
    startBtn.disabled = true;
    return;
  }
  root.dataset.recorder = type;
  // Every way an attempt can end short of a pass or a new page: the camera released, one plain sentence in the
  // status, Start usable again and Record hidden until Start has drawn a new challenge.
  function release(stream) {
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); }
    preview.srcObject = null;
    preview.hidden = true;
  }
  function startAgain(text) {
    say(text);
    startBtn.disabled = false;
    recBtn.hidden = true;
    recBtn.disabled = false;
  }
  // What an error says about itself, if anything: a DOMException's message, else its name.
  function reason(err) { return err ? String(err.message || err.name || "") : ""; }
  var NETWORK = "the network failed (the service could not be reached). Check your connection, then press Start";
  startBtn.addEventListener("click", async function () {
    startBtn.disabled = true;
    var r;
    try {
      r = await fetch(root.dataset.challengeUrl, {method: "POST", headers: {"X-CSRFToken": csrf}});
      if (r.ok) { challenge = await r.json(); }
    } catch (e) {  // a SyntaxError: an answer came but not the challenge (a proxy's page); else no answer came
      var unread = "the service's answer could not be read. Press Start";
      say("The live check could not start: " + (e.name === "SyntaxError" ? unread : NETWORK) + " again.");
      startBtn.disabled = false;
      return;
    }
    if (!r.ok) { say("The live check could not start (error " + r.status + "). Try again."); startBtn.disabled = false; return; }
    root.dataset.challenge = challenge.id;
    poses.textContent = "";
    challenge.poses.forEach(function (p) {
      var li = document.createElement("li");
      li.textContent = LABELS[p] || p;
      li.dataset.pose = p;
      poses.appendChild(li);
    });
    recBtn.hidden = false;
    recBtn.focus();
    say("Your poses are listed above, in order. Press Record, then follow each pose as it is highlighted.");
  });
  recBtn.addEventListener("click", async function () {
    recBtn.disabled = true;
    var stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({video: CAMERA, audio: false});
    } catch (e) {
      say("The camera could not be opened (" + e.name + "). " + (root.dataset.noCamera || "Allow the camera, or enroll with photos below."));
      recBtn.disabled = false;
      return;
    }
    preview.srcObject = stream;
    preview.hidden = false;
    var chunks = [];
    // A recording cut short (the recorder's `error`; the camera's track `ended`: unplugged, or taken by another
    // app; the recorder stopping before the page stops it) is never uploaded: the service would refuse it and
    // the challenge would be spent for nothing.
    var broke = null, stopping = false, done = false, onBreak;
    var broken = new Promise(function (res) { onBreak = res; });
    function fail(why) { if (broke === null && !done) { broke = why; onBreak(); } }
    var rec, stopped;
    try {
      rec = new MediaRecorder(stream, {mimeType: type});
      rec.ondataavailable = function (e) { if (e.data && e.data.size) { chunks.push(e.data); } };
      rec.onerror = function (e) {
        var why = reason(e.error) || (e.message ? String(e.message) : "");
        fail("the browser's recorder failed" + (why ? " (" + why + ")" : ""));
      };
      stopped = new Promise(function (res) { rec.onstop = res; });
      rec.addEventListener("stop", function () { if (!stopping) { fail("the browser stopped the recording"); } });
      stream.getTracks().forEach(function (t) {
        t.addEventListener("ended", function () {
          fail("the camera was turned off, unplugged or taken by another app");
        });
      });
      rec.start(250);
    } catch (e) {
      done = true;
      release(stream);
      var why = reason(e);
      startAgain("The recording could not start: the browser's recorder failed" + (why ? " (" + why + ")" : "") +
                 ". Nothing was sent. Press Start for a new challenge.");
      return;
    }
    var items = Array.prototype.slice.call(poses.children);
    function light(i) { items.forEach(function (li, j) { li.classList.toggle("now", j === i); }); }
    function step(ms) { return Promise.race([sleep(ms), broken]); }  // a pose's time, cut short by a failure
    say("Recording: face the camera.");
    await step(1000);
    for (var i = 0; i < items.length && broke === null; i++) {
      light(i);
      say("Recording: " + items[i].textContent + ".");
      await step(1200);
    }
    if (broke === null) {
      light(-1);
      say("Recording: face the camera again.");
      await step(1000);
    }
    if (broke === null) {
      stopping = true;
      rec.stop();
      await Promise.race([stopped, broken]);  // an error while the recorder finishes still spoils the recording
    }
    done = true;
    light(-1);
    if (broke !== null) {
      stopping = true;
      try { if (rec.state !== "inactive") { rec.stop(); } } catch (e) { /* already stopped by its failure */ }
      release(stream);
      startAgain("The recording stopped: " + broke + ". Nothing was sent. Press Start for a new challenge.");
      return;
    }
    release(stream);
    var mime = rec.mimeType || type;  // what the browser recorded, e.g. "video/mp4;codecs=avc1.64001e"
    say("Uploading your recording…");
    var form = new FormData();
    form.append("csrf_token", csrf);
    form.append("challenge", challenge.id);
    form.append("mirrored", "false");
    form.append("media", new Blob(chunks, {type: mime}), fileName(mime) || fileName(type));
    var up, page;
    try {
      up = await fetch(root.dataset.enrollUrl, {method: "POST", body: form});
      if (up.ok && up.redirected) { window.location.assign(up.url); return; }
      page = await up.text();
    } catch (e) {
      startAgain("Your recording could not be sent: " + NETWORK + " for a new challenge.");
      return;
    }
    var doc = new DOMParser().parseFromString(page, "text/html");
    var alert = doc.querySelector("[role=alert]");
    startAgain("The live check did not pass: " + (alert ? alert.textContent.trim() : "error " + up.status) +
               " Press Start for a new challenge.");
  });
}());
