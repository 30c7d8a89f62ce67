"""The pages (governance/pages) through Flask's test client: the session cookie, CSRF, the guard on every page, and
the verdicts of the verify page. The browser walks the same stories in tests/browser."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from governance.pages import site

TESTDATA = Path(__file__).resolve().parents[3] / "shared" / "testdata"


def csrf(client: Any, path: str = "/sign-in") -> str:
    html = client.get(path).get_data(as_text=True)
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, html[:400]
    return m.group(1)


def sign_in(client: Any, token: str) -> Any:
    return client.post("/sign-in", data={"token": token, "csrf_token": csrf(client), "next": "/"})


def post_file(client: Any, path: str, name: str, data: bytes, **form: str) -> Any:
    fields: MultiDict[str, Any] = MultiDict(form)
    fields.add("media", FileStorage(io.BytesIO(data), filename=name))
    boundary, body = encode_multipart(fields)
    return client.post(path, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def test_the_vendored_htmx_is_the_pinned_file() -> None:
    data = (Path(site.__file__).parent / "static" / site.HTMX_FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == site.HTMX_SHA256


def test_home_is_served_at_the_root(api) -> None:
    r = api.client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert 'href="#main"' in html and '<main id="main"' in html and "Verify a file" in html
    js = api.client.get(f"/static/pages/{site.HTMX_FILE}")
    try:
        assert js.status_code == 200 and hashlib.sha256(js.data).hexdigest() == site.HTMX_SHA256
    finally:
        js.close()


def test_sign_in_sets_a_hardened_cookie_the_api_refuses_and_sign_out_revokes_it(api) -> None:
    token = api.account("ada")
    client = api.client
    r = sign_in(client, token)
    assert r.status_code == 303 and r.headers["Location"] == "/"
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(f"{site.COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over HTTPS it is Secure (below)
    assert "Signed in as <strong>ada</strong>" in client.get("/").get_data(as_text=True)
    # the bearer API never takes the cookie
    me = client.get("/v1/me")
    assert me.status_code == 401 and me.mimetype == "application/problem+json"
    stolen = client.get_cookie(site.COOKIE).value
    # sign out ends the session on the server: a copy of the cookie kept elsewhere no longer signs in
    out = client.post("/sign-out", data={"csrf_token": csrf(client, "/")})
    assert out.status_code == 303
    other = api.app.test_client()
    other.set_cookie(site.COOKIE, stolen)
    assert "Signed in as" not in other.get("/").get_data(as_text=True)


def test_rotating_or_revoking_the_token_ends_the_browser_sessions_it_opened(api) -> None:
    """A leaked token is replaced (by its holder or an admin): the sessions signed in with it end too."""
    token = api.account("ada")
    admin = api.account("root", "admin")
    for rotate in (lambda t: api.call("POST", "/v1/me/token", t).get_json()["token"],
                   lambda t: (api.call("POST", "/v1/accounts/ada/token", admin), None)[1]):
        client = api.app.test_client()
        assert sign_in(client, token).status_code == 303
        assert "Signed in as <strong>ada</strong>" in client.get("/").get_data(as_text=True)
        new = rotate(token)
        assert "Signed in as" not in client.get("/").get_data(as_text=True)
        if new is None:
            break
        token = new


def test_the_cookie_is_secure_over_https(api) -> None:
    token = api.account("bea")
    client = api.app.test_client()
    html = client.get("/sign-in", base_url="https://localhost").get_data(as_text=True)
    tok = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    r = client.post("/sign-in", data={"token": token, "csrf_token": tok}, base_url="https://localhost")
    assert r.status_code == 303 and "Secure" in r.headers["Set-Cookie"]


@pytest.mark.parametrize("token", ["", "not-a-token"])
def test_a_wrong_token_shows_the_form_again(api, token) -> None:
    r = sign_in(api.client, token)
    assert r.status_code == 401 and 'role="alert"' in r.get_data(as_text=True)
    assert api.client.get_cookie(site.COOKIE) is None or "Signed in" not in api.client.get("/").get_data(as_text=True)


def test_every_form_needs_its_csrf_token(api) -> None:
    token = api.account("cy")
    r = api.client.post("/sign-in", data={"token": token})
    assert r.status_code == 400 and "security token" in r.get_data(as_text=True)
    r = api.client.post("/sign-in", data={"token": token, "csrf_token": "forged"})
    assert r.status_code == 400
    assert "Signed in" not in api.client.get("/").get_data(as_text=True)


def test_sign_in_goes_back_only_to_a_path_on_this_site(api) -> None:
    token = api.account("dee")
    r = api.client.post("/sign-in", data={"token": token, "csrf_token": csrf(api.client),
                                          "next": "//evil.example/x"})
    assert r.status_code == 303 and r.headers["Location"] == "/"


def test_every_page_route_is_guarded(api) -> None:
    pages = {r.rule: api.app.view_functions[r.endpoint] for r in api.app.url_map.iter_rules()
             if r.endpoint.startswith("pages.") and r.endpoint != "pages.static"}
    assert {"/", "/sign-in", "/sign-out", "/verify"} <= set(pages)
    for rule, view in pages.items():
        assert getattr(view, "page_guarded", False), rule


def test_a_photo_from_elsewhere_is_of_unknown_origin(api) -> None:
    tok = csrf(api.client, "/verify")
    html = post_file(api.client, "/verify", "obama.jpg", (TESTDATA / "faces" / "obama.jpg").read_bytes(),
                     csrf_token=tok).get_data(as_text=True)
    assert 'data-verdict="unknown"' in html and "Unknown origin" in html and "Transparency log" not in html


def test_verify_page_without_a_file_says_so_and_stores_nothing(api) -> None:
    tok = csrf(api.client, "/verify")
    r = api.client.post("/verify", data={"csrf_token": tok})
    assert r.status_code == 422 and "media" in r.get_data(as_text=True)
    r = post_file(api.client, "/verify", "x.txt", b"plain words", csrf_token=tok)
    assert r.status_code == 415


def test_verify_page_tells_a_released_video_from_a_tampered_copy(api) -> None:
    token = api.account("eve")
    gen = api.generate(token, "a lighthouse at dusk")
    assert api.wait(token, gen["id"])["state"] == "released"
    video = api.download(token, gen["id"])
    before = sorted(p.name for p in api.rt.settings.data_dir.rglob("*") if p.is_file())
    tok = csrf(api.client, "/verify")
    html = post_file(api.client, "/verify", "clip.mp4", video, csrf_token=tok).get_data(as_text=True)
    assert 'data-verdict="released"' in html and "Made here and released" in html
    assert 'data-proof="ok"' in html and gen["id"] in html
    tampered = bytearray(video)
    mid = len(tampered) // 2
    tampered[mid:mid + 64] = bytes(b ^ 0xFF for b in tampered[mid:mid + 64])
    html = post_file(api.client, "/verify", "clip.mp4", bytes(tampered), csrf_token=tok).get_data(as_text=True)
    assert 'data-verdict="tampered"' in html and "Tampered" in html
    after = sorted(p.name for p in api.rt.settings.data_dir.rglob("*") if p.is_file())
    assert [p for p in after if p not in before and not p.startswith("consentgate.db")] == []


def test_a_creator_generates_watches_and_downloads_from_the_pages(api) -> None:
    token = api.account("fay")
    sign_in(api.client, token)
    assert 'data-left="30"' in api.client.get("/generate").get_data(as_text=True)
    tok = csrf(api.client, "/generate")
    r = api.client.post("/generate", data={"prompt": "a red kite over hills", "seed": "3", "csrf_token": tok})
    assert r.status_code == 303
    path = r.headers["Location"]
    gen_id = path.rsplit("/", 1)[1]
    html = api.client.get(path).get_data(as_text=True)
    assert "a red kite over hills" in html
    state = api.wait(token, gen_id)["state"]
    assert state == "released"
    status = api.client.get(f"{path}/status").get_data(as_text=True)
    assert 'data-state="released"' in status and "hx-trigger" not in status  # the polling stops
    video = api.client.get(f"{path}/video")
    try:
        assert video.status_code == 200 and video.mimetype == "video/mp4"
        assert video.data == api.download(token, gen_id)
    finally:
        video.close()


def test_the_generate_page_shows_why_a_request_is_refused_or_blocked(api) -> None:
    token = api.account("gus")
    sign_in(api.client, token)
    tok = csrf(api.client, "/generate")
    r = api.client.post("/generate", data={"prompt": "", "csrf_token": tok})
    assert r.status_code == 422 and 'role="alert"' in r.get_data(as_text=True)
    r = api.client.post("/generate", data={"prompt": "x", "seed": "many", "csrf_token": tok})
    assert r.status_code == 422 and "whole number" in r.get_data(as_text=True)
    r = api.client.post("/generate", data={"prompt": "a portrait", "other_likenesses": "lk_0000000000000000",
                                           "csrf_token": tok})
    page = api.client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'data-state="blocked"' in page and 'id="reasons"' in page
    assert api.client.get(r.headers["Location"] + "/video").status_code == 409


def test_pages_for_an_account_send_the_anonymous_to_sign_in_and_refuse_other_roles(api) -> None:
    r = api.client.get("/generate")
    assert r.status_code == 302 and r.headers["Location"].startswith("/sign-in?next=/generate")
    sign_in(api.client, api.account("hal", "rights_holder"))
    r = api.client.get("/generate")
    assert r.status_code == 403 and "creator" in r.get_data(as_text=True)
    assert api.client.get("/generations/gen_0000000000000000").status_code == 404


def test_an_owner_enrolls_live_grants_revokes_and_takes_a_video_down_from_the_pages(api) -> None:
    from governance.db import unit_of_work
    from governance.likenesses.models import Challenge

    from .conftest import LIVE_POSES, challenge_video

    owner = api.account("ida")
    friend = api.account("jon")
    sign_in(api.client, owner)
    tok = csrf(api.client, "/me/face")
    ch = api.client.post("/me/face/challenge", headers={"X-CSRFToken": tok})
    assert ch.status_code == 200 and ch.headers["Cache-Control"] == "no-store"
    ch_id = ch.get_json()["id"]
    with unit_of_work(api.rt.engine) as s:
        s.get(Challenge, ch_id).poses = list(LIVE_POSES)
    video = challenge_video(TESTDATA / "faces" / "obama.jpg", LIVE_POSES)
    r = post_file(api.client, "/me/face/enroll", "selfie.mp4", video, csrf_token=tok, challenge=ch_id)
    assert r.status_code == 303, r.get_data(as_text=True)[:2000]
    html = api.client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'data-verification="live"' in html
    [lk] = api.call("GET", "/v1/likenesses", owner).get_json()["likenesses"]
    assert f'id="own-{lk["id"]}"' in api.client.get("/generate").get_data(as_text=True)  # her face, to pick
    r = api.client.post(f"/me/face/{lk['id']}/mode", data={"mode": "sometimes", "csrf_token": tok})
    assert r.status_code == 422 and 'role="alert"' in r.get_data(as_text=True)
    r = api.client.post(f"/me/face/{lk['id']}/mode", data={"mode": "mutuals", "csrf_token": tok})
    assert r.status_code == 303
    assert api.call("GET", f"/v1/likenesses/{lk['id']}", owner).get_json()["mode"] == "mutuals"
    r = api.client.post(f"/me/face/{lk['id']}/grants", data={"account": "jon", "csrf_token": tok})
    assert r.status_code == 303
    assert "jon" in api.client.get("/me/face").get_data(as_text=True)
    gen = api.generate(friend, "jon's film", [lk["id"]])
    assert api.wait(friend, gen["id"])["state"] == "released"
    html = api.client.get("/me/face").get_data(as_text=True)
    assert f'data-generation="{gen["id"]}"' in html and "Take down" in html
    thumb = api.client.get(f"/generations/{gen['id']}/thumbnail.jpg")
    try:
        assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg" and thumb.data[:2] == b"\xff\xd8"
        again = api.client.get(f"/generations/{gen['id']}/thumbnail.jpg",
                               headers={"If-None-Match": thumb.headers["ETag"]})
        assert again.status_code == 304 and not again.data  # the browser's copy: nothing decoded again
    finally:
        thumb.close()
    assert "New:</strong>" in html  # the owner was told of the use
    r = api.client.post("/me/notifications/read", data={"csrf_token": tok})
    assert r.status_code == 303 and "New:</strong>" not in api.client.get("/me/face").get_data(as_text=True)
    r = api.client.post("/me/contacts", data={"name": "jon", "csrf_token": tok})
    assert r.status_code == 303 and 'id="contacts"' in api.client.get("/me/face").get_data(as_text=True)
    api.client.post("/me/contacts/jon/remove", data={"csrf_token": tok})
    assert 'id="contacts"' not in api.client.get("/me/face").get_data(as_text=True)
    r = api.client.post(f"/me/face/{lk['id']}/grants/{api.call('GET', '/v1/me', friend).get_json()['id']}/revoke",
                        data={"csrf_token": tok})
    assert r.status_code == 303
    assert api.call("GET", f"/v1/likenesses/{lk['id']}", owner).get_json()["grants"] == []
    released = api.download(friend, gen["id"])
    r = api.client.post(f"/me/face/videos/{gen['id']}/take-down", data={"csrf_token": tok})
    assert r.status_code == 303
    html = post_file(api.client, "/verify", "clip.mp4", released, csrf_token=tok).get_data(as_text=True)
    assert 'data-verdict="taken_down"' in html  # the third verdict: made here, then taken down
    assert api.call("GET", f"/v1/generations/{gen['id']}", friend).get_json()["taken_down"] is True
    assert api.client.get(f"/generations/{gen['id']}/thumbnail.jpg").status_code == 410
    # someone else's likeness answers like an unknown one
    api.client.post("/sign-out", data={"csrf_token": tok})
    sign_in(api.client, friend)
    tok = csrf(api.client, "/me/face")
    r = api.client.post(f"/me/face/{lk['id']}/grants", data={"account": "jon", "csrf_token": tok})
    assert r.status_code == 404


def test_the_live_check_reads_the_container_from_the_bytes_never_the_name_or_declared_type(api) -> None:
    """The recorder (static/live.js) names its upload selfie.webm or selfie.mp4 and declares the recorder's type;
    the service sniffs the bytes, so a wrong name or type neither lets a photo or junk through nor refuses a video."""
    from sqlmodel import select

    from governance.bookkeeping import AuditEvent
    from governance.db import unit_of_work
    from governance.likenesses.models import Challenge

    from .conftest import LIVE_POSES, challenge_video

    def upload(name: str, declared: str, data: bytes, challenge: str) -> Any:
        fields: MultiDict[str, Any] = MultiDict({"csrf_token": tok, "challenge": challenge, "mirrored": "false"})
        fields.add("media", FileStorage(io.BytesIO(data), filename=name, content_type=declared))
        boundary, body = encode_multipart(fields)
        return api.client.post("/me/face/enroll", data=body, content_type=f"multipart/form-data; boundary={boundary}")

    sign_in(api.client, api.account("lou"))
    tok = csrf(api.client, "/me/face")
    ch_id = api.client.post("/me/face/challenge", headers={"X-CSRFToken": tok}).get_json()["id"]
    with unit_of_work(api.rt.engine) as s:
        s.get(Challenge, ch_id).poses = list(LIVE_POSES)
    photo = (TESTDATA / "faces" / "obama.jpg").read_bytes()
    for name, declared, data, status in [("selfie.mp4", "video/mp4", photo, 422),  # a photo is no selfie video
                                         ("selfie.webm", "video/webm", b"\x1a\x45\xdf\xa3" + b"\x00" * 400, 415),
                                         ("selfie.mp4", "video/mp4", b"no video at all", 415)]:
        r = upload(name, declared, data, ch_id)
        assert r.status_code == status and 'role="alert"' in r.get_data(as_text=True), (name, r.status_code)
    with api.rt.session() as s:
        assert s.get(Challenge, ch_id).used_at is None  # refused before the live check: the challenge is unused
    video = challenge_video(TESTDATA / "faces" / "obama.jpg", LIVE_POSES)  # H.264 in MP4
    assert video[4:8] == b"ftyp"
    r = upload("selfie.webm", "video/webm", video, ch_id)
    assert r.status_code == 303 and "done=enrolled-live" in r.headers["Location"], r.get_data(as_text=True)[:2000]
    with api.rt.session() as s:
        [passed] = [e.data for e in s.exec(select(AuditEvent).where(AuditEvent.tag == "likeness:verify")).all()
                    if e.data["challenge"] == ch_id]
    assert passed["live_check"]["media"] == "video/mp4"


def test_photos_enroll_a_protective_likeness_and_bad_uploads_are_refused(api) -> None:
    sign_in(api.client, api.account("kim"))
    tok = csrf(api.client, "/me/face")
    r = post_file(api.client, "/me/face/enroll", "x.txt", b"no face here", csrf_token=tok)
    assert r.status_code in (415, 422) and 'role="alert"' in r.get_data(as_text=True)
    r = post_file(api.client, "/me/face/enroll", "biden.jpg", (TESTDATA / "faces" / "biden.jpg").read_bytes(),
                  csrf_token=tok)
    assert r.status_code == 303
    assert 'data-verification="photo"' in api.client.get("/me/face").get_data(as_text=True)


def test_a_rights_holder_simulates_registers_and_reads_usage_from_the_pages(make_api) -> None:
    from datetime import timedelta

    from sqlmodel import select

    from governance.db import unit_of_work
    from governance.generations.models import Generation

    api = make_api(worker="none", daily_quota=100)
    studio = api.account("studio", "rights_holder")
    for i in range(6):  # 24 past requests from 6 people, 12 naming Robo Pup
        t = api.account(f"creator{i}")
        for prompt in ("Robo Pup plays fetch", "a quiet lake", "the robo-pup at night", "a harbour"):
            api.generate(t, prompt)
    with unit_of_work(api.rt.engine) as s:
        for g in s.exec(select(Generation)).all():
            g.created_at = g.created_at - timedelta(days=2)
    sign_in(api.client, studio)
    tok = csrf(api.client, "/characters")
    form = {"name": "Robo Pup", "aliases": "robopup", "rule": "deny", "licensees": "", "attribution": "",
            "csrf_token": tok}
    r = api.client.post("/characters", data={**form, "action": "simulate"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and 'data-would-deny="12"' in html and 'value="Robo Pup"' in html
    assert api.call("GET", "/v1/characters", studio).get_json()["characters"] == []  # nothing saved
    r = api.client.post("/characters", data={**form, "name": "", "action": "save"})
    assert r.status_code == 422 and 'role="alert"' in r.get_data(as_text=True)
    r = api.client.post("/characters", data={**form, "action": "save"})
    assert r.status_code == 303
    html = api.client.get(r.headers["Location"]).get_data(as_text=True)
    assert 'id="usage"' in html and 'class="bars"' in html and "Robo Pup" in html
    assert [c["name"] for c in api.call("GET", "/v1/characters", studio).get_json()["characters"]] == ["Robo Pup"]


def test_simulation_without_enough_past_requests_says_why(api) -> None:
    sign_in(api.client, api.account("label", "rights_holder"))
    tok = csrf(api.client, "/characters")
    r = api.client.post("/characters", data={"name": "Zed", "rule": "deny", "action": "simulate", "csrf_token": tok})
    assert r.status_code == 409 and "k-anonymity" in r.get_data(as_text=True)
    assert api.client.get("/generate").status_code == 403  # a rights holder is no creator


def test_a_rights_holder_edits_a_character_and_a_bad_edit_changes_nothing(api) -> None:
    studio = api.account("studio2", "rights_holder")
    api.account("lic")
    r = api.call("POST", "/v1/characters", studio, json={"name": "Moon Cat", "rule": "deny"})
    ch = r.get_json()["id"]
    sign_in(api.client, studio)
    tok = csrf(api.client, f"/characters/{ch}")
    html = api.client.get(f"/characters/{ch}").get_data(as_text=True)
    assert 'value="Moon Cat"' in html
    r = api.client.post(f"/characters/{ch}", data={"name": "Moon Cat", "aliases": "mooncat, lunar cat",
                                                   "rule": "licensees_only", "licensees": "lic", "attribution": "",
                                                   "action": "save", "csrf_token": tok})
    assert r.status_code == 303
    [c] = api.call("GET", "/v1/characters", studio).get_json()["characters"]
    assert c["aliases"] == ["mooncat", "lunar cat"] and c["rule"] == "licensees_only" and len(c["licensees"]) == 1
    r = api.client.post(f"/characters/{ch}", data={"name": "Moon Cat", "rule": "licensees_only",
                                                   "licensees": "nobody-by-that-name", "action": "save",
                                                   "csrf_token": tok})
    assert r.status_code == 422 and "unknown licensee" in r.get_data(as_text=True)
    assert api.call("GET", "/v1/characters", studio).get_json()["characters"] == [c]
    r = api.client.post(f"/characters/{ch}", data={"name": "Moon Cat", "rule": "attribution",  # the label's font
                                                   "attribution": "Moon Cat 月猫", "action": "save",  # has no CJK
                                                   "csrf_token": tok})
    assert r.status_code == 422 and "cannot draw" in r.get_data(as_text=True)
    assert api.call("GET", "/v1/characters", studio).get_json()["characters"] == [c]
    other = api.account("studio3", "rights_holder")
    api.client.post("/sign-out", data={"csrf_token": tok})
    sign_in(api.client, other)
    tok = csrf(api.client, "/characters")
    assert api.client.get(f"/characters/{ch}").status_code == 404
    r = api.client.post(f"/characters/{ch}", data={"name": "Mine now", "rule": "allow", "action": "save",
                                                   "csrf_token": tok})
    assert r.status_code == 404
    assert api.call("GET", "/v1/characters", studio).get_json()["characters"] == [c]


def test_the_done_alert_shows_only_the_pages_own_messages(api) -> None:
    """``done`` is a code the page maps to its own words: a known code shows its message, anything else nothing."""
    sign_in(api.client, api.account("ada"))
    html = api.client.get("/me/face", query_string={"done": "granted"}).get_data(as_text=True)
    assert 'id="done"' in html and "Done: granted." in html
    for words in ("your likeness was shared with everyone", "<b>granted</b>", "granted "):
        html = api.client.get("/me/face", query_string={"done": words}).get_data(as_text=True)
        assert 'id="done"' not in html, words


def test_a_rate_limited_page_says_when_to_retry(make_api) -> None:
    """A page's 429 carries the API's ``Retry-After`` and says the same in words."""
    api = make_api(verify_per_minute=1)
    token = csrf(api.client, "/verify")
    img = (TESTDATA / "c2pa" / "no_manifest.jpg").read_bytes()
    assert post_file(api.client, "/verify", "a.jpg", img, csrf_token=token).status_code == 200
    r = post_file(api.client, "/verify", "a.jpg", img, csrf_token=token)
    assert r.status_code == 429, r.status_code
    wait = int(r.headers["Retry-After"])
    assert 1 <= wait <= 60 and f"try again in {wait} second" in r.get_data(as_text=True)
