"""A token bucket per client key (in-process; put a shared limiter in front when running several processes)."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict


class RateLimiter:
    def __init__(self, per_minute: int, *, max_clients: int = 10_000, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, last refill)
        self._max = max_clients
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take one token; returns 0.0 when allowed, else the seconds until a token is available."""
        if self.capacity <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)  # forget the least recently seen client
            return wait


def retry_after(wait_s: float) -> int:
    return max(1, math.ceil(wait_s))
