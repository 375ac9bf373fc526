"""A run killed with SIGKILL in the middle of its write gives back its ``zoho_crm_api`` slot, table intact.

Why this test exists: a run whose process dies cannot free the pool slot it holds, and with a pool limit of 3,
three such crashes stop every sync ("Step blocked by limit for pool zoho_crm_api"). ``dagster.yaml`` turns on
the daemon's run monitoring with ``free_slots_after_run_end_seconds`` for that.

What it does, as an operator would see it: ``dagster dev -w workspace.yaml`` (webserver, daemon and code
server; ``DAGSTER_HOME`` in a temporary directory holding a copy of the project's ``dagster.yaml``) runs
against the simulator and a fresh database. A first run syncs the oldest 30 days of ``leads``; one of those
records is then edited in the simulator. A second run over the whole range is launched through the webserver's
GraphQL API (as the UI does) while every simulator answer takes 2 s, so that it spends ~40 s inside its one
write transaction. Once that transaction has created its staging table, the run's processes (the run worker
Dagster recorded in the run's RUN_START event, and everything below it) are stopped, checked to be mid-write,
and killed with SIGKILL. Then, within ``RECOVERY_SECONDS``:

- the run is FAILURE (the code server that started the run detects the dead process first; the liveness check
  of ``dagster.yaml``'s run launcher would tell run monitoring too, a few polls later);
- the run holds no ``zoho_crm_api`` slot and no pending step (run monitoring frees them; without it they are
  held for good, which is where this test fails on a ``dagster.yaml`` without ``run_monitoring``);
- the table is byte for byte what the first run left, the killed run's Postgres session is gone (its TEMP
  staging table with it), and no advisory lock or ``__zd_new`` table is left;
- a third run of the same range succeeds and the table holds exactly the simulator's live Leads of the range.

Why not ``os.killpg``: the run worker is a child of the code server, in ``dagster dev``'s process group, so
killing the group would take the daemon and the webserver down too. That is another failure (the code server
dies with the run), which only the run launcher's liveness check sees; ``test_run_liveness.py`` covers it with
a killed ``dagster asset materialize``, whose run has no code server either. Linux only (reads ``/proc``).
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests
import sqlalchemy as sa

from zoho_dagster.postgres.engine import sqlalchemy_url
from zoho_dagster_tests.daemon_support import (
    PROJECT,
    deployment_env,
    opened_instance,
    stop_group,
    wait_for,
    write_instance_yaml,
)
from zoho_dagster_tests.operations_support import earliest_modified

POOL = "zoho_crm_api"
STARTUP_SECONDS = 180  # dagster dev on a loaded 2-core machine: webserver, daemon and code server
RUN_SECONDS = 300  # a whole run, queue to SUCCESS, without faults
WRITE_START_SECONDS = 180  # launch to the run's staging table, every simulator answer 2 s late
RECOVERY_SECONDS = 150  # the kill to FAILURE and a free slot: free_slots_after_run_end_seconds + poll + slack
SESSION_GONE_SECONDS = 30
SLOW_MS = 2000  # every simulator answer this late: the whole range then takes ~40 s inside its transaction
WARM_UP_DAYS = 30

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

DAEMONS = """
query { instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }
"""


@dataclass
class Deployment:
    """A running ``dagster dev``: its webserver's URL and its ``DAGSTER_HOME``."""

    url: str
    home: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def anchor(simulator: Any) -> date:
    """The day of the oldest Leads record: the anchor and the first partition of every run here."""
    return earliest_modified(simulator, "Leads")


@pytest.fixture
def deployment(simulator: Any, database_url: str, anchor: date, tmp_path: Path) -> Iterator[Deployment]:
    """``dagster dev -w workspace.yaml`` on the project's dagster.yaml, stopped (process group) afterwards."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    write_instance_yaml(home, fast_monitoring=False)
    env = deployment_env(simulator, database_url, home, anchor)
    port = _free_port()
    log_path = tmp_path / "dagster-dev.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            if process.poll() is not None:
                pytest.fail(f"dagster dev exited early:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"{url}/server_info", timeout=2).ok
            return False

        wait_for(answers, STARTUP_SECONDS, "dagster dev to answer")
        yield Deployment(url, home)
    finally:
        stop_group(process)
        log.close()


@pytest.fixture
def instance(
    deployment: Deployment, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    """The deployment's Dagster instance, opened in this process to read runs, events and pool slots."""
    with opened_instance(deployment.home, database_url, monkeypatch) as opened:
        yield opened


