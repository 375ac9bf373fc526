"""Counting what a client spends: API calls and Zoho credits.

The client owns the counting (every attempt it makes is a call, every answered read costs credits), so the
counter lives here; the Dagster layer only reads it to report a run's spend as metadata.
"""

import threading
from dataclasses import dataclass, field


@dataclass
class CallStats:
    """API calls and Zoho credits spent; safe to add to from the pass threads of one window at once."""

    calls: int = 0
    credits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, calls: int = 1, credits: int = 1) -> None:
        with self._lock:
            self.calls += calls
            self.credits += credits
