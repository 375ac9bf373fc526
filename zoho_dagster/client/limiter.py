"""Client-side manners: at most N requests per second and M in flight, across every thread of the process.

Zoho rejects calls over the edition's concurrency with 429 even when credits remain (docs/zoho-crm-api.md
§6.3), and a burst of 429s costs more time than pacing. A token bucket (capacity 1, i.e. evenly spaced
starts) bounds the rate and a semaphore bounds the calls in flight; both are thread-safe so a thread pool
sharing one client obeys them too.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

# Zoho's highest edition (Ultimate) allows 25 concurrent calls per org and app (docs/zoho-crm-api.md §6.3).
MAX_EDITION_CONCURRENCY = 25


class RateLimiter:
    """Spaces request starts ``1 / requests_per_second`` apart and caps concurrent requests."""

    def __init__(self, requests_per_second: float, max_concurrency: int) -> None:
        if requests_per_second <= 0:
            raise ValueError("requests_per_second must be positive")
        if not 1 <= max_concurrency <= MAX_EDITION_CONCURRENCY:
            raise ValueError(f"max_concurrency must be between 1 and {MAX_EDITION_CONCURRENCY}")
        self.requests_per_second = requests_per_second
        self.max_concurrency = max_concurrency
        self._interval = 1.0 / requests_per_second
        self._lock = threading.Lock()
        self._next_start = 0.0
        self._slots = threading.BoundedSemaphore(max_concurrency)

    def _wait_for_turn(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self._interval
        delay = start - now
        if delay > 0:
            time.sleep(delay)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one in-flight slot, entered no earlier than the rate allows."""
        with self._slots:
            self._wait_for_turn()
            yield


_shared: dict[tuple[object, ...], RateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(key: tuple[object, ...], requests_per_second: float, max_concurrency: int) -> RateLimiter:
    """One limiter per (org, settings) in this process, so every client object of that org shares the budget.
    """
    full_key = (*key, requests_per_second, max_concurrency)
    with _shared_lock:
        limiter = _shared.get(full_key)
        if limiter is None:
            limiter = _shared[full_key] = RateLimiter(requests_per_second, max_concurrency)
        return limiter