def _graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = requests.post(
        f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
    )
    response.raise_for_status()
    body = response.json()
    assert not body.get("errors"), body["errors"]
    return dict(body["data"])


def _launch_leads(url: str, first: date, last: date) -> str:
    """Launch one run of ``leads`` over the partitions ``first..last`` (one run, as the UI does)."""
    params = {
        "selector": {
            "repositoryLocationName": "zoho_dagster",
            "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": ["leads"]}],
            "assetCheckSelection": [],
        },
        "executionMetadata": {
            "tags": [
                {"key": "dagster/asset_partition_range_start", "value": first.isoformat()},
                {"key": "dagster/asset_partition_range_end", "value": last.isoformat()},
            ]
        },
    }
    launched = _graphql(url, LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return str(launched["run"]["runId"])


def _status(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus:
    run = instance.get_run_by_id(run_id)
    assert run is not None, run_id
    return run.status


def _wait_for_end(instance: dg.DagsterInstance, run_id: str, seconds: float) -> dg.DagsterRunStatus:
    finished = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    return wait_for(
        lambda: (status := _status(instance, run_id)) in finished and status,
        seconds,
        f"run {run_id} to finish",
    )


def _slots_of(instance: dg.DagsterInstance, run_id: str) -> tuple[int, int]:
    """(claimed slots, pending steps) of ``run_id`` in the pool."""
    info = instance.event_log_storage.get_concurrency_info(POOL)
    claimed = sum(1 for slot in info.claimed_slots if slot.run_id == run_id)
    pending = sum(1 for step in info.pending_steps if step.run_id == run_id)
    return claimed, pending


def _rows(database_url: str, sql: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(sql), params))
    finally:
        engine.dispose()


def _writer_session(database_url: str) -> int | None:
    """The backend of a session inside a transaction that has used the staging table, if any."""
    rows = _rows(
        database_url,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND xact_start IS NOT NULL AND query LIKE '%\\_zd\\_stage%'",
    )
    return int(rows[0][0]) if rows else None


def _table_snapshot(database_url: str) -> tuple[int, str]:
    """Row count and a digest of every column of every row, sync timestamps included."""
    count, digest = _rows(
        database_url, "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t.id)) FROM zoho_crm.leads t"
    )[0]
    return int(count), str(digest)


def _live_rows(database_url: str) -> set[tuple[str, datetime]]:
    rows = _rows(database_url, "SELECT id, modified_time FROM zoho_crm.leads WHERE _zoho_deleted_at IS NULL")
    return {(str(row_id), modified) for row_id, modified in rows}


def _truth(simulator: Any, first: date, last: date) -> set[tuple[str, datetime]]:
    """The simulator's live Leads whose ``Modified_Time`` falls in the UTC days ``first..last``."""
    start = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
    end = datetime(last.year, last.month, last.day, tzinfo=timezone.utc) + timedelta(days=1)
    records = simulator.control.truth("Leads")["data"]
    modified = ((str(r["id"]), datetime.fromisoformat(r["Modified_Time"])) for r in records)
    return {(row_id, at.astimezone(timezone.utc)) for row_id, at in modified if start <= at < end}


def _run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int:
    """The run worker's process id, as Dagster recorded it in the run's RUN_START event."""
    started = [
        entry.dagster_event for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_START)
    ]
    assert started and started[0] and started[0].pid, f"run {run_id} has no RUN_START event with a pid"
    return int(started[0].pid)


