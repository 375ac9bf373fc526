"""What the tests that run Dagster's own daemon share: its ``DAGSTER_HOME``, the environment every ``dagster``
command of such a test runs with, and the ``dagster-daemon run`` process itself.

Why shared: a run the daemon launches, monitors or fails behaves as it does in a deployment only when the
daemon is the real process on the project's ``dagster.yaml`` and ``workspace.yaml``; the run-liveness test
and the notifications end-to-end test both need exactly that, against the simulator and a test database, and
the crash-recovery test the same home, environment and clean-up around ``dagster dev``.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import pytest
import yaml

from zoho_dagster.environment import STORAGE_URL_VARIABLE
from zoho_dagster.postgres.engine import sqlalchemy_url
from zoho_dagster_tests.postgres.sync_helpers import simulator_variables

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

T = TypeVar("T")


@dataclass
class Deployment:
    """The daemon's ``DAGSTER_HOME``, the environment every ``dagster`` command of the test runs with, and
    the folder of the logs (the daemon's is ``daemon_log``)."""

    home: Path
    env: dict[str, str]
    logs: Path

    @property
    def daemon_log(self) -> Path:
        return self.logs / "dagster-daemon.log"

    def daemon_log_tail(self, chars: int = 4000) -> str:
        """The end of the daemon's output: what a failure message shows of what the daemon said."""
        if not self.daemon_log.is_file():
            return "(no daemon log)"
        return self.daemon_log.read_text(errors="replace")[-chars:]


def wait_for(probe: Callable[[], T], seconds: float, what: str, interval: float = 0.2) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` and its last answer."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"waited {seconds:.0f} s for {what}; last answer: {value!r}", pytrace=False)
        time.sleep(interval)


def write_instance_yaml(home: Path, fast_monitoring: bool = True) -> None:
    """The project's dagster.yaml in ``home``; with ``fast_monitoring``, run monitoring polled every second
    and slots freed a second after a run ends (instead of 20 s and 60 s), so that a test of it takes seconds.
    Nothing else is changed: storage, run coordinator, run launcher and pools are the deployment's."""
    config = yaml.safe_load((PROJECT / "dagster.yaml").read_text())
    if fast_monitoring:
        config["run_monitoring"].update(poll_interval_seconds=1, free_slots_after_run_end_seconds=1)
        config["run_launcher"].setdefault("config", {})["liveness_grace_seconds"] = 1
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


def deployment_env(
    simulator: Any, database_url: str, home: Path, anchor: date, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """This process's environment without any of the caller's Zoho or Dagster settings
    (``DAGSTER_MODULE_NAME`` would clash with ``-w``), plus the simulator's primary org, the database (the
    tables, and Dagster's runs and events through dagster.yaml's storage), ``DAGSTER_HOME``, the anchor and
    ``extra``."""
    org = simulator.primary
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ZOHO_", "DAGSTER_"))}
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "ZOHO_DAGSTER_DATABASE_URL": database_url,
            STORAGE_URL_VARIABLE: sqlalchemy_url(database_url),
            **simulator_variables(org),
            "ZOHO_CRM_ANCHOR_DATE": anchor.isoformat(),
            **(extra or {}),
        }
    )
    return env


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, then SIGKILL to whatever of the group outlives a grace period.

    Why the second step even when the leader itself exits: a code server whose run was cut short can stay
    behind, orphaned but still in the group, once the test database it reports to has been dropped.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)  # anyone left in the group?
        except ProcessLookupError:
            break
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


@contextlib.contextmanager
def running_daemon(deployment: Deployment) -> Iterator[subprocess.Popen[bytes]]:
    """``dagster-daemon run -w workspace.yaml`` in the project, in a process group of its own (its code
    server and the runs it launches are stopped with it), its output in ``deployment.daemon_log``."""
    with deployment.daemon_log.open("w") as log:
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=PROJECT,
            env=deployment.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield daemon
        finally:
            stop_group(daemon)


@contextlib.contextmanager
def opened_instance(
    home: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    """The Dagster instance of ``home`` (runs and events in ``database_url``), opened in this process to read
    its runs, ticks, heartbeats and pool slots. The storage class reads (and exports) the storage variable;
    monkeypatch restores it afterwards."""
    monkeypatch.setenv(STORAGE_URL_VARIABLE, sqlalchemy_url(database_url))
    with dg.DagsterInstance.from_config(str(home)) as opened:
        yield opened
