"""Retry and timeout timings in one value object, so tests with faults can run them fast.

Production defaults follow Zoho's guidance (docs/zoho-crm-api.md §6.4: short exponential backoff for
concurrency 429s) and the token throttle (10 tokens per 10 minutes: waiting a minute is the only cure).
"""

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    ``max_retries`` retries follow the first attempt; waits grow ``backoff_base * 2**n`` with full jitter,
    capped at ``backoff_max``; a ``Retry-After`` from the server wins (capped at ``retry_after_max``).
    """

    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    token_throttle_wait: float = 60.0
    token_throttle_retries: int = 2
    connect_timeout: float = 10.0
    read_timeout: float = 120.0

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.retry_after_max)
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    @property
    def timeout(self) -> tuple[float, float]:
        """``requests``' (connect, read) timeout."""
        return (self.connect_timeout, self.read_timeout)


FAST_TEST_POLICY = RetryPolicy(
    max_retries=8,
    backoff_base=0.05,
    backoff_max=0.5,
    retry_after_max=0.5,
    token_throttle_wait=0.2,
    connect_timeout=5.0,
    read_timeout=10.0,
)
"""Timings for tests against the simulator: the same logic, a hundredth of the waiting."""
