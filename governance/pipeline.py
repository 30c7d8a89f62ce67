"""The gate: one generation from ``prechecked`` through generate, scan and seal to ``released`` (or ``blocked``).

Consent is asked again at every stage boundary and once more inside the transaction that releases, so a
revocation that lands at any moment before release wins. Raw output lives in quarantine and is deleted
whatever happens; a sealed file exists outside quarantine only for a released generation.

Jobs come from a :mod:`governance.jobs` queue: in-process with a worker thread (the embedded default) or
Redis with ``consentgate worker`` processes. A job is claimed with a compare-and-set on its state, so a job
delivered twice runs once. ``Pipeline.on(event, fn)`` lets operators and tests observe the stage
boundaries ``generated``, ``scanned`` and ``sealed``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import update
from sqlmodel import Session, select

from governance.audit import Tag, record
from governance.db import bump, serialize_consent, unit_of_work
from governance.errors import causes, describe_failure
from governance.jobs import JobQueue, make_queue
from governance.models import (
    Account,
    Character,
    ContentFingerprint,
    Generation,
    GenerationCharacter,
    GenerationState,
    Likeness,
    utcnow,
)
from governance.services import characters as characters_svc
from governance.services import consent_record, translog
from governance.services.generations import block, involved_owner_ids, link_likenesses
from governance.services.likenesses import check_consent
from governance.services.notifications import notify
from policies.characters import CharacterRule, judge

if TYPE_CHECKING:
    from detectors.scan import ScanResult
    from governance.runtime import Runtime

log = logging.getLogger(__name__)
EVENTS = ("generated", "scanned", "sealed")
_ACTIVE = (GenerationState.PRECHECKED, GenerationState.GENERATING, GenerationState.SCANNING, GenerationState.SEALING)


#: Multiples of the watermark's default strength (~39 dB PSNR) tried in turn until the mark reads back.
WATERMARK_BOOSTS = (1, 2, 3)


class _Stop(Exception):
    """The generation left the expected state (blocked, taken down): stop quietly."""


class _Retry(Exception):
    """A try failed on storage and the generation was put back to ``prechecked``: try again."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage, self.reason = stage, reason


def _storage_failure(e: BaseException) -> bool:
    """Whether ``e`` came from storage: an operating-system I/O error anywhere in its chain (a full disk,
    a quota, a failing device), or a database that found its disk full."""
    for cause in causes(e):
        if isinstance(cause, OSError) and cause.errno in _STORAGE_ERRNOS:
            return True
        if isinstance(cause, sa.exc.OperationalError) and any(
                words in str(cause) for words in ("database or disk is full", "disk I/O error")):
            return True
    return False


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS}


