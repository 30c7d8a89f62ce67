"""What one request may make the service do: decoding limits, a slot for expensive work, and the cost
charged to the client's verify allowance.

Every upload decoded by the service (verification, enrollment, character references) and by the CLI
runs under :func:`decode_limits`; the views run the expensive ones inside :func:`expensive`::

    with admission.expensive(throttles, "verify", client) as meter:
        report = verification.verify_bytes(data, meter=meter, ...)

which (1) refuses a client whose verify allowance of decoded megapixels is spent (429), (2) takes one
of ``expensive_slots`` per process or answers 503 with Retry-After at once (a request never waits in a
queue holding a server thread), (3) turns a crossed limit into a 422 naming it, and (4) charges what
was decoded to the client, even when the request failed half-way. ``docs/limits.md`` has the numbers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Literal

from governance.config import MB, Settings
from governance.errors import Busy, LimitReached, RateLimited
from governance.ratelimit import Limiter, RateLimiter, RedisRateLimiter, retry_after
from media.errors import LimitExceeded
from media.limits import Limits, Meter

log = logging.getLogger(__name__)

Purpose = Literal["verify", "enroll", "reference", "cli"]


def decode_limits(settings: Settings, purpose: Purpose) -> Limits:
    """The limits an upload for ``purpose`` is decoded under, from the settings.

    Verification (and the CLI's ``verify``/``scan``) decodes up to ``verify_max_seconds``; enrollment up
    to ``enroll_max_seconds`` (a selfie video needs a few seconds); the other limits are shared.
    """
    seconds = settings.enroll_max_seconds if purpose in ("enroll", "reference") else settings.verify_max_seconds
    return Limits(image_pixels=settings.max_image_pixels, frame_pixels=settings.max_frame_pixels,
                  frames=settings.max_frames, seconds=seconds, tracks=settings.max_tracks,
                  photos=settings.max_photos, memory_bytes=settings.decode_memory_mb * MB)


def limit_error(e: LimitExceeded) -> LimitReached:
    """The 422 problem for a crossed decoding limit: ``limit`` names it, ``allowed`` is its value."""
    allowed: float = e.allowed if e.limit == "seconds" else int(e.allowed)
    return LimitReached(str(e), limit=e.limit, allowed=allowed)


class Slots:
    """At most ``n`` expensive requests at once in this process; the next one is refused, not queued."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"slots must be >= 1, got {n}")
        self.n = n
        self._sem = threading.BoundedSemaphore(n)
        self._taken = 0  # slots held now (read by busy(); changed under the semaphore's own accounting)
        self._lock = threading.Lock()

    @contextmanager
    def take(self, what: str) -> Iterator[None]:
        if not self._sem.acquire(blocking=False):
            raise Busy(f"{what}: all {self.n} slots for decoding uploads are in use; retry in a moment",
                       retry_after=1)
        with self._lock:
            self._taken += 1
        try:
            yield
        finally:
            with self._lock:
                self._taken -= 1
            self._sem.release()

    def busy(self) -> bool:
        """Whether an expensive request holds a slot now."""
        with self._lock:
            return self._taken > 0


class Throttles:
    """This process's limits on expensive and repeated work, from ``settings``: the slots for decoding uploads
    (``expensive_slots``) and the rate limiters of verification (requests and decoded megapixels per client)
    and of rule simulations (per account). Limiters count per process with the in-process engine, and through
    Redis (``redis_url``) when a broker carries the jobs: then several API processes run, and each must count
    every request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.slots = Slots(settings.expensive_slots)
        self.memory = MemoryReturn(self.slots.busy)

    @cached_property
    def verify(self) -> Limiter:
        """``/v1/verify`` requests per client (``verify_per_minute``)."""
        return self._limiter(self.settings.verify_per_minute, "verify")

    @cached_property
    def verify_cost(self) -> Limiter:
        """Decoded megapixels per verify client (``verify_megapixels_per_minute``): a request is charged what it
        decoded, and a client in debt waits."""
        return self._limiter(self.settings.verify_megapixels_per_minute, "verify-cost")

    @cached_property
    def simulate(self) -> Limiter:
        """Rule simulations per rights-holder account (``simulate_per_minute``)."""
        return self._limiter(self.settings.simulate_per_minute, "simulate")

    def _limiter(self, per_minute: int, name: str) -> Limiter:
        s = self.settings
        if s.shared_limits and per_minute > 0:
            return RedisRateLimiter(per_minute, s.redis_url, prefix=s.queue_prefix, name=name)
        return RateLimiter(per_minute)

    def close(self) -> None:
        """Close the Redis connections of the shared limiters made so far, and hand freed memory back now."""
        self.memory.close()
        for name in ("verify", "verify_cost", "simulate"):
            close = getattr(self.__dict__.get(name), "close", None)
            if close is not None:
                close()


@contextmanager
def expensive(throttles: Throttles, purpose: Purpose, client: str | None = None) -> Iterator[Meter]:
    """Run one expensive request (see the module docstring) under ``throttles``; yields the :class:`Meter` to decode
    with."""
    cost = throttles.verify_cost if purpose == "verify" and client is not None else None
    if cost is not None:
        wait = cost.acquire(client, 0.0)  # type: ignore[arg-type]
        if wait:
            per_minute = throttles.settings.verify_megapixels_per_minute
            raise RateLimited(f"this client has used its verification allowance ({per_minute} decoded megapixels "
                              f"a minute); retry in {retry_after(wait)} s", retry_after=retry_after(wait))
    with throttles.slots.take(purpose):
        meter = Meter(decode_limits(throttles.settings, purpose))
        try:
            yield meter
        except LimitExceeded as e:
            raise limit_error(e) from e
        finally:
            if cost is not None and meter.pixels:
                cost.charge(client, meter.megapixels)  # type: ignore[arg-type]
            if purpose == "verify" and meter.pixels:
                from governance import metrics  # the server's (a CLI that only reads decode_limits never loads it)

                metrics.VERIFY_MEGAPIXELS.inc(meter.megapixels)
            throttles.memory.done()


_libc: ctypes.CDLL | None | bool = False


def _glibc() -> ctypes.CDLL | None:
    """glibc, loaded once (None elsewhere: musl, macOS, Windows)."""
    global _libc
    if _libc is False:
        name = ctypes.util.find_library("c")
        try:
            lib = ctypes.CDLL(name) if name else None
            _libc = lib if lib is not None and hasattr(lib, "malloc_trim") and hasattr(lib, "mallopt") else None
        except OSError:
            _libc = None
    return _libc  # type: ignore[return-value]


def release_memory() -> None:
    """Give freed heap memory back to the operating system (glibc's ``malloc_trim``; elsewhere nothing).

    Decoding frees its frames at once, but glibc keeps freed blocks in the thread's arena, so a server's
    resident size only grows with the largest request each of its threads ever served (measured in
    docs/limits.md). :class:`MemoryReturn` calls it once expensive work has stopped for a moment; the call itself
    takes 1-18 ms after a verification (docs/performance.md section 4c).
    """
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


#: Seconds without expensive work after which :class:`MemoryReturn` hands freed memory back.
QUIET_S = 0.2


class MemoryReturn:
    """Hands freed heap memory back to the operating system (:func:`release_memory`) once the process is quiet: no
    expensive request holds a slot (``busy()`` is false) and none has ended (:meth:`done`) for ``quiet_s`` seconds.

    Why not after every request, as before (issue 12, docs/performance.md section 4c): ``malloc_trim(0)`` hands back
    every free page of every heap, so the next request faults the same pages in again. Verifying the 10 s 512p clip
    back to back in process: 5,300-6,100 page faults a verification with a trim after each, 3,100-3,300 without, ~8 ms
    more system time (21,700 against 8,400, and 26 ms, while every decoded frame waited for the garbage collector).
    Requests that follow each other closely reuse the memory the previous one freed; the peak is unchanged (at most
    ``expensive_slots`` requests decode at once either way), and the memory goes back ``quiet_s`` after the last one,
    so the resident size between bursts is what it was with a trim after each request (docs/limits.md). A thread of
    its own waits for the quiet moment, started at the first :meth:`done`; ``release`` (default
    :func:`release_memory`) is what runs then."""

    def __init__(self, busy: Callable[[], bool], quiet_s: float = QUIET_S,
                 release: Callable[[], None] | None = None) -> None:
        self.busy, self.quiet_s = busy, quiet_s
        self._release = release
        self._due: float | None = None  # monotonic time of the next release, None: nothing freed since the last
        self._closed = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def done(self) -> None:
        """An expensive request ended: release ``quiet_s`` from now, unless another one ends or runs meanwhile."""
        with self._cond:
            if self._closed:
                return
            self._due = time.monotonic() + self.quiet_s
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="memory-return", daemon=True)
                self._thread.start()
            self._cond.notify()

    def close(self) -> None:
        """Stop the thread, handing back now what is still held."""
        with self._cond:
            pending, self._due, self._closed = self._due is not None, None, True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        if pending:
            self._now()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._due is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                wait = self._due - time.monotonic()  # type: ignore[operator]
                if wait > 0:
                    self._cond.wait(wait)
                    continue  # re-read: a later request may have moved it, or close() come
                self._due = None
            if not self.busy():  # else the request running now calls done() when it ends
                self._now()

    def _now(self) -> None:
        (self._release or release_memory)()


#: glibc's ``mallopt`` parameters (``malloc.h``): free space at the top of a heap above which it is handed back
#: (``M_TRIM_THRESHOLD``), and the size from which a block gets a mapping of its own (``M_MMAP_THRESHOLD``).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: What :func:`keep_freed_memory` sets: the largest mmap threshold glibc's own adjustment reaches on 64-bit (32 MiB)
#: and twice that as the trim threshold, which is where a long-running process's glibc ends up by itself.
KEEP_MMAP_THRESHOLD, KEEP_TRIM_THRESHOLD = 32 * MB, 64 * MB


def keep_freed_memory() -> bool:
    """For a process that decodes one upload and exits (``consentgate verify``): let glibc keep freed blocks of up to
    32 MiB in its heaps and up to 64 MiB free at a heap's top (:data:`KEEP_MMAP_THRESHOLD`,
    :data:`KEEP_TRIM_THRESHOLD`), instead of handing every large temporary back to the kernel and faulting it in
    again for the next frame.

    A fresh process starts at glibc's lowest thresholds (128 KiB), which it raises only as large blocks are freed;
    until then each frame's temporaries map, grow and trim the heap again: verifying the 10 s 512p clip made 1,843
    ``brk`` and 971 ``mprotect`` calls and 283,000 page faults (0.9 s of system time; strace and ``/usr/bin/time``
    on ``consentgate verify``, docs/performance.md section 4). With these thresholds set first: 46,000 faults for
    that clip (73,000 without, since the reader stops early) and 36,000 instead of 52,000 for a 1 MP JPEG, at the
    same peak resident size (+2 %). A server gets there by itself after its first requests and gives memory back
    after each one (:func:`release_memory`); it does not call this. True when glibc took both settings (False
    elsewhere: nothing changes)."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, KEEP_MMAP_THRESHOLD)) & bool(
        libc.mallopt(_M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD))
