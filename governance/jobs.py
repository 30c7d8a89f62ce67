"""Job queues for the gate: in-process (embedded default) and Redis (several worker processes).

Both deliver generation ids at least once; the pipeline claims a job with a compare-and-set on its state,
so a job delivered twice runs once.

The Redis queue is the "reliable queue" pattern: ``BLMOVE`` moves an id from the shared list into this
worker's own processing list, and ``ack`` removes it from there only when the job is done. A worker that
dies mid-job leaves the id in its processing list; when a worker of the same name starts again it puts
those ids back (``recover``).
"""

from __future__ import annotations

import queue
import socket
from typing import Protocol


class JobQueue(Protocol):
    def put(self, job_id: str) -> None: ...

    def get(self, timeout: float) -> str | None:
        """The next job id, or None after ``timeout`` seconds without one."""
        ...

    def ack(self, job_id: str) -> None: ...

    def unacknowledged(self) -> list[str]:
        """Jobs this worker took but never acknowledged (it died mid-job)."""
        ...

    def recover(self) -> int:
        """Put those jobs back in the shared queue; returns how many."""
        ...

    def close(self) -> None: ...


class InProcessQueue:
    def __init__(self) -> None:
        self._q: queue.Queue[str] = queue.Queue()

    def put(self, job_id: str) -> None:
        self._q.put(job_id)

    def get(self, timeout: float) -> str | None:
        try:
            return self._q.get(timeout=timeout) if timeout > 0 else self._q.get_nowait()
        except queue.Empty:
            return None

    def ack(self, job_id: str) -> None:
        pass

    def unacknowledged(self) -> list[str]:
        return []

    def recover(self) -> int:
        return 0

    def close(self) -> None:
        pass


class RedisQueue:
    def __init__(self, url: str, *, prefix: str = "consentgate", worker_name: str | None = None) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=5)
        self.pending = f"{prefix}:jobs"
        self.worker_name = worker_name or f"{socket.gethostname()}"
        self.processing = f"{prefix}:processing:{self.worker_name}"

    def put(self, job_id: str) -> None:
        self._redis.lpush(self.pending, job_id)

    def get(self, timeout: float) -> str | None:
        if timeout > 0:
            raw = self._redis.blmove(self.pending, self.processing, timeout, "RIGHT", "LEFT")  # type: ignore[arg-type]
        else:
            raw = self._redis.lmove(self.pending, self.processing, "RIGHT", "LEFT")
        return raw.decode() if isinstance(raw, bytes) else raw

    def ack(self, job_id: str) -> None:
        self._redis.lrem(self.processing, 1, job_id)

    def unacknowledged(self) -> list[str]:
        return [x.decode() if isinstance(x, bytes) else str(x) for x in self._redis.lrange(self.processing, 0, -1)]

    def recover(self) -> int:
        moved = 0
        while self._redis.lmove(self.processing, self.pending, "RIGHT", "RIGHT") is not None:
            moved += 1
        return moved

    def depth(self) -> int:
        return int(self._redis.llen(self.pending))

    def close(self) -> None:
        self._redis.close()


def make_queue(kind: str, redis_url: str, prefix: str, worker_name: str | None = None) -> JobQueue:
    if kind == "inprocess":
        return InProcessQueue()
    if kind == "redis":
        return RedisQueue(redis_url, prefix=prefix, worker_name=worker_name)
    raise ValueError(f"queue must be 'inprocess' or 'redis', got {kind!r}")
