"""A token bucket per client key: in-process (:class:`RateLimiter`, the embedded default) or shared by
every process through Redis (:class:`RedisRateLimiter`, used with the Redis job queue), so that several
API processes enforce one limit.

A bucket counts requests (one token each) or cost: :meth:`~Limiter.charge` takes what a request really
cost once it is known (the verify bucket of decoded megapixels), and may leave the bucket in debt; a
client in debt waits (``acquire(key, 0)``) until the refill has paid it back."""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from typing import Protocol

log = logging.getLogger(__name__)


class Limiter(Protocol):
    def acquire(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens for ``key``; 0.0 when allowed, else the seconds until they are there."""
        ...

    def charge(self, key: str, amount: float) -> None:
        """Take ``amount`` tokens for ``key`` after the fact, down to at most one bucket of debt."""
        ...


class _Bucket:
    """What both limiters share: ``per_minute`` tokens a bucket, refilled evenly; a limit of 0 (or a negative
    cost) lets everything through. Subclasses keep the buckets (:meth:`_update`)."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0

    def acquire(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; returns 0.0 when allowed, else the seconds until they are available."""
        return self._update(key, cost, after=False) if self.capacity > 0 and cost >= 0 else 0.0

    def charge(self, key: str, amount: float) -> None:
        """Take ``amount`` tokens after the fact (the bucket may go down to ``-capacity``)."""
        if self.capacity > 0 and amount >= 0:
            self._update(key, amount, after=True)

    def _update(self, key: str, cost: float, *, after: bool) -> float:
        raise NotImplementedError


class RateLimiter(_Bucket):
    def __init__(self, per_minute: int, *, max_clients: int = 10_000, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        super().__init__(per_minute)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, last refill)
        self._max = max_clients
        self._lock = threading.Lock()

    def _update(self, key: str, cost: float, *, after: bool) -> float:
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            wait = 0.0
            if after:
                tokens = max(-self.capacity, tokens - cost)
            elif tokens >= cost:
                tokens -= cost
            else:
                wait = (cost - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)  # forget the least recently seen client
            return wait


# One atomic step of the bucket, on Redis's clock (every process sees the same time): refill, take the cost
# or say how long until it is there, and let an idle bucket expire once it would be full again.
# ARGV[3] is the cost; ARGV[4] "1" charges it after the fact (down to one bucket of debt).
_BUCKET = """
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local cost, after = tonumber(ARGV[3]), ARGV[4] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if after then tokens = math.max(-capacity, tokens - cost)
elseif tokens >= cost then tokens = tokens - cost
else wait = (cost - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.6f', now))
redis.call('EXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate) + 1)
return string.format('%.6f', wait)
"""


class RedisRateLimiter(_Bucket):
    """The same token bucket as :class:`RateLimiter`, kept in Redis (``{prefix}:ratelimit:{name}:{hash}``)
    and updated by one Lua script, so all processes share it. Client keys are hashed (they may hold
    account ids or addresses). If Redis cannot be reached the request is let through and a warning
    logged: the limit protects the service from abuse; it is not worth failing verification for."""

    def __init__(self, per_minute: int, url: str, *, prefix: str = "consentgate", name: str = "verify") -> None:
        import redis

        super().__init__(per_minute)
        self._prefix = f"{prefix}:ratelimit:{name}:"
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._redis.register_script(_BUCKET)

    def _update(self, key: str, cost: float, *, after: bool) -> float:
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        try:
            raw = self._script(keys=[self._prefix + digest],
                               args=[self.capacity, self.rate, f"{cost:.6f}", "1" if after else "0"])
        except Exception as e:  # redis.RedisError and connection failures
            log.warning("rate limiter: Redis unavailable, request let through: %s", e)
            return 0.0
        return float(raw.decode() if isinstance(raw, bytes) else raw)

    def close(self) -> None:
        self._redis.close()


def retry_after(wait_s: float) -> int:
    return max(1, math.ceil(wait_s))
