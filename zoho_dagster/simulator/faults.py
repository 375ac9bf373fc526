"""Faults on demand: by rate (seeded RNG) or by schedule (the n-th API/token request since they were set)."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError

KINDS = ("429", "500", "503", "reset", "truncate", "slow", "expire_token", "expire_page_token")


@dataclass
class FaultPlan:
    rate: float = 0.0
    kinds: tuple[str, ...] = ()
    schedule: dict[int, str] = field(default_factory=dict)
    slow_ms: int = 2000
    rng: random.Random = field(default_factory=lambda: random.Random(1))
    counter: int = 0
    injected: int = 0


class Faults:
    """Thread-safe fault dispenser; `next()` is called once per API or token request."""

    def __init__(self) -> None:
        self._plan = FaultPlan()
        self._lock = threading.Lock()

    def configure(self, body: dict[str, Any]) -> None:
        kinds = tuple(str(k) for k in body.get("kinds") or ())
        schedule: dict[int, str] = {}
        for entry in body.get("schedule") or ():
            schedule[int(entry["at_request"])] = str(entry["kind"])
        for kind in (*kinds, *schedule.values()):
            if kind not in KINDS:
                raise ApiError(400, "INVALID_DATA", "invalid data", {"kind": kind, "expected": list(KINDS)})
        rate = float(body.get("rate") or 0.0)
        if rate and not kinds:
            kinds = ("429", "500", "503", "reset", "truncate", "slow")
        plan = FaultPlan(
            rate, kinds, schedule, int(body.get("slow_ms", 2000)), random.Random(int(body.get("seed", 1)))
        )
        with self._lock:
            self._plan = plan

    def clear(self) -> None:
        with self._lock:
            self._plan = FaultPlan()

    def next(self) -> tuple[str | None, int]:
        """The fault for this request (or None) and the slow-answer delay in ms."""
        with self._lock:
            plan = self._plan
            plan.counter += 1
            kind = plan.schedule.get(plan.counter)
            if kind is None and plan.rate and plan.rng.random() < plan.rate:
                kind = plan.rng.choice(plan.kinds)
            if kind:
                plan.injected += 1
            return kind, plan.slow_ms

    def describe(self) -> dict[str, Any]:
        with self._lock:
            plan = self._plan
            return {
                "rate": plan.rate,
                "kinds": list(plan.kinds),
                "requests_seen": plan.counter,
                "injected": plan.injected,
                "schedule": [{"at_request": n, "kind": k} for n, k in sorted(plan.schedule.items())],
            }
