"""The gate's job running: one generation from ``prechecked`` through the stages of
:mod:`governance.generations.gate` (generate, scan, seal, release) to ``released`` (or ``blocked``).

Raw output stays in the worker's memory (nothing read a copy on disk back, and writing one cost more than the
encode: issue 12); the marked, not yet signed encode lives in quarantine and is deleted whatever happens; a
sealed file exists outside quarantine only for a released generation.

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
import logging
import os
import secrets
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import update
from sqlmodel import Session, col, select

from governance import logs, metrics
from governance.characters.services import LabelFont
from governance.columns import utcnow
from governance.db import unit_of_work
from governance.errors import Unavailable, causes, describe_failure, public_text
from governance.generations import gate
from governance.generations.models import Generation, GenerationState
from governance.generations.services.generations import block
from governance.jobs import (
    WATCH,
    DramatiqEngine,
    InProcessEngine,
    JobEngine,
    RetryLater,
    async_raise,
    make_engine,
)
from media.errors import ConsentGateError

if TYPE_CHECKING:
    from generator.base import VideoGenerator
    from governance.config import Settings
    from governance.log.services.heads import TreeHeads
    from governance.runtime import Detectors, Indexes, Keys
    from media.video import Clip

log = logging.getLogger(__name__)
EVENTS = ("generated", "scanned", "sealed")
_ACTIVE = (GenerationState.PRECHECKED, GenerationState.GENERATING, GenerationState.SCANNING, GenerationState.SEALING)


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


def _described(e: BaseException) -> str:
    """``e`` as a requester may read it; a storage failure anywhere in its chain by that operating-system error
    (``OSError: No space left on device``), whatever library wrapped it."""
    for cause in causes(e):
        if isinstance(cause, OSError) and cause.errno in _STORAGE_ERRNOS:
            return describe_failure(cause)
    return describe_failure(e)


def _storage_failure(e: BaseException) -> bool:
    return _transient_failure(e) == "storage"


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS}
_TRANSIENT_NOTE = {
    "storage": "the service is short of storage or its disk failed",
    "generator busy": "the generator was busy or out of memory",
    "timeout": "a backend it needs (the signer, the database) timed out or could not be reached",
    "database": "the database connection failed",
}


class _Leased(BaseException):
    """Another worker holds the job under a lease that has not run out: try again once it has. (Not an
    ``Exception``: the stages' error handling, which blocks a generation, must let it through.)"""

    def __init__(self, remaining_s: float) -> None:
        super().__init__(f"leased for another {remaining_s:.1f} s")
        self.remaining_s = remaining_s


class StageTimeLimit(ConsentGateError):
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
    """Runs generation jobs through the gate with the resources it is given: ``settings``, the database
    (``db``), the face ``detectors`` and likeness ``indexes``, the signing and watermark ``keys``, the log's
    tree ``heads``, and ``generator`` (called on first use: a diffusers model loads then, not at start)."""

    def __init__(self, settings: Settings, db: sa.Engine, *, detectors: Detectors, indexes: Indexes, keys: Keys,
                 heads: TreeHeads, generator: Callable[[], VideoGenerator]) -> None:
        self.settings, self.db = settings, db
        self.detectors, self.indexes, self.keys, self.heads = detectors, indexes, keys, heads
        self._generator = generator
        s = settings
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
        self._sweeps: list[tuple[str, Callable[[Session], object]]] = []
        self.watch = WATCH

    # -- wiring -------------------------------------------------------------------------------------------
    def every_sweep(self, what: str, fn: Callable[[Session], object]) -> None:
        """Run ``fn`` in its own unit of work at each periodic sweep of a worker (every ``sweep_every_s``), after
        the held drafts expire; ``what`` names it in the log when it fails (best effort: the next sweep tries
        again). The container registers the other domains' deadlines here (the notices' review deadline)."""
        self._sweeps.append((what, fn))

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
            if self.settings.worker == "thread":
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
            with unit_of_work(self.db) as session:
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
        with unit_of_work(self.db) as session:
            ids = list(session.exec(select(Generation.id).where(Generation.state.in_(_ACTIVE))).all())  # type: ignore[attr-defined]
            for gid in ids:
                gen = session.get(Generation, gid)
                if gen is not None and gen.state in _ACTIVE:
                    gen.state = GenerationState.PRECHECKED
                    session.add(gen)
        for gid in ids:
            self.submit(gid)
        return ids

    def run_worker(self, *, max_jobs: int | None = None, poll_s: float = 0.5) -> int:
        """Take jobs until stopped (or ``max_jobs`` messages were handled); returns how many. With a broker this
        runs a Dramatiq worker in this process (one thread, prefetch 1) and sweeps lost jobs back."""
        if not isinstance(self.engine, InProcessEngine):
            return self._run_broker_worker(max_jobs, poll_s)
        done = 0
        next_sweep = 0.0
        while not self._stopping.is_set() and (max_jobs is None or done < max_jobs):
            if time.monotonic() >= next_sweep:
                self.periodic()
                next_sweep = time.monotonic() + self.settings.sweep_every_s
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
                    self.periodic()
                    next_sweep = time.monotonic() + self.settings.sweep_every_s
                self._stopping.wait(poll_s)
        finally:
            self.shutdown(worker)
        return self._handled - start

    def periodic(self) -> None:
        """The deadlines a worker enforces on a timer: held drafts expire (:meth:`expire_drafts`), then each
        sweep registered with :meth:`every_sweep`. Each is best effort: a failure is logged, the next one runs."""
        self.expire_drafts()
        for what, fn in self._sweeps:
            try:
                with unit_of_work(self.db) as session:
                    fn(session)
            except Exception:
                log.warning("%s could not be swept", what, exc_info=True)

    def expire_drafts(self) -> list[str]:
        """Block the held drafts whose owner's approval ran out (:func:`governance.restrictions.drafts.expire_due`).
        Best effort, like the sweep: a failure is logged and the next sweep tries again. Returns the ids."""
        from governance.restrictions.drafts import expire_due

        try:
            with unit_of_work(self.db) as session:
                return expire_due(session, self.settings.videos_dir)
        except Exception:
            log.warning("expired draft approvals could not be swept", exc_info=True)
            return []

    def shutdown(self, worker: Any) -> None:
        """Stop a Dramatiq worker gracefully: no new job; the current one finishes within ``shutdown_grace_s``,
        or is handed back to the queue (its files removed, the generation waiting again)."""
        grace = self.settings.shutdown_grace_s

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
        delays = self.settings.io_retry_delays
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
                log.warning("generation %s failed transiently while %s (%s); trying again in %g s",
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
        limit = self.settings.stage_limits[job.stage]
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
            with Session(self.db, expire_on_commit=False) as session:
                gen = session.get(Generation, generation_id)
        except Exception:
            return
        if gen is not None and gen.state is GenerationState.HELD:
            log.info("generation %s: held after %s for a likeness owner's review", generation_id, job.stage,
                     extra={"stage": job.stage, "state": gen.state.value})
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
            with unit_of_work(self.db) as session:
                session.execute(update(Generation).where(
                    Generation.id == generation_id, Generation.claimed_by == job.claim,  # type: ignore[arg-type]
                    Generation.state.in_(_ACTIVE))  # type: ignore[attr-defined]
                    .values(state=GenerationState.PRECHECKED, lease_until=None, updated_at=utcnow()))
            log.info("generation %s handed back to the queue: the worker is shutting down", generation_id)
        except Exception:  # its lease runs out and another worker takes it over
            log.warning("generation %s could not be handed back", generation_id, exc_info=True)

    def _keep_leases(self) -> None:
        """Renew the lease of every job this process runs, every third of ``job_lease_s``."""
        lease = self.settings.job_lease_s
        while True:
            time.sleep(lease / 3)
            with self._lock:
                if not self._running:  # idle: the next claim starts another keeper
                    self._keeper = None
                    return
            for gid, claim in list(self._running.items()):
                try:
                    with unit_of_work(self.db) as session:
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
        s = self.settings
        now = utcnow()
        try:
            depth = self.engine.depth()
            with unit_of_work(self.db) as session:
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
        with Session(self.db, expire_on_commit=False) as session:
            for path in sorted(self.settings.quarantine_dir.glob("gen_*")):
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

    # -- one try through the gate's stages (governance.generations.gate) ---------------------------------------
    def _process_once(self, generation_id: str, *, tries: int = 1, last: bool = True) -> None:
        """Run the stages in order, each database stage in its own transaction (which commits a block:
        :func:`~governance.generations.gate.stage_transaction`); a boundary event after generate, scan and
        seal. Any other failure is retried (transient, :func:`_transient_failure`) or blocks with its reason.
        The quarantine files go whatever happens; the sealed file stays only for a release."""
        marked = self.settings.quarantine_dir / f"{generation_id}.marked.mp4"
        final = self.settings.videos_dir / f"{generation_id}.mp4"
        stage, released = "generating", False
        try:
            clip = self._generate(generation_id)
            stage = "scanning"
            seen = self._scan(generation_id, clip)
            stage = "sealing"
            order, sealed = self._seal(generation_id, clip, seen, marked, final)
            stage = "release"
            with gate.stage_transaction(self.db) as session:
                gate.release(session, self._expect(session, generation_id, GenerationState.SEALING), order, sealed,
                             draft_ttl_s=self.settings.draft_approval_ttl_s)
            released = True
        except gate.Stopped:
            pass
        except Exception as e:  # a crash must still leave a record saying why nothing was released
            if _transient_failure(e) == "storage" and self._holds(generation_id):
                # free the space this try took before writing down why it failed (SQLite shares the disk)
                marked.unlink(missing_ok=True)
                final.unlink(missing_ok=True)
            self._failed(generation_id, e, stage, tries=tries, last=last)
        finally:
            if self._holds(generation_id):  # a delivery that did not claim the job leaves the holder's files
                marked.unlink(missing_ok=True)
                if not released:
                    final.unlink(missing_ok=True)
        if released:
            self._keep_log_head()

    def _generate(self, generation_id: str) -> Clip:
        """Claim the job and prepare the spec (one transaction), then generate; the clip stays in memory. A
        generator that refuses the request (:class:`~generator.base.GeneratorError`) blocks it with its reason."""
        from generator.base import GeneratorError

        with gate.stage_transaction(self.db) as session:
            spec = gate.prepare(session, self._claim(session, generation_id), self.settings,
                                self._generator().info)
        try:
            clip = self._generator().generate(spec)
        except GeneratorError as e:
            log.warning("generation %s: the generator could not serve the request: %s", generation_id, e)
            with gate.stage_transaction(self.db) as session:
                gate.refused(session, self._expect(session, generation_id, GenerationState.GENERATING),
                             public_text(str(e)))
            raise gate.Stopped from e
        self._emit("generated", generation_id)
        return clip

    def _scan(self, generation_id: str, clip: Clip) -> gate.Sighting:
        found = self.detectors
        with gate.stage_transaction(self.db) as session:
            gen = self._expect(session, generation_id, GenerationState.GENERATING)
            inputs = gate.scan_inputs(session, gen, self.indexes.sync_index, found.character_encoder)
        seen = gate.scan(clip, inputs, found.face_backend, found.match_threshold, self.settings,
                         found.character_encoder)
        with gate.stage_transaction(self.db) as session:
            gen = self._expect(session, generation_id, GenerationState.SCANNING)
            gate.judge_scan(session, gen, seen, clip.frames, self.settings.scan_uncertain)
        self._emit("scanned", generation_id)
        return seen

    def _seal(self, generation_id: str, clip: Clip, seen: gate.Sighting, marked: Path,
              final: Path) -> tuple[gate.SealOrder, gate.Sealed]:
        label = LabelFont.of(self.settings)
        with gate.stage_transaction(self.db) as session:
            gen = self._expect(session, generation_id, GenerationState.SEALING)
            order = gate.seal_order(session, gen, seen.faces, self.settings.scan_thorough_every_s,
                                    videos_dir=self.settings.videos_dir, label=label)
        keys = self.keys
        sealer = gate.Sealer(self._generator().info, keys.watermark_key, keys.material, keys.sign_fn,
                             self.settings.tsa_url or None, label_language=label.language, label_font=label.font,
                             embed_threads=self.settings.embed_threads or None)
        sealed = gate.seal(clip, order, sealer, marked, final)
        self._emit("sealed", generation_id)
        return order, sealed

    def _failed(self, generation_id: str, e: Exception, stage: str, *, tries: int, last: bool) -> None:
        """A try failed: a transient failure with tries left goes back to ``prechecked`` (:class:`_Retry`);
        anything else blocks with the cause as a requester may read it (the log keeps the details)."""
        transient = _transient_failure(e)
        self._count_failure(e, stage)
        if transient and not last and self._rewind(generation_id):
            raise _Retry(stage, _described(e), transient) from e
        log.exception("generation %s failed while %s", generation_id, stage)
        reason = f"internal error while {stage}: {_described(e)}"
        if transient:
            reason += f" ({_TRANSIENT_NOTE[transient]}; tried {tries} time(s))"
        self._block_failed(generation_id, reason, stage)

    # -- helpers --------------------------------------------------------------------------------------------
    def _rewind(self, generation_id: str) -> bool:
        """Put a generation that failed mid-way back to ``prechecked`` for another try (False: it is
        finished, taken down, or the database cannot be written either)."""
        try:
            with unit_of_work(self.db) as session:
                gen = session.get(Generation, generation_id)
                if gen is None or gen.taken_down_at is not None or gen.state not in _ACTIVE:
                    return False
                gate.advance(session, gen, GenerationState.PRECHECKED)
                return True
        except Exception:
            log.exception("generation %s could not be put back for another try", generation_id)
            return False

    def _block_failed(self, generation_id: str, reason: str, stage: str) -> None:
        """Block a generation that failed, with ``reason``; the database itself may be short of space
        for a moment, so the write is tried again after each of ``io_retry_delays``."""
        for delay in (*self.settings.io_retry_delays, None):
            try:
                with unit_of_work(self.db) as session:
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
            with Session(self.db, expire_on_commit=False) as session:
                self.heads.signed(session)
        except Exception:
            log.warning("the transparency log's head could not be signed after a release", exc_info=True)

    def _claim(self, session: Session, generation_id: str) -> Generation:
        """-> generating as one compare-and-set, under a lease this worker renews while it works: from
        ``prechecked``, or from a later stage whose worker's lease ran out (it died: the job starts again).
        Of two deliveries of a job, one wins; a job another worker holds is tried again after its lease."""
        now = utcnow()
        lease = timedelta(seconds=self.settings.job_lease_s)
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
            raise gate.Stopped
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
            raise gate.Stopped
        job = _JOB.get()
        if job is not None and job.claim is not None and gen.claimed_by != job.claim:
            log.warning("generation %s: another worker took the job over; this one stops", generation_id)
            raise gate.Stopped
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
