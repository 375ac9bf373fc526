"""The simulator's clock: wall time plus an offset that tests can advance to reach 24 h expiries cheaply."""

from __future__ import annotations

import functools
import threading
import time
from datetime import datetime, timedelta, timezone


class Clock:
    """Monotonic-enough wall clock with a test-controlled forward offset (seconds)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds since the epoch, including any advance."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0


def render_time(epoch: float, offset_minutes: int) -> str:
    """ISO-8601 with a numeric offset and second precision, like ``2021-08-04T14:08:39+03:00``."""
    tz = timezone(timedelta(minutes=offset_minutes))
    return datetime.fromtimestamp(int(epoch), tz).isoformat(timespec="seconds")


@functools.lru_cache(maxsize=8192)
def parse_time(text: str) -> float | None:
    """Parse ISO-8601 with an offset (``Z`` accepted); None when it has no offset or is malformed.

    UNCONFIRMED (docs/zoho-crm-api.md §2.4): whether Zoho accepts RFC-1123 or offset-less values. Strictest
    plausible: only ISO-8601 with an explicit offset is accepted. Cached: a COQL query compares each row's
    ``Modified_Time`` with several criteria, so the same text comes several times in a row.
    """
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        return None
    return value.timestamp()