@contextmanager
def _stage(engine: sa.Engine) -> Iterator[Session]:
    """One stage's transaction. Unlike ``unit_of_work``, a :class:`_Stop` commits: a stage that blocks the
    generation keeps the block and its reasons; any other error rolls back."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        except _Stop:
            session.commit()
            raise
        except BaseException:
            session.rollback()
            raise
        session.commit()


class Pipeline:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        s = runtime.settings
        self.queue: JobQueue = make_queue(s.queue, s.redis_url, s.queue_prefix, s.worker_name or None)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: dict[str, list[Callable[[str], None]]] = defaultdict(list)
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._busy = 0

    # -- wiring -------------------------------------------------------------------------------------------
    def on(self, event: str, fn: Callable[[str], None]) -> None:
        if event not in EVENTS:
            raise ValueError(f"event must be one of {EVENTS}, got {event!r}")
        self._listeners[event].append(fn)

    def _emit(self, event: str, generation_id: str) -> None:
        for fn in list(self._listeners[event]):
            fn(generation_id)

    def submit(self, generation_id: str) -> None:
        with self._idle:
            self._busy += 1
        self.queue.put(generation_id)
        if self.rt.settings.worker == "thread":
            self.start()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self.run_worker, name="consentgate-worker", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        with self._lock:
            thread = self._thread
            self._thread = None
        if thread is not None and thread.is_alive():
            thread.join(timeout)
        self.queue.close()

    def resume_unfinished(self) -> list[str]:
        """Embedded mode, after a restart: run again every job that was interrupted (from the start:
        quarantine is scratch). With a shared queue, each worker recovers its own jobs instead."""
        with unit_of_work(self.rt.engine) as session:
            ids = list(session.exec(select(Generation.id).where(Generation.state.in_(_ACTIVE))).all())  # type: ignore[attr-defined]
        self._restart(ids)
        for gid in ids:
            self.submit(gid)
        return ids

    def recover(self) -> list[str]:
        """A worker restarting under its old name: jobs it took and never finished go back to the queue."""
        ids = self.queue.unacknowledged()
        self._restart(ids)
        self.queue.recover()
        return ids

    def _restart(self, ids: list[str]) -> None:
        with unit_of_work(self.rt.engine) as session:
            for gid in ids:
                gen = session.get(Generation, gid)
                if gen is not None and gen.state in _ACTIVE:
                    gen.state = GenerationState.PRECHECKED
                    session.add(gen)

    def run_pending(self) -> int:
        """Process every queued job in the calling thread; returns how many."""
        done = 0
        while (gid := self.queue.get(0)) is not None:
            self._process_counted(gid)
            done += 1
        return done

    def run_worker(self, *, max_jobs: int | None = None, poll_s: float = 0.5) -> int:
        """Take jobs until stopped (or ``max_jobs`` were done); returns how many."""
        done = 0
        while not self._stopping.is_set() and (max_jobs is None or done < max_jobs):
            gid = self.queue.get(poll_s)
            if gid is not None:
                self._process_counted(gid)
                done += 1
        return done

    def wait_idle(self, timeout: float = 120.0) -> bool:
        """Wait until every job submitted by this process was processed here (in-process queue)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def _process_counted(self, gid: str) -> None:
        try:
            self.process(gid)
        except Exception:  # the worker outlives any job: the next one may well succeed
            log.exception("generation %s: the job could not be finished", gid)
        finally:
            self.queue.ack(gid)
            with self._idle:
                self._busy = max(0, self._busy - 1)
                self._idle.notify_all()

    # -- the stages -----------------------------------------------------------------------------------------
    def process(self, generation_id: str) -> None:
        """Run one job through the gate. A job that fails on storage (a full disk, an I/O error) runs again,
        from the start, after each wait of ``io_retry_delays``; after the last it is blocked with the
        reason. Partial files are removed after every try."""
        delays = self.rt.settings.io_retry_delays
        for attempt in range(len(delays) + 1):
            try:
                self._process_once(generation_id, tries=attempt + 1, last=attempt == len(delays))
                return
            except _Retry as e:
                log.warning("generation %s failed on storage while %s (%s); trying again in %.1f s",
                            generation_id, e.stage, e.reason, delays[attempt])
                time.sleep(delays[attempt])

    def _process_once(self, generation_id: str, *, tries: int = 1, last: bool = True) -> None:
        from detectors.enroll import Template
        from generator.base import GenerationSpec
        from media.video import save_clip_lossless

        s = self.rt.settings
        raw = s.quarantine_dir / f"{generation_id}.npz"
        marked = s.quarantine_dir / f"{generation_id}.marked.mp4"
        final = s.videos_dir / f"{generation_id}.mp4"
        stage = "generating"
        released = False
        try:
            with _stage(self.rt.engine) as session:
                gen = self._claim(session, generation_id)
                self._consent_or_stop(session, gen, gen.likeness_ids, "generation")
                faces = []
                for lid in gen.likeness_ids:
                    lk = session.get(Likeness, lid)
                    assert lk is not None  # _consent_or_stop denies deleted likenesses
                    faces.append(Template.from_bytes(lk.template).reference)
                spec = GenerationSpec(prompt=gen.prompt, seed=gen.seed, faces=tuple(faces), duration_s=s.duration_s,
                                      width=s.frame_size, height=s.frame_size, fps=s.fps)
                gen.generator = f"{self.rt.generator.info.name}/{self.rt.generator.info.version}"
            clip = self.rt.generator.generate(spec)
            save_clip_lossless(raw, clip)
            self._emit("generated", generation_id)

            stage = "scanning"
            with _stage(self.rt.engine) as session:
                gen = self._expect(session, generation_id, GenerationState.GENERATING)
                self._consent_or_stop(session, gen, gen.likeness_ids, "scan")
                self._advance(session, gen, GenerationState.SCANNING)
                index = self.rt.sync_index(session)
                encoder = self.rt.character_encoder
                references = characters_svc.references(session, None, encoder.name) if encoder else []
            result = self._scan(clip.frames, clip.fps, index)
            seen = self._characters_seen(clip, references)
            with _stage(self.rt.engine) as session:
                gen = self._expect(session, generation_id, GenerationState.SCANNING)
                self._judge_characters_seen(session, gen, seen)
                # The record names each face once, after its nearest likeness; every likeness within the
                # threshold of a face (a near miss too) must still allow the requester, or nothing is released.
                attributed = result.attributed()
                gen.faces_found = [m.to_dict() for m in attributed]
                link_likenesses(session, gen.id, list(dict.fromkeys(m.likeness_id for m in attributed)), found=True)
                session.add(gen)
                near = list(dict.fromkeys(m.likeness_id for m in result.matches))
                denied = [c for c in check_consent(session, near, gen.requester_id) if not c.decision.allowed]
                if denied:
                    by_id: dict[str, Any] = {}
                    for m in result.matches:
                        if m.likeness_id not in by_id or m.distance < by_id[m.likeness_id].distance:
                            by_id[m.likeness_id] = m
                    reasons = [
                        f"the face of likeness {c.likeness_id} appears in the output (distance "
                        f"{by_id[c.likeness_id].distance:.2f}, frames {by_id[c.likeness_id].first_frame}-"
                        f"{by_id[c.likeness_id].last_frame}) without consent: {c.decision.reason}"
                        for c in denied
                    ]
                    # whoever's rule blocked it may see the draft that may show them, and is told
                    link_likenesses(session, gen.id, [c.likeness_id for c in denied], found=True)
                    owners = involved_owner_ids(session, gen) | {c.owner_id for c in denied}
                    block(session, gen, reasons, stage="scan", notify_owners=owners)
                    raise _Stop
                self._judge_uncertain(session, gen, result, clip.frames)
                self._advance(session, gen, GenerationState.SEALING)
            self._emit("scanned", generation_id)

            stage = "sealing"
            with _stage(self.rt.engine) as session:
                gen = self._expect(session, generation_id, GenerationState.SEALING)
                involved = self._involved_ids(gen)
                checks = self._consent_or_stop(session, gen, involved, "seal")
                gen.content_id = secrets.token_hex(8)
                requester = session.get(Account, gen.requester_id)
                gen.grants_relied = consent_record.seal(session, gen, checks)  # the openings stay here
                governance = self._governance_assertion(gen, result)
                governance["attributions"] = self._attributions(session, gen)
                session.add(gen)
            fingerprint = self._seal(clip, gen, governance, marked, final)
            self._emit("sealed", generation_id)

            stage = "release"
            with _stage(self.rt.engine) as session:
                gen = self._expect(session, generation_id, GenerationState.SEALING)
                # the final check and the commit hold the consent locks: a consent change waits or is seen
                serialize_consent(session, involved_owner_ids(session, gen))
                self._consent_or_stop(session, gen, self._involved_ids(gen), "release", lock=True)
                assert gen.content_id is not None
                video_sha = _sha256_file(final)
                entry = translog.append(session, gen.id, gen.content_id, video_sha,
                                        hashlib.sha256(_canonical(governance)).hexdigest())
                gen.video_sha256 = video_sha
                gen.released_at = utcnow()
                session.add(ContentFingerprint(generation_id=gen.id, content_id=gen.content_id, data=fingerprint))
                session.flush()
                bump(session, "fingerprints")
                self._advance(session, gen, GenerationState.RELEASED)
                record(session, Tag.GENERATION_RELEASE, actor_id=None, subject=gen.id, content_id=gen.content_id,
                       log_index=entry.index)
                name = requester.name if requester else gen.requester_id
                for owner in involved_owner_ids(session, gen) - {gen.requester_id}:
                    notify(session, owner, "likeness:use:released",
                           f"{name} used your likeness in generation {gen.id}; it was released", generation_id=gen.id)
            released = True
        except _Stop:
            pass
        except Exception as e:  # a crash must still leave a record saying why nothing was released
            storage = _storage_failure(e)
            if storage and not last and self._rewind(generation_id):
                raise _Retry(stage, describe_failure(e)) from e
            log.exception("generation %s failed while %s", generation_id, stage)
            # what the requester reads: the cause without server paths (the log above keeps them)
            reason = f"internal error while {stage}: {describe_failure(e)}"
            if storage:
                reason += f" (the service is short of storage or its disk failed; tried {tries} time(s))"
            self._block_failed(generation_id, reason, stage)
        finally:
            raw.unlink(missing_ok=True)
            marked.unlink(missing_ok=True)
            if not released:
                final.unlink(missing_ok=True)
        if released:
            self._keep_log_head()

    # -- helpers --------------------------------------------------------------------------------------------
    def _rewind(self, generation_id: str) -> bool:
        """Put a generation that failed mid-way back to ``prechecked`` for another try (False: it is
        finished, taken down, or the database cannot be written either)."""
        try:
            with unit_of_work(self.rt.engine) as session:
                gen = session.get(Generation, generation_id)
                if gen is None or gen.taken_down_at is not None or gen.state not in _ACTIVE:
                    return False
                self._advance(session, gen, GenerationState.PRECHECKED)
                return True
        except Exception:
            log.exception("generation %s could not be put back for another try", generation_id)
            return False

    def _block_failed(self, generation_id: str, reason: str, stage: str) -> None:
        """Block a generation that failed, with ``reason``; the database itself may be short of space
        for a moment, so the write is tried again after each of ``io_retry_delays``."""
        for delay in (*self.rt.settings.io_retry_delays, None):
            try:
                with unit_of_work(self.rt.engine) as session:
                    failed = session.get(Generation, generation_id)
                    if failed is not None and not failed.state.terminal:
                        block(session, failed, [reason], stage=stage, notify_owners=set())
                return
            except Exception:
                if delay is None:
                    raise
                log.warning("generation %s could not be blocked yet; trying again in %.1f s", generation_id, delay,
                            exc_info=True)
                time.sleep(delay)

    def _keep_log_head(self) -> None:
        """Sign and keep the log's new head right after a release, so an audit holds every release to a
        head the service signed. Best effort: the next ``GET /v1/log`` or verification signs it otherwise."""
        try:
            with self.rt.session() as session:
                self.rt.signed_log_head(session)
        except Exception:
            log.warning("the transparency log's head could not be signed after a release", exc_info=True)

    @staticmethod
    def _claim(session: Session, generation_id: str) -> Generation:
        """prechecked -> generating as one compare-and-set: of two deliveries of a job, one wins."""
        result = session.execute(
            update(Generation)
            .where(Generation.id == generation_id, Generation.state == GenerationState.PRECHECKED,  # type: ignore[arg-type]
                   Generation.taken_down_at == None)  # type: ignore[arg-type]  # noqa: E711
            .values(state=GenerationState.GENERATING, updated_at=utcnow())
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise _Stop
        gen = session.get(Generation, generation_id)
        assert gen is not None
        return gen

    @staticmethod
    def _expect(session: Session, generation_id: str, state: GenerationState) -> Generation:
        gen = session.get(Generation, generation_id)
        if gen is None or gen.state is not state or gen.taken_down_at is not None:
            raise _Stop
        return gen

    @staticmethod
    def _advance(session: Session, gen: Generation, state: GenerationState) -> None:
        gen.state = state
        gen.updated_at = utcnow()
        session.add(gen)

    @staticmethod
    def _involved_ids(gen: Generation) -> list[str]:
        return list(dict.fromkeys([*gen.likeness_ids, *(f["likeness"] for f in gen.faces_found)]))

    def _consent_or_stop(self, session: Session, gen: Generation, likeness_ids: Iterable[str], stage: str,
                         *, lock: bool = False) -> list[Any]:
        checks = check_consent(session, list(likeness_ids), gen.requester_id, lock=lock)
        denied = [c for c in checks if not c.decision.allowed]
        if denied:
            block(session, gen, [f"consent no longer holds at {stage}: {c.decision.reason}" for c in denied],
                  stage=stage, notify_owners=involved_owner_ids(session, gen))
            raise _Stop
        return checks

    def _judge_uncertain(self, session: Session, gen: Generation, result: ScanResult, frames: Any) -> None:
        """A face in the uncertain band of a likeness the requester may not use (``detectors.pose``: further
        than its match distance, within its protect distance) is never passed silently: the generation is held
        for that likeness owner's review (``scan_uncertain = "held"``, :mod:`governance.services.reviews`) or
        blocked with the reason (``"block"``). A likeness whose owner dismissed this generation is not asked
        again when the job runs once more."""
        from governance.services import reviews

        skip = reviews.dismissed(session, gen.id) if result.uncertain else set()
        nearest: dict[str, Any] = {}
        for m in result.uncertain:
            held = nearest.get(m.likeness_id)
            if m.likeness_id not in skip and (held is None or m.distance < held.distance):
                nearest[m.likeness_id] = m
        if not nearest:
            return
        denied = [c for c in check_consent(session, list(nearest), gen.requester_id) if not c.decision.allowed]
        if not denied:
            return
        if self.rt.settings.scan_uncertain == "held" and all(c.owner_id for c in denied):
            reviews.hold(session, gen, [(c.likeness_id, c.owner_id, nearest[c.likeness_id]) for c in denied], frames,
                         result)
            raise _Stop
        link_likenesses(session, gen.id, [c.likeness_id for c in denied])
        reasons = [f"{reviews.band_reason(c.likeness_id, nearest[c.likeness_id])}, without consent: {c.decision.reason}"
                   for c in denied]
        block(session, gen, reasons, stage="scan",
              notify_owners=involved_owner_ids(session, gen) | {c.owner_id for c in denied})
        raise _Stop

    def _scan(self, frames: Any, fps: float, index: Any) -> ScanResult:
        from detectors.scan import scan_frames

        return scan_frames(frames, fps, index, self.rt.face_backend, threshold=self.rt.match_threshold,
                           thorough_every_s=self.rt.settings.scan_thorough_every_s)

    def _governance_assertion(self, gen: Generation, scan: ScanResult) -> dict[str, Any]:
        """The manifest's ``org.consentgate.governance`` assertion: public, so it names nobody. The requester,
        the prompt and each likeness, owner and grant appear as ``cg-commit-v1`` commitments whose openings
        stay in the record (:mod:`governance.services.consent_record`); decisions whose reasons name likeness
        or grant ids are left to those commitments."""
        return {
            "generation_id": gen.id,
            "content_id": gen.content_id,
            **consent_record.public_assertion(gen),
            "generator": gen.generator,
            "face_scan": {  # how the output was scanned: which faces a verifier can rely on having been checked
                "backend": scan.backend, "detector": scan.detector, "threshold": scan.threshold,
                "frames": scan.frame_count,
                "frames_scanned": scan.frames_scanned, "keyframes": scan.keyframes, "tracks": len(scan.tracks),
                "smallest_face_px": scan.smallest_face_px,
                "thorough_every_s": self.rt.settings.scan_thorough_every_s,
            },
            "decisions": consent_record.public_decisions(gen.decisions),
        }

    def _characters_seen(self, clip: Any, references: list[tuple[str, Any]]) -> list[Any]:
        """Registered characters whose reference images the output's frames resemble (the operator's image
        encoder, ``character_threshold``); empty without an encoder or references."""
        encoder = self.rt.character_encoder
        if encoder is None or not references:
            return []
        from detectors.visual import best_matches, sample_indices

        indices = sample_indices(len(clip.frames), clip.fps)
        embeddings = encoder.embed([clip.frames[i] for i in indices])
        threshold = self.rt.settings.character_threshold
        assert threshold is not None  # Settings refuses a model without a threshold
        return best_matches(embeddings, indices, references, threshold)

    def _judge_characters_seen(self, session: Session, gen: Generation, seen: list[Any]) -> None:
        """Each character the output shows, named or not, under its rule for the requester: recorded with
        the generation's decisions (and its usage), and blocking when the rule denies."""
        policies = {p.character_id: p for p in characters_svc.policies(session)}
        denials = []
        for sighting in seen:
            policy = policies.get(sighting.character_id)
            if policy is None:  # deleted meanwhile: its rights holder no longer asks for anything
                continue
            subject = (f"the output shows {policy.name!r} (similarity {sighting.similarity:.2f}, frames "
                       f"{sighting.frames[0]}-{sighting.frames[-1]})")
            decision = judge(policy, gen.requester_id, subject)
            gen.decisions = [*gen.decisions, decision.to_dict()]
            row = session.get(GenerationCharacter, (gen.id, policy.character_id))
            if row is None:
                session.add(GenerationCharacter(generation_id=gen.id, character_id=policy.character_id,
                                                allowed=decision.allowed))
            elif not decision.allowed:
                row.allowed = False
                session.add(row)
            if not decision.allowed:
                denials.append(decision.reason)
        session.add(gen)
        if denials:
            block(session, gen, denials, stage="scan", notify_owners=set())
            raise _Stop

    @staticmethod
    def _attributions(session: Session, gen: Generation) -> list[dict[str, str]]:
        """The credits the characters this generation names require (the attribution rule), as their
        rights holders state them now: each goes into the visible label and the manifest."""
        rows = session.exec(select(GenerationCharacter).where(GenerationCharacter.generation_id == gen.id,
                                                              GenerationCharacter.allowed == True)  # noqa: E712
                            .order_by(GenerationCharacter.character_id)).all()  # type: ignore[arg-type]
        out = []
        for row in rows:
            ch = session.get(Character, row.character_id)
            if ch is not None and ch.rule == CharacterRule.ATTRIBUTION and ch.attribution:
                out.append({"character": ch.id, "name": ch.name, "credit": ch.attribution})
        return out

    def _seal(self, clip: Any, gen: Generation, governance: dict[str, Any], marked: Path, final: Path) -> bytes:
        """Label, watermark, encode and sign into ``final``; returns the released frames' fingerprint."""
        from media.video import write_video
        from provenance.c2pa_seal import ManifestSpec, seal_video
        from provenance.errors import WatermarkError
        from provenance.fingerprint import fingerprint_clip
        from provenance.label import add_visible_label
        from provenance.watermark import DEFAULT_STRENGTH, detect_video, embed

        assert gen.content_id is not None
        credits = tuple(a["credit"] for a in governance.get("attributions", []))
        labelled = add_visible_label(clip.frames, "AI-generated", sub="ConsentGate", credits=credits)
        payload = bytes.fromhex(gen.content_id)
        info = self.rt.generator.info
        weights = "learned weights" if info.learned_weights else "no learned weights"
        # Nothing leaves unmarked: the mark is read back from the encoded file, and made stronger while it
        # cannot be (small, noisy frames drown the default strength).
        for boost in WATERMARK_BOOSTS:
            strength = DEFAULT_STRENGTH * boost
            frames = embed(labelled, payload, self.rt.watermark_key, strength=strength)
            write_video(marked, clip.with_frames(frames), crf=18, mode=0o600, metadata={
                "comment": f"AI-generated by {info.name} {info.version} ({weights}); sealed by ConsentGate; "
                           f"content id {gen.content_id}",
                "encoder": "ConsentGate",
            })
            found = detect_video(marked, self.rt.watermark_key, max_frames=240)
            if found is not None and found.payload == payload:
                governance["watermark"] = {"strength": strength, "read_back_confidence": round(found.confidence, 3)}
                break
        else:
            raise WatermarkError(f"the invisible watermark could not be read back from the encoded video, even at "
                                 f"{WATERMARK_BOOSTS[-1]}x its strength: nothing is released unmarked")
        spec = ManifestSpec(
            title=f"ConsentGate generation {gen.id}", generator_name=info.name, generator_version=info.version,
            learned_weights=info.learned_weights, governance=governance,
        )
        seal_video(marked, final, spec, self.rt.signer_material, sign_fn=self.rt.sign_fn,
                   tsa_url=self.rt.settings.tsa_url or None, mode=0o600)
        return fingerprint_clip(clip.with_frames(frames), query_views=False).to_bytes()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
