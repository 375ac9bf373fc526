"""``zoho-dagster dev``: ``dg dev -w workspace.yaml`` (that is, ``dagster dev``) with a prepared
``DAGSTER_HOME``.

Dagster's storage goes to Postgres (the project's ``dagster.yaml``); the sync reads real Zoho when
``ZOHO_CRM_*`` credentials are set, else a simulator started for the session. Other options go to
``dagster dev``.

``dagster dev`` is the whole deployment in one command: it starts a code server for the workspace, the
webserver (the UI and its GraphQL API) and the daemon as its child processes (seen with ``ps`` on Dagster
1.13.27: ``dagster code-server start``, ``dagster_webserver`` and ``dagster._daemon run``). So nothing else
needs starting here, and the daemon matters: it launches the runs the UI queues (``QueuedRunCoordinator``),
runs schedules, sensors and backfills, and its run monitoring (``run_monitoring`` in ``dagster.yaml``) gives
back the ``zoho_crm_api`` pool slot of a run whose process was killed. In production the same two long-lived
processes run on their own, with the same ``DAGSTER_HOME``: ``dagster-daemon run -w workspace.yaml`` and
``dagster-webserver -w workspace.yaml`` (README, "Running it in production").
"""

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from zoho_dagster import environment
from zoho_dagster.cli.common import STATE_DIR, point_at_simulator, shared_database_url, simulator

FALLBACK_INSTANCE = """\
storage:
  custom:
    module: zoho_dagster.postgres.dagster_storage
    class: ZohoDagsterStorage
    config: {}
concurrency:
  pools:
    default_limit: 3
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
run_launcher:
  module: zoho_dagster.postgres.run_launcher
  class: ZohoRunLauncher
run_monitoring:
  enabled: true
  poll_interval_seconds: 20
  free_slots_after_run_end_seconds: 60
  max_resume_run_attempts: 0
"""
"""The essentials of the project's dagster.yaml (its comments say why), for a directory without one."""


def _has_credentials() -> bool:
    from zoho_dagster.settings import load_settings

    return load_settings().has_credentials


def _dagster_home(project: Path) -> Path:
    """``.zoho_dagster/dagster_home`` with the project's dagster.yaml (Postgres storage, run monitoring)."""
    home = (STATE_DIR / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    source = project / "dagster.yaml"
    if source.exists():
        shutil.copyfile(source, home / "dagster.yaml")
    else:
        (home / "dagster.yaml").write_text(FALLBACK_INSTANCE)
    return home


def _workspace(project: Path, home: Path) -> Path:
    workspace = project / "workspace.yaml"
    if workspace.exists():
        return workspace
    generated = home / "workspace.yaml"
    generated.write_text("load_from:\n  - python_module:\n      module_name: zoho_dagster.definitions\n")
    return generated


def cmd_dev(args: argparse.Namespace) -> int:
    from zoho_dagster.postgres.dagster_storage import dagster_storage_url

    project = Path.cwd()
    configured = environment.database_url() is not None
    url = shared_database_url()
    environment.export_dagster_storage_url(dagster_storage_url(environment.dagster_storage_url() or url))
    home = _dagster_home(project)
    os.environ["DAGSTER_HOME"] = str(home)
    # The project's venv exports DAGSTER_MODULE_NAME for `dagster asset materialize`; `dagster dev -w` names
    # its code location through the workspace file instead, and the two together are refused.
    os.environ.pop("DAGSTER_MODULE_NAME", None)
    # `dg dev -w` is `dagster dev -w` (Dagster 1.13 hands the workspace file to the same implementation),
    # without the warning that `dagster dev` is superseded by it.
    command = [
        sys.executable,
        "-m",
        "dagster_dg_cli.cli",
        "dev",
        "-w",
        str(_workspace(project, home)),
        *args.dagster_args,
    ]
    with contextlib.ExitStack() as stack:
        if _has_credentials() and not args.simulator:
            print("zoho-dagster dev: real Zoho CRM (ZOHO_CRM_* set)")
        else:
            running = stack.enter_context(simulator(args.records, args.seed, 0))
            point_at_simulator(running.primary)
            print(f"zoho-dagster dev: simulator at {running.base_url} (no ZOHO_CRM_* credentials set)")
        where = environment.DATABASE_URL_VARIABLE if configured else "the embedded Postgres"
        print(f"DAGSTER_HOME={home}; synced tables in {where}")
        return _run_forwarding_signals(command)


def _run_forwarding_signals(command: list[str], grace_seconds: float = 30.0) -> int:
    """Run ``command`` in its own process group; Ctrl-C or SIGTERM stop that whole group.

    ``dagster dev`` shuts down cleanly on SIGINT only, and its webserver, daemon and code server are its
    children: both signals become SIGINT to the group, and whatever still runs after ``grace_seconds`` is
    killed, so nothing outlives the command (the simulator is stopped once the group is gone).
    """
    stopping: list[float] = []
    process: subprocess.Popen[bytes] | None = None

    def forward(_signum: int, _frame: object) -> None:
        stopping.append(time.monotonic())
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        process = subprocess.Popen(command, start_new_session=True)
        while True:
            try:
                return process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                if stopping and time.monotonic() - stopping[0] > grace_seconds:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def add_parser(commands: Any) -> None:
    dev = commands.add_parser(
        "dev",
        help="dagster dev on this project (simulator unless ZOHO_CRM_* is set); other options: dagster dev",
    )
    dev.add_argument("--simulator", action="store_true", help="use the simulator even if credentials are set")
    dev.add_argument("--records", type=int, default=2500)
    dev.add_argument("--seed", type=int, default=1)
    dev.set_defaults(func=cmd_dev)