def _descendants(root: int) -> list[int]:
    """Every process below ``root``, from /proc (children of children included)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found: list[int] = []
    frontier = [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found.extend(children)
        frontier = children
    return found


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def test_a_run_killed_mid_write_frees_its_pool_slot_and_leaves_the_table_intact(
    simulator: Any, database_url: str, anchor: date, deployment: Deployment, instance: dg.DagsterInstance
) -> None:
    today = datetime.now(timezone.utc).date()
    warm_up_last = anchor + timedelta(days=WARM_UP_DAYS - 1)

    # A table a previous run left, and a change in Zoho the killed run would have written.
    first = _launch_leads(deployment.url, anchor, warm_up_last)
    assert _wait_for_end(instance, first, RUN_SECONDS) == dg.DagsterRunStatus.SUCCESS
    assert _slots_of(instance, first) == (0, 0)
    synced = _live_rows(database_url)
    assert synced == _truth(simulator, anchor, warm_up_last) and synced
    edited = sorted(synced)[0][0]
    simulator.control.update("Leads", edited, {"Last_Name": "Edited before the crash"})
    before = _table_snapshot(database_url)

    stopped: list[int] = []
    try:
        simulator.control.set_faults(rate=1.0, kinds=["slow"], slow_ms=SLOW_MS)
        crashed = _launch_leads(deployment.url, anchor, today)
        writer = wait_for(
            lambda: _writer_session(database_url), WRITE_START_SECONDS, "the run to open its staging table"
        )
        assert _status(instance, crashed) == dg.DagsterRunStatus.STARTED
        assert _slots_of(instance, crashed)[0] == 1  # the step holds its slot while it writes

        # Freeze the run's processes first (the worker before its children, so it can neither report nor
        # spawn), check that the write is still under way, then kill them all at once.
        worker = _run_worker_pid(instance, crashed)
        os.kill(worker, signal.SIGSTOP)
        stopped = [worker, *_descendants(worker)]
        _signal_all(stopped[1:], signal.SIGSTOP)
        assert _writer_session(database_url) == writer, "the run committed before it could be killed"
        assert _status(instance, crashed) == dg.DagsterRunStatus.STARTED
        _signal_all(stopped, signal.SIGKILL)
        killed_at = time.monotonic()
        simulator.control.clear_faults()

        def remaining() -> float:
            return max(1.0, RECOVERY_SECONDS - (time.monotonic() - killed_at))

        assert _wait_for_end(instance, crashed, remaining()) == dg.DagsterRunStatus.FAILURE
        # Who noticed: the code server that started the run, when its process died (not run monitoring).
        engine = instance.all_logs(crashed, of_type=dg.DagsterEventType.ENGINE_EVENT)
        assert any("SIGKILL" in (entry.message or "") for entry in engine), [e.message for e in engine]
        wait_for(
            lambda: _slots_of(instance, crashed) == (0, 0) or None,
            remaining(),
            f"the FAILED run {crashed} to give back its {POOL} slot (run monitoring's "
            "free_slots_after_run_end_seconds in dagster.yaml)",
        )
        freed_after = time.monotonic() - killed_at
        print(f"slot of the killed run freed {freed_after:.0f} s after the kill")

        # Postgres rolled the transaction back when the connection died: nothing of it is left.
        wait_for(
            lambda: not _rows(database_url, "SELECT 1 FROM pg_stat_activity WHERE pid = :pid", pid=writer),
            SESSION_GONE_SECONDS,
            f"the killed run's Postgres session {writer} to end",
        )
        assert _writer_session(database_url) is None
        assert _table_snapshot(database_url) == before
        advisory = "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        advisory += "WHERE l.locktype = 'advisory' AND d.datname = current_database()"
        assert _rows(database_url, advisory)[0][0] == 0
        leftovers = "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%\\_\\_zd\\_new'"
        assert _rows(database_url, leftovers)[0][0] == 0
    finally:
        _signal_all(stopped, signal.SIGKILL)  # never leave a stopped process behind
        simulator.control.clear_faults()

    # What freed the slot: the daemon's run monitoring, which this deployment runs. (Its "Freed N slots" log
    # line never appears: free_concurrency_slots_for_run returns None in Dagster 1.13.)
    daemons = _graphql(deployment.url, DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
    monitoring = [d for d in daemons if d["daemonType"] == "MONITORING"]
    assert monitoring and monitoring[0]["required"] and monitoring[0]["healthy"], daemons

    # The next run of the same range gets a slot, succeeds and leaves exactly Zoho's live Leads of the range.
    rerun = _launch_leads(deployment.url, anchor, today)
    assert _wait_for_end(instance, rerun, RUN_SECONDS) == dg.DagsterRunStatus.SUCCESS
    expected = _truth(simulator, anchor, today)
    assert any(row_id == edited for row_id, _ in expected - synced), "the edit is in the range"
    assert _live_rows(database_url) == expected
    assert _slots_of(instance, rerun) == (0, 0)
