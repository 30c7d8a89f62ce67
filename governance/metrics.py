"""Prometheus metrics of one process (an API process or a worker), scraped at ``GET /metrics`` (docs/operations.md
says what an alert on each means).

Counters and histograms live in the process's default registry and add up across processes in Prometheus.
Gauges that read the database or the broker (jobs waiting and the oldest one's age, broker depth, index
lag) are computed at each scrape by :func:`exposition`. No label ever carries an id, a name or a prompt::

    >>> from governance.metrics import reason_label
    >>> reason_label("character:ch_0123456789abcdef:licensees_only")
    'character:licensees_only'
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlmodel import Session

    from governance.jobs import JobEngine

log = logging.getLogger(__name__)

#: Stage durations of real generators run from seconds (procedural) to an hour (a large diffusion model).
STAGE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)

DECISIONS = Counter("consentgate_decisions", "Precheck decisions by outcome and rule family",
                    ["outcome", "reason"])
GENERATIONS = Counter("consentgate_generations", "Generations that reached a final state, by the stage that ended "
                      "them", ["state", "stage"])
STAGE_SECONDS = Histogram("consentgate_stage_duration_seconds", "Time a job spent in each stage of the gate",
                          ["stage"], buckets=STAGE_BUCKETS)
JOB_SECONDS = Histogram("consentgate_job_end_to_end_seconds", "From the request to its final state (released or "
                        "blocked after the precheck)", ["state"], buckets=STAGE_BUCKETS)
RETRIES = Counter("consentgate_job_retries", "Tries of a job that failed transiently and were scheduled again",
                  ["reason"])
TAKEOVERS = Counter("consentgate_job_takeovers", "Jobs taken over from a worker whose lease ran out")
SUBMIT_FAILURES = Counter("consentgate_submit_failures", "Jobs that could not be handed to the broker at once "
                          "(the sweeper hands them over later)")
RESUBMITTED = Counter("consentgate_jobs_resubmitted", "Jobs the sweeper handed to the broker again")
STAGE_TIMEOUTS = Counter("consentgate_stage_timeouts", "Stages interrupted at their time limit", ["stage"])
HTTP_RESPONSES = Counter("consentgate_http_responses", "HTTP answers by status code: every answer of the app, and "
                         "the refusals the servers' front gives itself (governance.serving.RequireHost: a request "
                         "without Host or with several)", ["status"])
VERIFY_REQUESTS = Counter("consentgate_verify_requests", "POST /v1/verify requests by HTTP status class",
                          ["status"])
VERIFY_SECONDS = Histogram("consentgate_verify_duration_seconds", "Time to answer a verification",
                           buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
VERIFY_MEGAPIXELS = Counter("consentgate_verify_decoded_megapixels", "Megapixels decoded for verifications "
                            "(what the verify-cost limit charges)")
INDEX_SYNC_SECONDS = Histogram("consentgate_index_sync_duration_seconds", "Time to bring an in-memory index up to "
                               "the database", ["index"], buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30))
INDEX_CHANGES = Counter("consentgate_index_changes_applied", "Likenesses or fingerprints loaded into an in-memory "
                        "index (a first full load counts every row)", ["index"])
SIGNER_FAILURES = Counter("consentgate_signer_failures", "C2PA or tree-head signatures that failed (a KMS/HSM "
                          "that is down or slow)")
NOTICES_ESCALATED = Counter("consentgate_notices_escalated", "Takedown notices escalated because no reviewer decided "
                            "within the deadline (governance/notices/deadlines.py)")
WATERMARK_FAILURES = Counter("consentgate_watermark_failures", "Jobs whose invisible watermark could not be "
                             "embedded or read back")

_ID = re.compile(r"^[a-z]+_[0-9a-f]{16}$")


def reason_label(rule: str) -> str:
    """A decision's rule without the ids it names: a bounded set of values (``likeness:approved``,
    ``character:deny``, ``default``, ...)."""
    parts = [p for p in str(rule or "none").split(":") if p and not _ID.match(p)]
    return ":".join(parts)[:64] or "none"


def responded(status: int) -> None:
    """An HTTP answer with ``status`` was given (:data:`HTTP_RESPONSES`; the code is the label: a bounded set)."""
    HTTP_RESPONSES.labels(status=str(status)).inc()


def decisions(rows: Iterable[dict[str, Any]]) -> None:
    for d in rows:
        DECISIONS.labels(outcome=str(d.get("decision", "?")), reason=reason_label(str(d.get("rule", "")))).inc()


def finished(state: str, stage: str, seconds: float | None) -> None:
    """A generation reached ``state`` (released or blocked) at ``stage``, ``seconds`` after it was requested."""
    GENERATIONS.labels(state=state, stage=stage).inc()
    if seconds is not None and seconds >= 0:
        JOB_SECONDS.labels(state=state).observe(seconds)


def index_synced(kind: str, applied: int, seconds: float) -> None:
    INDEX_SYNC_SECONDS.labels(index=kind).observe(seconds)
    if applied:
        INDEX_CHANGES.labels(index=kind).inc(applied)


class IndexLag(Protocol):
    """What the gauges read of the in-memory indexes (:class:`governance.runtime.Indexes`)."""

    def lag(self, session: Session) -> dict[str, int]: ...


class _Live:
    """The gauges read at scrape time from the database, this process's indexes and the job broker."""

    def __init__(self, engine: sa.Engine, indexes: IndexLag, jobs: JobEngine) -> None:
        self.engine, self.indexes, self.jobs = engine, indexes, jobs

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy import func
        from sqlmodel import Session, select

        from governance.columns import utcnow
        from governance.generations.models import Generation, GenerationState

        active = (GenerationState.PRECHECKED, GenerationState.GENERATING, GenerationState.SCANNING,
                  GenerationState.SEALING)
        jobs = GaugeMetricFamily("consentgate_jobs", "Jobs not finished, by state (prechecked: waiting for a "
                                 "worker)", labels=["state"])
        oldest = GaugeMetricFamily("consentgate_oldest_waiting_job_age_seconds", "Age of the oldest job waiting for "
                                   "a worker (0: none waits)")
        lag = GaugeMetricFamily("consentgate_index_lag_changes", "Changes in the database this process's in-memory "
                                "index has not applied yet (-1: not loaded yet)", labels=["index"])
        try:
            with Session(self.engine) as session:
                counts = dict(session.exec(select(Generation.state, func.count()).where(  # type: ignore[call-overload]
                    Generation.state.in_(active)).group_by(Generation.state)).all())  # type: ignore[attr-defined]
                first = session.exec(select(func.min(Generation.created_at)).where(
                    Generation.state == GenerationState.PRECHECKED)).one()
                index_lag = self.indexes.lag(session)
        except Exception:
            log.warning("the database could not be read for /metrics", exc_info=True)
            return
        for state in active:
            jobs.add_metric([state.value], float(counts.get(state, 0)))
        yield jobs
        oldest.add_metric([], 0.0 if first is None else max(0.0, (utcnow() - _aware(first)).total_seconds()))
        yield oldest
        for kind, value in index_lag.items():
            lag.add_metric([kind], float(value))
        yield lag
        depth = self.jobs.depth()
        if depth is not None:
            yield GaugeMetricFamily("consentgate_broker_queue_depth", "Messages waiting in the job broker (delayed "
                                    "retries included)", value=float(depth))


def _aware(dt: Any) -> Any:
    from datetime import UTC

    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def exposition(engine: sa.Engine, indexes: IndexLag, jobs: JobEngine) -> bytes:
    """This process's metrics in the Prometheus text format, with the gauges read now from the database
    (``engine``), the in-memory ``indexes`` and the job broker (``jobs``)."""
    live = CollectorRegistry(auto_describe=False)
    live.register(_Live(engine, indexes, jobs))  # type: ignore[arg-type]
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY) + generate_latest(live)


class Timer:
    """``with Timer() as t: ...; t.seconds``."""

    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started
