"""Job engines for the gate: in-process (the embedded default) and Dramatiq on Redis or RabbitMQ (many machines).

An engine carries generation ids from the API processes to whoever runs them, at least once. The database,
not the engine, decides who runs a job: the pipeline claims it with a compare-and-set on its state and a
lease (``Generation.claimed_by`` / ``lease_until``), so a job delivered twice runs once, and a job whose
worker died is taken over once its lease has run out (docs/adr/0008-job-engine-dramatiq.md).

- :class:`InProcessEngine` (``GOVERNANCE_QUEUE=inprocess``): a queue and one worker thread in the API
  process; no broker.
- :class:`DramatiqEngine` (``GOVERNANCE_QUEUE=redis`` or ``rabbitmq``): a Dramatiq actor on the broker;
  ``consentgate worker`` processes (one per GPU, one thread, prefetch 1) run it. Dramatiq re-delivers a dead
  worker's message (Redis: once its heartbeat is older than ``job_lease_s``; RabbitMQ: when its connection
  drops), and retries a transient failure after the backoff the pipeline asks for.

Only ``governance/`` knows the engine; the pipeline hands it a handler ``run(generation_id) -> None``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from governance.errors import Unavailable

if TYPE_CHECKING:
    from governance.config import Settings

log = logging.getLogger(__name__)

#: The queue (and actor) name generation jobs travel under, inside the settings' ``queue_prefix``.
QUEUE_NAME = "generations"
ACTOR_NAME = "consentgate.process_generation"


class RetryLater(Exception):  # noqa: N818  (a request, not an error)
    """Raised by a handler: run this job again after ``delay_s`` seconds (a transient failure, counted as a try
    when ``counts``; or another worker's lease that has not run out yet, not counted)."""

    def __init__(self, delay_s: float, why: str, *, counts: bool = True) -> None:
        super().__init__(f"{why}; again in {delay_s:.1f} s")
        self.delay_s, self.why, self.counts = delay_s, why, counts


class JobEngine(Protocol):
    name: str

    def submit(self, generation_id: str) -> None:
        """Hand the job to the engine; raises :class:`~governance.errors.Unavailable` when the broker is down."""
        ...

    def depth(self) -> int | None:
        """Jobs waiting in the engine (delayed retries included), or None when it cannot tell."""
        ...

    def ping(self) -> None:
        """Raise :class:`~governance.errors.Unavailable` when the broker cannot be reached."""
        ...

    def close(self) -> None: ...


class InProcessEngine:
    """A queue read by one worker thread of this process (started by the pipeline)."""

    name = "inprocess"

    def __init__(self) -> None:
        self._q: queue.Queue[str] = queue.Queue()

    def submit(self, generation_id: str) -> None:
        self._q.put(generation_id)

    def get(self, timeout: float) -> str | None:
        try:
            return self._q.get(timeout=timeout) if timeout > 0 else self._q.get_nowait()
        except queue.Empty:
            return None

    def depth(self) -> int | None:
        return self._q.qsize()

    def ping(self) -> None:
        pass

    def close(self) -> None:
        pass


class DramatiqEngine:
    """Generation jobs as messages of one Dramatiq actor on Redis or RabbitMQ.

    Building one connects to nothing: the API process talks to the broker at the first submit. The actor
    calls ``handler(generation_id)``; a :class:`RetryLater` from it is turned into Dramatiq's retry with
    that delay (the Retries middleware re-enqueues the message on the broker's delay queue)."""

    def __init__(self, settings: Settings, handler: Callable[[str], None]) -> None:
        import dramatiq
        from dramatiq.middleware import CurrentMessage, Retries, TimeLimit

        self.settings = settings
        self.name = settings.queue
        self._booted = False
        # The stage time limits are the pipeline's (governance.generations.pipeline.StageClock); Dramatiq's own
        # limit is a backstop over the whole job, never the one that fires first.
        backstop_ms = int(1000 * (settings.job_time_limit_s + 60))
        middleware = [TimeLimit(time_limit=backstop_ms), CurrentMessage(),
                      # a try that fails transiently says how long to wait (RetryLater); the count of tries
                      # lives in the message (``retries``) and the pipeline blocks the job after the last
                      Retries(max_retries=None, min_backoff=1000, max_backoff=3_600_000)]  # type: ignore[arg-type]
        if settings.queue == "redis":
            from dramatiq.brokers.redis import RedisBroker

            self.broker: Any = RedisBroker(
                url=settings.redis_url, namespace=f"{settings.queue_prefix}-dramatiq", middleware=middleware,
                heartbeat_timeout=int(settings.job_lease_s * 1000),
                maintenance_chance=settings.broker_maintenance_chance,
                socket_timeout=10, socket_connect_timeout=5, health_check_interval=15)
        elif settings.queue == "rabbitmq":
            from dramatiq.brokers.rabbitmq import RabbitmqBroker

            self.broker = RabbitmqBroker(url=settings.amqp_url, middleware=middleware, confirm_delivery=True)
        else:
            raise ValueError(f"DramatiqEngine needs queue 'redis' or 'rabbitmq', got {settings.queue!r}")
        self.queue_name = f"{settings.queue_prefix}.{QUEUE_NAME}" if settings.queue == "rabbitmq" else QUEUE_NAME

        def process_generation(generation_id: str) -> None:
            try:
                handler(generation_id)
            except RetryLater as e:
                message = CurrentMessage.get_current_message()
                if message is not None and not e.counts:  # waiting on a lease is not a failed try
                    message.options["retries"] = max(0, int(message.options.get("retries", 0)) - 1)
                raise dramatiq.Retry(str(e), delay=int(e.delay_s * 1000)) from e

        self.actor = dramatiq.actor(process_generation, broker=self.broker, actor_name=ACTOR_NAME,  # type: ignore[call-overload]
                                    queue_name=self.queue_name, max_retries=None, time_limit=backstop_ms)

    def submit(self, generation_id: str) -> None:
        try:
            self.actor.send(generation_id)
        except Exception as e:  # redis.ConnectionError, pika's AMQP errors, dramatiq's ConnectionError
            raise Unavailable(f"the job broker ({self.name}) cannot be reached: {type(e).__name__}") from e

    @staticmethod
    def tries_so_far() -> int:
        """How many earlier tries of the current message failed (0 outside an actor or on the first try)."""
        from dramatiq.middleware import CurrentMessage

        message = CurrentMessage.get_current_message()
        return 0 if message is None else int(message.options.get("retries", 0))

    def depth(self) -> int | None:
        try:
            if self.settings.queue == "redis":
                ns, client = self.broker.namespace, self.broker.client
                return int(client.llen(f"{ns}:{self.queue_name}")) + int(client.hlen(f"{ns}:{self.queue_name}.DQ.msgs"))
            counts = self.broker.get_queue_message_counts(self.queue_name)
            return int(counts[0]) + int(counts[1])
        except Exception:
            log.debug("the broker's queue depth could not be read", exc_info=True)
            return None

    def ping(self) -> None:
        try:
            if self.settings.queue == "redis":
                self.broker.client.ping()
            else:
                self.broker.get_queue_message_counts(self.queue_name)
        except Exception as e:
            raise Unavailable(f"the job broker ({self.name}) cannot be reached: {type(e).__name__}") from e

    def worker(self) -> Any:
        """A Dramatiq worker for this process: one thread (one GPU), at most one message taken ahead (prefetch 1)."""
        import dramatiq

        if not self._booted:  # what `dramatiq` itself signals at start: starts the TimeLimit backstop's clock
            self.broker.emit_after("process_boot")
            self._booted = True
        worker = dramatiq.Worker(self.broker, queues={self.queue_name}, worker_threads=1, worker_timeout=1000)
        worker.queue_prefetch = 1  # the default takes two per thread; one GPU runs one job, the next stays queued
        worker.delay_prefetch = 1000
        return worker

    def close(self) -> None:
        try:
            self.broker.close()
        except Exception:
            log.debug("closing the broker failed", exc_info=True)


def make_engine(settings: Settings, handler: Callable[[str], None]) -> JobEngine:
    if settings.queue == "inprocess":
        return InProcessEngine()
    return DramatiqEngine(settings, handler)


class ThreadWatch:
    """Raise an exception in a worker thread once a deadline passes (a stage's time limit, a shutdown's grace).

    CPython delivers it the next time that thread runs Python code: a call stuck in C (a GPU kernel, a read
    on a dead disk) is interrupted when it returns."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self._deadlines: dict[int, tuple[float, type[BaseException]]] = {}
        self._fired: set[int] = set()
        self._lock = threading.Lock()
        self._interval = interval_s
        self._thread: threading.Thread | None = None

    def set(self, thread_id: int, deadline: float, exc: type[BaseException]) -> None:
        with self._lock:
            self._deadlines[thread_id] = (deadline, exc)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="consentgate-watch", daemon=True)
                self._thread.start()

    def clear(self, thread_id: int) -> None:
        """No deadline for ``thread_id`` any more; an exception raised but not yet delivered is withdrawn."""
        with self._lock:
            self._deadlines.pop(thread_id, None)
            if thread_id in self._fired:
                self._fired.discard(thread_id)
                async_raise(thread_id, None)

    def _run(self) -> None:
        import time

        while True:
            time.sleep(self._interval)
            now = time.monotonic()
            with self._lock:
                for tid, (deadline, exc) in list(self._deadlines.items()):
                    if now >= deadline:
                        del self._deadlines[tid]
                        self._fired.add(tid)
                        async_raise(tid, exc)


#: The process's one watch thread (thread ids are unique within a process).
WATCH = ThreadWatch()


def async_raise(thread_id: int, exc: type[BaseException] | None) -> None:
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None)
