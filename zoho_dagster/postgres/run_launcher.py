"""``ZohoRunLauncher``: Dagster's default run launcher, able to tell run monitoring that a run's process died.

Why: the daemon's run monitoring (``run_monitoring`` in ``dagster.yaml``) fails a STARTED run only when the
instance's run launcher reports its worker dead through ``check_run_worker_health``; Dagster's
``DefaultRunLauncher`` does not implement that check (``supports_check_run_worker_health`` is False), so a run
whose process was killed stayed STARTED and held its ``zoho_crm_api`` slot for good (docs/dagster.md §6). This
launcher launches exactly as the default one does and answers the check from the run's liveness lock
(:mod:`zoho_dagster.postgres.run_liveness`). Monitoring calls it for every STARTED run of the instance,
however the run was started, including runs that ``dagster asset materialize`` or ``dg launch`` execute in
their own process. Dagster then does the rest: it marks the run FAILURE (after checking it did not just end),
and ``free_slots_after_run_end_seconds`` gives back its pool slots.

A run is declared dead only when its lock was missing at two checks at least ``liveness_grace_seconds`` apart:
a live process whose session broke (a Postgres restart) takes it again within seconds, and a run that ended
between monitoring's listing and this check has released it.
"""

import time
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._serdes import ConfigurableClassData

from zoho_dagster.postgres.run_liveness import LIVENESS_TAG, LivenessRunStorage, is_held, is_watched

DEFAULT_GRACE_SECONDS = 10.0
"""Longer than the holder's ping interval (5 s) plus a reconnection: see the module docstring."""

FORGET_SECONDS = 3600.0


class ZohoRunLauncher(DefaultRunLauncher):
    """``run_launcher`` of ``dagster.yaml``: launches as ``DefaultRunLauncher``; checks liveness locks."""

    def __init__(
        self,
        inst_data: ConfigurableClassData | None = None,
        liveness_grace_seconds: float = DEFAULT_GRACE_SECONDS,
    ) -> None:
        super().__init__(inst_data=inst_data)
        self._grace_seconds = liveness_grace_seconds
        self._missing_since: dict[str, float] = {}

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "liveness_grace_seconds": dg.Field(
                float,
                is_required=False,
                default_value=DEFAULT_GRACE_SECONDS,
                description="Least time between the two checks that must both miss a run's lock.",
            )
        }

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> "ZohoRunLauncher":
        return cls(inst_data=inst_data, **config_value)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        """RUNNING while the run's lock is held (or the run is unwatched); FAILED once it is gone for good."""
        tag = run.tags.get(LIVENESS_TAG)
        storage = self._instance.run_storage if self.has_instance else None
        if not is_watched(tag) or not isinstance(storage, LivenessRunStorage):
            # Unknown is not dead: Dagster's monitoring fails a run on any answer but RUNNING or SUCCESS.
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"not watched ({LIVENESS_TAG}: {tag})")
        with storage.connect() as connection:
            held = is_held(connection, run.run_id)
        now = time.monotonic()
        self._forget_older_than(now - FORGET_SECONDS)
        if held:
            self._missing_since.pop(run.run_id, None)
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"liveness lock {tag}")
        first_missed = self._missing_since.setdefault(run.run_id, now)
        if now - first_missed < self._grace_seconds:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "liveness lock not seen; checking again")
        del self._missing_since[run.run_id]
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"the run's process is gone: the Postgres session it opened for this run ({LIVENESS_TAG} {tag}) "
            f"has ended and its lock was still free {now - first_missed:.0f} s later (killed, out of memory, "
            "or its host lost). Postgres rolled back whatever it had not committed; re-running its "
            "partitions is safe",
        )

    def _forget_older_than(self, cutoff: float) -> None:
        """Drop misses of runs that ended meanwhile and were never checked again."""
        for run_id in [run_id for run_id, since in self._missing_since.items() if since < cutoff]:
            del self._missing_since[run_id]
