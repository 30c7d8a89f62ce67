"""The gate: one generation from ``prechecked`` through generate, scan and seal to ``released`` (or ``blocked``).

Consent is asked again at every stage boundary and once more inside the transaction that releases, so a
revocation that lands at any moment before release wins. Raw output lives in quarantine and is deleted
whatever happens; a sealed file exists outside quarantine only for a released generation.

Jobs come from a :mod:`governance.jobs` engine: in-process with a worker thread (the embedded default) or
Dramatiq on Redis or RabbitMQ with ``consentgate worker`` processes. A worker claims a job with a
compare-and-set on its state and takes a lease it renews while it works; a job delivered twice runs once,
and a job whose worker died is taken over, from the start, once its lease has run out. A transient failure
(storage, a busy generator, a signer or database timing out) is tried again after a backoff, then blocked
with the reason; each stage has a time limit. ``Pipeline.on(event, fn)`` lets operators and tests observe
the stage boundaries ``generated``, ``scanned`` and ``sealed``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import update
from sqlmodel import Session, col, select

from governance import logs, metrics
from governance.audit import Tag, record
from governance.db import bump, serialize_consent, unit_of_work
from governance.errors import Unavailable, causes, describe_failure
from governance.jobs import (
    WATCH,
    DramatiqEngine,
    InProcessEngine,
    JobEngine,
    RetryLater,
    async_raise,
    make_engine,
)
from governance.models import (
    Account,
    Character,
    ContentFingerprint,
    Figure,
    Generation,
    GenerationCharacter,
    GenerationState,
    Likeness,
    is_figure_key,
    utcnow,
)
from governance.services import characters as characters_svc
from governance.services import consent_record, translog
from governance.services import figures as figures_svc
from governance.services.generations import block, involved_owner_ids, link_likenesses
from governance.services.likenesses import check_consent, found_alongside, is_verified_claim
from governance.services.notifications import notify
from governance.softbinding.models import ReleaseManifest
from governance.softbinding.sealing import PROVIDER
from policies.characters import CharacterRule, judge
from policies.consent import public_figure_permits

DEFERRED = "likeness:disputed:deferred"

if TYPE_CHECKING:
    from detectors.scan import ScanResult
    from governance.runtime import Runtime

log = logging.getLogger(__name__)
EVENTS = ("generated", "scanned", "sealed")
_ACTIVE = (GenerationState.PRECHECKED, GenerationState.GENERATING, GenerationState.SCANNING, GenerationState.SEALING)




class _Stop(Exception):
    """The generation left the expected state (blocked, taken down): stop quietly."""


class _Retry(Exception):
    """A try failed transiently and the generation was put back to ``prechecked``: try again."""

    def __init__(self, stage: str, reason: str, kind: str = "storage") -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage, self.reason, self.kind = stage, reason, kind


def _transient_failure(e: BaseException) -> str | None:
    """What kind of transient failure ``e`` is, or None: ``storage`` (an operating-system I/O error anywhere in
    its chain: a full disk, a quota, a failing device; or a database that found its disk full),
    ``generator busy`` (the generator or its GPU is out of memory or taken), ``timeout`` (a KMS/HSM signer,
    or anything else, that timed out or could not be reached) or ``database`` (its connection failed)."""
    from generator.base import GeneratorBusy

    chain = causes(e)
    for cause in chain:
        if isinstance(cause, OSError) and cause.errno in _STORAGE_ERRNOS:
            return "storage"
        if isinstance(cause, sa.exc.OperationalError) and any(
                words in str(cause) for words in ("database or disk is full", "disk I/O error")):
            return "storage"
    for cause in chain:
        if isinstance(cause, GeneratorBusy) or type(cause).__name__ == "OutOfMemoryError":  # torch.cuda's
            return "generator busy"
        if isinstance(cause, TimeoutError | ConnectionError):
            return "timeout"
        if isinstance(cause, sa.exc.OperationalError | sa.exc.InterfaceError) and cause.connection_invalidated:
            return "database"
    return None


def _storage_failure(e: BaseException) -> bool:
    return _transient_failure(e) == "storage"


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS}
_TRANSIENT_NOTE = {
    "storage": "the service is short of storage or its disk failed",
    "generator busy": "the generator was busy or out of memory",
    "timeout": "a backend it needs (the signer, the database) timed out or could not be reached",
    "database": "the database connection failed",
}


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


class _Leased(BaseException):
    """Another worker holds the job under a lease that has not run out: try again once it has. (Not an
    ``Exception``: the stages' error handling, which blocks a generation, must let it through.)"""

    def __init__(self, remaining_s: float) -> None:
        super().__init__(f"leased for another {remaining_s:.1f} s")
        self.remaining_s = remaining_s


class StageTimeLimit(Exception):
    """A stage ran past its time limit (``stage_limit_*_s``); raised into the worker thread."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("the stage ran past its time limit",)))


class JobReturned(BaseException):
    """The worker is shutting down and its grace ran out: the job goes back to the queue (raised into the
    worker thread; a ``BaseException`` so that no stage treats it as a failure of the job)."""


@dataclass
class _Job:
    """One try of one job in this thread: what the claim, the stage clock and the logs need."""

    generation_id: str
    tries: int
    claim: str | None = None
    stage: str = "generating"
    stage_started: float = field(default_factory=time.monotonic)
    taken_over: bool = False


_JOB: ContextVar[_Job | None] = ContextVar("consentgate_job", default=None)
_NEXT_STAGE = {"generated": "scanning", "scanned": "sealing", "sealed": "release"}


class Pipeline:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        s = runtime.settings
        self.worker_id = s.worker_name or f"{socket.gethostname()}:{os.getpid()}"
        self.engine: JobEngine = make_engine(s, self.handle)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: dict[str, list[Callable[[str], None]]] = defaultdict(list)
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._busy = 0
        self._handled = 0
        self._running: dict[str, str] = {}  # generation id -> claim token, for the lease keeper
        self._keeper: threading.Thread | None = None
        self.watch = WATCH

    # -- wiring -------------------------------------------------------------------------------------------
    def on(self, event: str, fn: Callable[[str], None]) -> None:
        if event not in EVENTS:
            raise ValueError(f"event must be one of {EVENTS}, got {event!r}")
        self._listeners[event].append(fn)

    def _emit(self, event: str, generation_id: str) -> None:
        self._stage_done(event)
        for fn in list(self._listeners[event]):
            fn(generation_id)

    def submit(self, generation_id: str) -> None:
        """Hand a prechecked job to the engine. With a broker that cannot be reached the job stays waiting in
        the database and a worker's sweep hands it over later (``consentgate_submit_failures_total``)."""
        if isinstance(self.engine, InProcessEngine):
            with self._idle:
                self._busy += 1
            self.engine.submit(generation_id)
            if self.rt.settings.worker == "thread":
                self.start()
            return
        try:
            self.engine.submit(generation_id)
        except Unavailable as e:
            metrics.SUBMIT_FAILURES.inc()
            log.warning("generation %s waits in the database until a worker's sweep hands it over: %s", generation_id,
                        e.detail)
            return
        self._mark_enqueued([generation_id])

    def _mark_enqueued(self, ids: list[str]) -> None:
        try:
            with unit_of_work(self.rt.engine) as session:
                session.execute(update(Generation).where(Generation.id.in_(ids))  # type: ignore[attr-defined]
                                .values(enqueued_at=utcnow()))
        except Exception:  # the sweep may send it once more: a second delivery runs once
            log.warning("could not note that %d job(s) were handed to the broker", len(ids), exc_info=True)

    def start(self) -> None:
        """Start this process's worker thread (the in-process engine)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self.run_worker, name="consentgate-worker", daemon=True)
            self._thread.start()

    def request_stop(self) -> None:
        """Take no new job; :meth:`run_worker` returns once the current one is finished or handed back."""
        self._stopping.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        with self._lock:
            thread = self._thread
            self._thread = None
        if thread is not None and thread.is_alive():
            thread.join(timeout)
        self.engine.close()

    def resume_unfinished(self) -> list[str]:
        """Embedded mode, after a restart: run again every job that was interrupted (from the start:
        quarantine is scratch). With a broker, leases and re-delivery bring such jobs back instead."""
        with unit_of_work(self.rt.engine) as session:
            ids = list(session.exec(select(Generation.id).where(Generation.state.in_(_ACTIVE))).all())  # type: ignore[attr-defined]
            for gid in ids:
                gen = session.get(Generation, gid)
                if gen is not None and gen.state in _ACTIVE:
                    gen.state = GenerationState.PRECHECKED
                    session.add(gen)
        for gid in ids:
            self.submit(gid)
        return ids

    def run_pending(self) -> int:
        """Process every queued job in the calling thread (the in-process engine); returns how many."""
        assert isinstance(self.engine, InProcessEngine), "run_pending reads the in-process queue"
        done = 0
        while (gid := self.engine.get(0)) is not None:
            self._process_counted(gid)
            done += 1
        return done

    def run_worker(self, *, max_jobs: int | None = None, poll_s: float = 0.5) -> int:
        """Take jobs until stopped (or ``max_jobs`` messages were handled); returns how many. With a broker this
        runs a Dramatiq worker in this process (one thread, prefetch 1) and sweeps lost jobs back."""
        if not isinstance(self.engine, InProcessEngine):
            return self._run_broker_worker(max_jobs, poll_s)
        done = 0
        while not self._stopping.is_set() and (max_jobs is None or done < max_jobs):
            gid = self.engine.get(poll_s)
            if gid is not None:
                self._process_counted(gid)
                done += 1
        return done

    def _run_broker_worker(self, max_jobs: int | None, poll_s: float) -> int:
        assert isinstance(self.engine, DramatiqEngine)
        worker = self.engine.worker()
        start = self._handled
        next_sweep = 0.0
        worker.start()
        try:
            while not self._stopping.is_set() and (max_jobs is None or self._handled - start < max_jobs):
                if time.monotonic() >= next_sweep:
                    self.sweep()
                    next_sweep = time.monotonic() + self.rt.settings.sweep_every_s
                self._stopping.wait(poll_s)
        finally:
            self.shutdown(worker)
        return self._handled - start

    def shutdown(self, worker: Any) -> None:
        """Stop a Dramatiq worker gracefully: no new job; the current one finishes within ``shutdown_grace_s``,
        or is handed back to the queue (its files removed, the generation waiting again)."""
        grace = self.rt.settings.shutdown_grace_s

        def hand_back() -> None:
            if self._running:
                for thread in getattr(worker, "workers", []):
                    if thread.ident is not None:
                        async_raise(thread.ident, JobReturned)

        timer = threading.Timer(grace, hand_back)
        timer.daemon = True
        timer.start()
        try:
            worker.stop(timeout=int((grace + 30) * 1000))
        finally:
            timer.cancel()

    def wait_idle(self, timeout: float = 120.0) -> bool:
        """Wait until every job submitted by this process was processed here (in-process engine)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def _process_counted(self, gid: str) -> None:
        try:
            self.process(gid)
        except Exception:  # the worker outlives any job: the next one may well succeed
            log.exception("generation %s: the job could not be finished", gid)
        finally:
            with self._idle:
                self._busy = max(0, self._busy - 1)
                self._idle.notify_all()

    # -- one job: tries, leases, stage clocks ----------------------------------------------------------------
    def handle(self, generation_id: str) -> None:
        """The engine's entry point for one delivery: one try; :class:`RetryLater` asks for another one later."""
        try:
            wait = self.attempt(generation_id, tries_before=DramatiqEngine.tries_so_far())
        except JobReturned:
            wait = RetryLater(0.0, "the worker shut down before the job was done", counts=False)
        finally:
            self._handled += 1
        if wait is not None:
            raise wait

    def process(self, generation_id: str) -> None:
        """Run one job through the gate in this thread. A job that fails transiently (storage, a busy
        generator, a signer or database timing out) runs again, from the start, after each wait of
        ``io_retry_delays``; after the last it is blocked with the reason. Partial files are removed after
        every try."""
        tries = 0
        while (wait := self.attempt(generation_id, tries_before=tries)) is not None:
            tries += 1 if wait.counts else 0
            time.sleep(wait.delay_s)

    def attempt(self, generation_id: str, *, tries_before: int = 0) -> RetryLater | None:
        """One try of a job; None when it is finished (released, blocked, or not this worker's to run), else
        when to try again."""
        delays = self.rt.settings.io_retry_delays
        last = tries_before >= len(delays)
        job = _Job(generation_id, tries_before + 1)
        token, logged = _JOB.set(job), logs.GENERATION.set(generation_id)
        tid = threading.get_ident()
        try:
            self._set_stage_deadline(job)
            try:
                self._process_once(generation_id, tries=job.tries, last=last)
            except _Retry as e:
                delay = delays[min(tries_before, len(delays) - 1)]
                metrics.RETRIES.labels(reason=e.kind).inc()
                log.warning("generation %s failed transiently while %s (%s); trying again in %.1f s",
                            generation_id, e.stage, e.reason, delay)
                return RetryLater(delay, f"{e.stage}: {e.reason}")
            except _Leased as e:
                return RetryLater(e.remaining_s + 0.5, "another worker holds the job", counts=False)
            except JobReturned:
                self._hand_back(generation_id, job)
                raise
            finally:
                try:
                    self.watch.clear(tid)
                except (StageTimeLimit, JobReturned):  # delivered just as the try ended
                    pass
                if job.claim is not None:
                    self._running.pop(generation_id, None)
                    metrics.STAGE_SECONDS.labels(stage=job.stage).observe(time.monotonic() - job.stage_started)
            if job.claim is not None:
                self._count_final(generation_id, job)
            return None
        finally:
            _JOB.reset(token)
            logs.GENERATION.reset(logged)

    def _set_stage_deadline(self, job: _Job) -> None:
        limit = self.rt.settings.stage_limits[job.stage]
        self.watch.set(threading.get_ident(), job.stage_started + limit, StageTimeLimit)

    def _stage_done(self, event: str) -> None:
        """A stage boundary (``generated``, ``scanned``, ``sealed``): time the stage that ended, log it with
        the generation id, and start the next stage's clock and time limit."""
        job = _JOB.get()
        if job is None or event not in _NEXT_STAGE:
            return
        now = time.monotonic()
        seconds = now - job.stage_started
        metrics.STAGE_SECONDS.labels(stage=job.stage).observe(seconds)
        log.info("generation %s: %s done in %.2f s", job.generation_id, job.stage, seconds,
                 extra={"stage": job.stage, "seconds": round(seconds, 3)})
        job.stage, job.stage_started = _NEXT_STAGE[event], now
        self._set_stage_deadline(job)

    def _count_final(self, generation_id: str, job: _Job) -> None:
        try:
            with self.rt.session() as session:
                gen = session.get(Generation, generation_id)
        except Exception:
            return
        if gen is None or not gen.state.terminal:
            return
        created = gen.created_at if gen.created_at.tzinfo else gen.created_at.replace(tzinfo=UTC)
        stage = "release" if gen.state is GenerationState.RELEASED else job.stage
        metrics.finished(gen.state.value, stage, (utcnow() - created).total_seconds())
        log.info("generation %s: %s (%s)", generation_id, gen.state.value, stage,
                 extra={"stage": stage, "state": gen.state.value})

    def _hand_back(self, generation_id: str, job: _Job) -> None:
        """Shutting down mid-job: the generation waits again (its files were removed by the try)."""
        if job.claim is None:
            return
        try:
            with unit_of_work(self.rt.engine) as session:
                session.execute(update(Generation).where(
                    Generation.id == generation_id, Generation.claimed_by == job.claim,  # type: ignore[arg-type]
                    Generation.state.in_(_ACTIVE))  # type: ignore[attr-defined]
                    .values(state=GenerationState.PRECHECKED, lease_until=None, updated_at=utcnow()))
            log.info("generation %s handed back to the queue: the worker is shutting down", generation_id)
        except Exception:  # its lease runs out and another worker takes it over
            log.warning("generation %s could not be handed back", generation_id, exc_info=True)

    def _keep_leases(self) -> None:
        """Renew the lease of every job this process runs, every third of ``job_lease_s``."""
        lease = self.rt.settings.job_lease_s
        while True:
            time.sleep(lease / 3)
            with self._lock:
                if not self._running:  # idle: the next claim starts another keeper
                    self._keeper = None
                    return
            for gid, claim in list(self._running.items()):
                try:
                    with unit_of_work(self.rt.engine) as session:
                        result = session.execute(update(Generation).where(
                            Generation.id == gid, Generation.claimed_by == claim)  # type: ignore[arg-type]
                            .values(lease_until=utcnow() + timedelta(seconds=lease)))
                    if result.rowcount != 1:  # type: ignore[attr-defined]
                        self._running.pop(gid, None)
                except Exception:
                    log.warning("generation %s: the lease could not be renewed", gid, exc_info=True)

    def sweep(self) -> list[str]:
        """Hand jobs to the broker again that it lost or never got: waiting jobs the API could not hand over
        (the broker was down), jobs whose worker's lease ran out and that were not re-delivered, and, while
        the broker holds nothing, waiting jobs handed over long ago. Duplicates are harmless: a job runs
        once. Returns the ids sent."""
        s = self.rt.settings
        now = utcnow()
        try:
            depth = self.engine.depth()
            with unit_of_work(self.rt.engine) as session:
                state, lease, sent, created = (col(Generation.state), col(Generation.lease_until),
                                               col(Generation.enqueued_at), col(Generation.created_at))
                waiting = state == GenerationState.PRECHECKED
                free = sa.or_(lease.is_(None), lease < now)
                never = sa.and_(waiting, sent.is_(None), created < now - timedelta(seconds=min(5.0, s.sweep_every_s)))
                dead = sa.and_(state.in_(_ACTIVE[1:]), free,
                               sa.or_(sent.is_(None), sent < now - timedelta(seconds=s.job_lease_s)))
                lost = sa.and_(waiting, sent < now - timedelta(seconds=s.resubmit_after_s), sa.literal(depth == 0))
                rows = session.exec(select(Generation.id, Generation.enqueued_at).where(  # type: ignore[call-overload]
                    col(Generation.taken_down_at).is_(None), sa.or_(never, dead, lost))
                    .order_by(created).limit(500)).all()
                ids = []
                for gid, seen in rows:  # one sweeper per job: the one whose compare-and-set wins
                    cond = sent.is_(None) if seen is None else sent == seen
                    if session.execute(update(Generation).where(Generation.id == gid, cond)  # type: ignore[arg-type]
                                       .values(enqueued_at=now)).rowcount == 1:  # type: ignore[attr-defined]
                        ids.append(gid)
            for gid in ids:
                self.engine.submit(gid)
                metrics.RESUBMITTED.inc()
        except Exception:
            log.warning("the sweep for lost jobs failed; the next one tries again", exc_info=True)
            return []
        if ids:
            log.info("handed %d job(s) to the broker again: %s", len(ids), ", ".join(ids[:10]))
        return ids

    def clean_quarantine(self) -> int:
        """Remove files a dead worker left in quarantine: those of jobs that are finished, or waiting, or whose
        lease ran out (a live worker's files stay). Returns how many."""
        now = utcnow()
        removed = 0
        with self.rt.session() as session:
            for path in sorted(self.rt.settings.quarantine_dir.glob("gen_*")):
                gid = path.name.split(".")[0]
                gen = session.get(Generation, gid)
                lease = gen.lease_until if gen is not None else None
                if lease is not None and lease.tzinfo is None:
                    lease = lease.replace(tzinfo=UTC)
                if gen is None or gen.state not in _ACTIVE or gen.state is GenerationState.PRECHECKED or \
                        lease is None or lease < now:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    # -- the stages -----------------------------------------------------------------------------------------
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
                # Protected figures share the face index; they are judged by their own rule, not listed as faces.
                seen_faces = replace(result, matches=tuple(m for m in result.matches
                                                           if not is_figure_key(m.likeness_id)))
                # The record names each face once, after its nearest likeness; every likeness within the
                # threshold of a face (a near miss too) must still allow the requester, or nothing is released.
                attributed = seen_faces.attributed()
                gen.faces_found = [m.to_dict() for m in attributed]
                link_likenesses(session, gen.id, list(dict.fromkeys(m.likeness_id for m in attributed)), found=True)
                session.add(gen)
                self._judge_figures_seen(session, gen, [m for m in result.matches if is_figure_key(m.likeness_id)])
                near = list(dict.fromkeys(m.likeness_id for m in seen_faces.matches))
                checks = check_consent(session, near, gen.requester_id,
                                       seen_with=found_alongside([m.to_dict() for m in seen_faces.matches],
                                                                 gen.likeness_ids))
                # A later claim on a face that deferred to the earlier one is kept with the decisions (the public
                # record leaves likeness decisions out): the seal and the release ask both again.
                gen.decisions = [*gen.decisions, *({**c.decision.to_dict(), "likeness": c.likeness_id,
                                                    "defers_to": c.defers_to} for c in checks if c.defers_to)]
                denied = [c for c in checks if not c.decision.allowed]
                if denied:
                    by_id: dict[str, Any] = {}
                    for m in seen_faces.matches:
                        if m.likeness_id not in by_id or m.distance < by_id[m.likeness_id].distance:
                            by_id[m.likeness_id] = m
                    reasons = [
                        f"the face of likeness {c.likeness_id} appears in the output (distance "
                        f"{by_id[c.likeness_id].distance:.2f}, frames {by_id[c.likeness_id].first_frame}-"
                        f"{by_id[c.likeness_id].last_frame}) without consent: {c.decision.reason}"
                        for c in denied
                    ]
                    # whoever's rule blocked it may see the draft that may show them, and is told; an unproven
                    # claim on a face (photo, disputed, under review) blocks it but learns nothing of it
                    link_likenesses(session, gen.id, [c.likeness_id for c in denied], found=True)
                    owners = involved_owner_ids(session, gen) | {
                        c.owner_id for c in denied
                        if (lk := session.get(Likeness, c.likeness_id)) is not None and is_verified_claim(lk)}
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
                parent = self._remixed(session, gen)
                session.add(gen)
            sealed = self._seal(clip, gen, governance, marked, final,
                                requester.name if requester else gen.requester_id, parent)
            self._emit("sealed", generation_id)

            stage = "release"
            with _stage(self.rt.engine) as session:
                gen = self._expect(session, generation_id, GenerationState.SEALING)
                # the final check and the commit hold the consent locks: a consent change waits or is seen
                serialize_consent(session, involved_owner_ids(session, gen))
                self._consent_or_stop(session, gen, self._involved_ids(gen), "release", lock=True)
                assert gen.content_id is not None
                video_sha = translog.file_sha256(final)
                entry = translog.append(session, gen.id, gen.content_id, video_sha,
                                        hashlib.sha256(_canonical(governance)).hexdigest())
                gen.video_sha256 = video_sha
                gen.released_at = utcnow()
                session.add(ContentFingerprint(generation_id=gen.id, content_id=gen.content_id,
                                               data=sealed.fingerprint))
                session.add(ReleaseManifest(generation_id=gen.id, manifest_id=sealed.sealed.manifest_id,
                                            content_id=gen.content_id, store=sealed.sealed.store,
                                            provider=PROVIDER, system=sealed.system,
                                            system_version=sealed.system_version, disclosed_at=sealed.disclosed_at))
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
            transient = _transient_failure(e)
            self._count_failure(e, stage)
            if transient and not last and self._rewind(generation_id):
                raise _Retry(stage, describe_failure(e), transient) from e
            log.exception("generation %s failed while %s", generation_id, stage)
            # what the requester reads: the cause without server paths (the log above keeps them)
            reason = f"internal error while {stage}: {describe_failure(e)}"
            if transient:
                reason += f" ({_TRANSIENT_NOTE[transient]}; tried {tries} time(s))"
            self._block_failed(generation_id, reason, stage)
        finally:
            if self._holds(generation_id):  # a delivery that did not claim the job leaves the holder's files
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

    def _claim(self, session: Session, generation_id: str) -> Generation:
        """-> generating as one compare-and-set, under a lease this worker renews while it works: from
        ``prechecked``, or from a later stage whose worker's lease ran out (it died: the job starts again).
        Of two deliveries of a job, one wins; a job another worker holds is tried again after its lease."""
        now = utcnow()
        lease = timedelta(seconds=self.rt.settings.job_lease_s)
        claim = f"{self.worker_id}/{secrets.token_hex(4)}"
        before = session.get(Generation, generation_id)
        was, holder = (before.state, before.claimed_by) if before is not None else (None, None)
        lease_until = col(Generation.lease_until)
        abandoned = sa.and_(col(Generation.state).in_(_ACTIVE[1:]), sa.or_(lease_until.is_(None), lease_until < now))
        result = session.execute(
            update(Generation)
            .where(Generation.id == generation_id, Generation.taken_down_at == None,  # type: ignore[arg-type]  # noqa: E711
                   sa.or_(Generation.state == GenerationState.PRECHECKED, abandoned))  # type: ignore[arg-type]
            .values(state=GenerationState.GENERATING, updated_at=now, claimed_by=claim, lease_until=now + lease)
            .execution_options(synchronize_session=False)  # the row is read back below
        )
        gen = session.get(Generation, generation_id, populate_existing=True)
        if result.rowcount != 1 or gen is None:  # type: ignore[attr-defined]
            if gen is not None and gen.state in _ACTIVE[1:] and gen.taken_down_at is None and gen.lease_until:
                until = gen.lease_until if gen.lease_until.tzinfo else gen.lease_until.replace(tzinfo=UTC)
                raise _Leased(max(0.0, (until - now).total_seconds()))
            raise _Stop
        job = _JOB.get()
        if job is not None:
            job.claim = claim
            job.taken_over = was in _ACTIVE[1:]
            if job.taken_over:
                metrics.TAKEOVERS.inc()
                log.warning("generation %s: taken over from %s, whose lease ran out; starting again",
                            generation_id, holder)
            self._running[generation_id] = claim
            self._ensure_keeper()
        return gen

    def _ensure_keeper(self) -> None:
        with self._lock:
            if self._keeper is None:
                self._keeper = threading.Thread(target=self._keep_leases, name="consentgate-leases", daemon=True)
                self._keeper.start()

    @staticmethod
    def _holds(generation_id: str) -> bool:
        """Whether the calling thread claimed ``generation_id`` in its current try (outside a try: yes)."""
        job = _JOB.get()
        return job is None or (job.generation_id == generation_id and job.claim is not None)

    @staticmethod
    def _expect(session: Session, generation_id: str, state: GenerationState) -> Generation:
        gen = session.get(Generation, generation_id)
        if gen is None or gen.state is not state or gen.taken_down_at is not None:
            raise _Stop
        job = _JOB.get()
        if job is not None and job.claim is not None and gen.claimed_by != job.claim:
            log.warning("generation %s: another worker took the job over; this one stops", generation_id)
            raise _Stop
        return gen

    @staticmethod
    def _count_failure(e: BaseException, stage: str) -> None:
        from provenance.errors import SigningError, WatermarkError

        chain = causes(e)
        if any(isinstance(c, SigningError) for c in chain):
            metrics.SIGNER_FAILURES.inc()
        if any(isinstance(c, WatermarkError) for c in chain):
            metrics.WATERMARK_FAILURES.inc()
        if any(isinstance(c, StageTimeLimit) for c in chain):
            metrics.STAGE_TIMEOUTS.labels(stage=stage).inc()

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
        """Consent of every likeness involved, and of every protected figure the generation was allowed to
        show (through the likenesses approved as them), asked again now in one pass (with ``lock``, one lock
        order for all of them); any denial blocks the generation. Returns the involved likenesses' checks."""
        involved = list(likeness_ids)
        figures = []
        for d in gen.decisions:
            figure_id = figures_svc.figure_of(d["rule"]) if d["decision"] == "allow" else None
            figure = session.get(Figure, figure_id) if figure_id else None
            if figure is not None and figure not in figures:  # (a figure removed from the gallery is not protected)
                figures.append(figure)
        approved = {f.id: figures_svc.approved_ids(session, f.id) for f in figures}
        deferrals: dict[str, set[str]] = {}  # later claims that deferred at the scan, to the earlier claim
        for d in gen.decisions:
            if d["rule"] == DEFERRED and d.get("likeness") in involved:
                deferrals.setdefault(d["likeness"], set()).add(d["defers_to"])
        every = list(dict.fromkeys([*involved, *(i for ids in approved.values() for i in ids),
                                    *(h for hs in deferrals.values() for h in hs)]))
        checks = {c.likeness_id: c for c in check_consent(session, every, gen.requester_id, lock=lock,
                                                          seen_with=deferrals)}
        reasons = [checks[i].decision.reason for i in involved if not checks[i].decision.allowed]
        for f in figures:
            again = public_figure_permits(f.id, f.name, f"the generation involves {f.name!r}",
                                          [checks[i].decision for i in approved[f.id]])
            if not again.allowed:
                reasons.append(again.reason)
        if reasons:
            block(session, gen, [f"consent no longer holds at {stage}: {r}" for r in dict.fromkeys(reasons)],
                  stage=stage, notify_owners=involved_owner_ids(session, gen))
            raise _Stop
        return [checks[i] for i in involved]

    def _judge_figures_seen(self, session: Session, gen: Generation, matches: list[Any]) -> None:
        """Each protected public figure whose face the output shows: allowed only when a live-verified likeness
        an admin approved as them consents to the requester; recorded with the decisions, blocking when not."""
        decisions = []
        for figure_id in dict.fromkeys(m.likeness_id for m in matches):
            figure = session.get(Figure, figure_id)
            if figure is None:  # removed from the gallery meanwhile
                continue
            m = min((m for m in matches if m.likeness_id == figure_id), key=lambda m: m.distance)
            subject = (f"the output shows {figure.name!r} (distance {m.distance:.2f}, frames "
                       f"{m.first_frame}-{m.last_frame})")
            decisions.append(figures_svc.decide(session, figure, gen.requester_id, subject))
        self._record_or_stop(session, gen, decisions)

    @staticmethod
    def _record_or_stop(session: Session, gen: Generation, decisions: list[Any]) -> None:
        """Add what the scan saw and decided to the generation's decisions; any denial blocks it (stage scan)."""
        gen.decisions = [*gen.decisions, *(d.to_dict() for d in decisions)]
        session.add(gen)
        denials = [d.reason for d in decisions if not d.allowed]
        if denials:
            block(session, gen, denials, stage="scan", notify_owners=set())
            raise _Stop

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
        decisions = []
        for sighting in seen:
            policy = policies.get(sighting.character_id)
            if policy is None:  # deleted meanwhile: its rights holder no longer asks for anything
                continue
            subject = (f"the output shows {policy.name!r} (similarity {sighting.similarity:.2f}, frames "
                       f"{sighting.frames[0]}-{sighting.frames[-1]})")
            decision = judge(policy, gen.requester_id, subject)
            decisions.append(decision)
            row = session.get(GenerationCharacter, (gen.id, policy.character_id))
            if row is None:
                session.add(GenerationCharacter(generation_id=gen.id, character_id=policy.character_id,
                                                allowed=decision.allowed))
            elif not decision.allowed:
                row.allowed = False
                session.add(row)
        self._record_or_stop(session, gen, decisions)

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

    def _seal(self, clip: Any, gen: Generation, governance: dict[str, Any], marked: Path, final: Path,
              handle: str, parent: tuple[Path, str] | None) -> Any:
        """Label, watermark, encode, write the implicit label and sign into ``final``
        (:func:`governance.softbinding.sealing.seal_release`)."""
        from governance.softbinding.sealing import seal_release

        assert gen.content_id is not None
        return seal_release(self.rt, clip, generation_id=gen.id, content_id=gen.content_id, handle=handle,
                            governance=governance, marked=marked, final=final, parent=parent)

    def _remixed(self, session: Session, gen: Generation) -> tuple[Path, str] | None:
        """The signed file and title of the generation ``gen`` remixes (its manifest's ``inputTo`` ingredient),
        or None; a parent withdrawn since the request stops the remix (blocked, with the reason)."""
        from governance.remix.services import parents

        found = parents(session, gen.id)
        if not found:
            return None
        parent = session.get(Generation, found[0])
        path = self.rt.settings.videos_dir / f"{found[0]}.mp4"
        if parent is None or parent.taken_down_at is not None or parent.state is not GenerationState.RELEASED \
                or not path.is_file():
            block(session, gen, [f"the generation it remixes ({found[0]}) was withdrawn"], stage="seal",
                  notify_owners=set())
            raise _Stop
        return path, f"ConsentGate generation {parent.id}"


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
