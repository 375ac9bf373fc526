"""Per-org API limits (docs/zoho-crm-api.md §6): rolling 24 h credits, concurrency, sub-concurrency,
downloads."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from .errors import ApiError

WINDOW = 86_400.0
CONCURRENCY: dict[str, int] = {
    "Free": 5,
    "Standard": 10,
    "Professional": 15,
    "Enterprise": 20,
    "Ultimate": 25,
}
SUB_CONCURRENCY = 10
BULK_DOWNLOADS_PER_MINUTE = 10

# UNCONFIRMED exact messages (docs/zoho-crm-api.md §6.4); these are the wordings seen in third-party fixtures.
CREDITS_MESSAGE = "Number of API requests for the 24 hour period is exceeded"
CONCURRENCY_MESSAGE = "The concurrency limit of the user for the app is exceeded"
SUB_CONCURRENCY_MESSAGE = "The sub-concurrency limit of the user for the app is exceeded"


def default_credits(edition: str, users: int) -> int:
    """Credits per 24 h by edition (docs/zoho-crm-api.md §6.1), add-ons excluded."""
    per_user, cap = {
        "Free": (0, 5_000),
        "Standard": (250, 100_000),
        "Professional": (500, 3_000_000),
        "Enterprise": (1_000, 5_000_000),
        "Ultimate": (2_000, 10**12),
    }[edition]
    base = 5_000 if edition == "Free" else 50_000
    return min(base + users * per_user, cap)


def too_many(message: str) -> ApiError:
    return ApiError(429, "TOO_MANY_REQUESTS", message)


class OrgLimits:
    """Counters for one org; all decisions happen under one lock so bursts are judged exactly."""

    def __init__(self, users: int, edition: str = "Enterprise") -> None:
        self.users = users
        self.edition = edition
        self.credits_per_day = default_credits(edition, users)
        self.concurrency = CONCURRENCY[edition]
        self._spent: deque[float] = deque()
        self._inflight = 0
        self._heavy = 0
        self._downloads: deque[float] = deque()
        self._blocked_until = 0.0
        self._lock = threading.Lock()

    def configure(self, credits_per_day: int | None, concurrency: int | None, edition: str | None) -> None:
        with self._lock:
            if edition is not None:
                if edition not in CONCURRENCY:
                    raise ApiError(400, "INVALID_DATA", "invalid data", {"param_name": "edition"})
                self.edition = edition
                self.credits_per_day = default_credits(edition, self.users)
                self.concurrency = CONCURRENCY[edition]
            if credits_per_day is not None:
                self.credits_per_day = int(credits_per_day)
            if concurrency is not None:
                self.concurrency = int(concurrency)

    def admit(self, now: float, heavy: bool, credits: int = 1) -> tuple[Callable[[], None], int | None]:
        """Spend credits and take a concurrency slot; returns (release, credits-remaining header or None)."""
        with self._lock:
            while self._spent and self._spent[0] <= now - WINDOW:
                self._spent.popleft()
            if len(self._spent) + credits > self.credits_per_day:
                raise too_many(CREDITS_MESSAGE)
            if self._inflight >= self.concurrency:
                raise too_many(CONCURRENCY_MESSAGE)
            if heavy and self._heavy >= SUB_CONCURRENCY:
                raise too_many(SUB_CONCURRENCY_MESSAGE)
            self._spent.extend([now] * credits)
            self._inflight += 1
            self._heavy += heavy
            used = len(self._spent)
        remaining = self.credits_per_day - used if used * 2 >= self.credits_per_day else None
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if not released:
                    released = True
                    self._inflight -= 1
                    self._heavy -= heavy

        return release, remaining

    def download(self, now: float) -> None:
        """Bulk result downloads: ten a minute; the eleventh blocks downloads for a minute
        (docs/zoho-crm-api.md §4)."""
        with self._lock:
            if now < self._blocked_until:
                raise too_many("Download limit exceeded. Please try again after a minute.")
            while self._downloads and self._downloads[0] <= now - 60:
                self._downloads.popleft()
            if len(self._downloads) >= BULK_DOWNLOADS_PER_MINUTE:
                self._blocked_until = now + 60
                raise too_many("Download limit exceeded. Please try again after a minute.")
            self._downloads.append(now)
