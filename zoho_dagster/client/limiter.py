"""Client-side manners: at most M requests in flight (10 for sorted reads), optionally N starts per second.

Zoho limits an org by concurrency, not by rate: calls over the edition's concurrency are answered 429 even
when credits remain, and the "heavy" calls — Get Records with ``sort_by``, as every windowed read of this
package is — share a sub-concurrency limit of 10 in every edition (docs/zoho-crm-api.md §6.3). So the limiter
caps calls in flight, with a second, lower cap for heavy calls, across every thread of the process. The
in-flight cap can grow once the org's edition is known (:meth:`RateLimiter.resize`). A rate cap
(``ZOHO_CRM_REQUESTS_PER_SECOND``) is optional and off by default: it is not a Zoho limit, only a courtesy a
user may want.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

MAX_EDITION_CONCURRENCY = 25
"""Zoho's highest edition (Ultimate) allows 25 calls in flight per org and app (docs/zoho-crm-api.md §6.3)."""
DEFAULT_CONCURRENCY = 5
"""The Free edition's concurrency: what a client assumes until it knows the org's edition (§6.3)."""
SUB_CONCURRENCY = 10
"""Heavy calls (sorted record reads, COQL, search) in flight at once, for every edition (§6.3)."""


class RateLimiter:
    """Caps concurrent requests (heavy ones lower) and, if asked, spaces request starts evenly."""

    def __init__(
        self, requests_per_second: float | None, max_concurrency: int, sub_concurrency: int = SUB_CONCURRENCY
    ) -> None:
        if requests_per_second is not None and requests_per_second <= 0:
            raise ValueError("requests_per_second must be positive (or None for no rate cap)")
        self.requests_per_second = requests_per_second
        self._interval = 1.0 / requests_per_second if requests_per_second else 0.0
        self._next_start = 0.0
        self._pace = threading.Lock()
        self._state = threading.Condition()
        self._in_flight = 0
        self._heavy_in_flight = 0
        self.max_concurrency = _checked(max_concurrency)
        self.sub_concurrency = max(1, min(sub_concurrency, SUB_CONCURRENCY))

    def resize(self, max_concurrency: int) -> None:
        """Allow ``max_concurrency`` calls in flight from now on (waiting callers are woken)."""
        with self._state:
            self.max_concurrency = _checked(max_concurrency)
            self._state.notify_all()

    @property
    def heavy_limit(self) -> int:
        return min(self.max_concurrency, self.sub_concurrency)

    def _wait_for_turn(self) -> None:
        if not self._interval:
            return
        with self._pace:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self._interval
        delay = start - now
        if delay > 0:
            time.sleep(delay)

    @contextmanager
    def slot(self, heavy: bool = False) -> Iterator[None]:
        """One in-flight slot (plus a heavy one for sorted reads), entered no earlier than the rate allows."""
        with self._state:
            while self._in_flight >= self.max_concurrency or (
                heavy and self._heavy_in_flight >= self.heavy_limit
            ):
                self._state.wait()
            self._in_flight += 1
            self._heavy_in_flight += heavy
        try:
            self._wait_for_turn()
            yield
        finally:
            with self._state:
                self._in_flight -= 1
                self._heavy_in_flight -= heavy
                self._state.notify_all()


def _checked(max_concurrency: int) -> int:
    if not 1 <= max_concurrency <= MAX_EDITION_CONCURRENCY:
        raise ValueError(f"max_concurrency must be between 1 and {MAX_EDITION_CONCURRENCY}")
    return max_concurrency


_shared: dict[tuple[object, ...], RateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(
    key: tuple[object, ...],
    requests_per_second: float | None,
    max_concurrency: int,
    sub_concurrency: int = SUB_CONCURRENCY,
) -> RateLimiter:
    """One limiter per (org, rate cap) in this process, so every client object of that org shares the budget.

    A later client that asks for more concurrency than the shared limiter has (its org's edition became known)
    grows it; none shrinks it below what another client of the process was given.
    """
    full_key = (*key, requests_per_second, sub_concurrency)
    with _shared_lock:
        limiter = _shared.get(full_key)
        if limiter is None:
            limiter = _shared[full_key] = RateLimiter(requests_per_second, max_concurrency, sub_concurrency)
        elif limiter.max_concurrency < max_concurrency:
            limiter.resize(max_concurrency)
        return limiter
