"""A run whose process dies is FAILURE and gives back its ``zoho_crm_api`` slot, however it was started.

Why: ``dagster asset materialize`` (and ``dg launch --assets``, which calls the same code) executes the run in
the command's own process, with no run launcher; killed mid-backfill, the run stayed STARTED and kept its pool
slot for good, daemon or not (docs/dagster.md §6). Each run's process now holds a Postgres session with an
advisory lock while it runs (``postgres/run_liveness.py``), and the run launcher of ``dagster.yaml`` tells the
daemon's run monitoring that a run whose lock is gone is dead (``postgres/run_launcher.py``).

The end-to-end test does what an operator would: ``dagster-daemon run -w workspace.yaml`` with
``DAGSTER_HOME`` in a temporary directory (the project's ``dagster.yaml``, its run monitoring polled every
second instead of 20 s and slots freed 1 s after a run ends instead of 60 s, so the test takes seconds
rather than minutes; nothing else changed), against the simulator and a fresh database. The table holds a
first sync and the simulator one edit more. ``dagster asset materialize --select leads --partition-range``
then runs as a process of its own while every simulator answer comes 0.5 s late; once the run is STARTED,
holds its slot and has opened its write transaction, the process is killed with SIGKILL. Within
``RECOVERY_SECONDS`` (3 minutes) the run must be FAILURE by the daemon's word, hold no slot and no pending
step, and the table must be byte for byte what it was; then the same command, run again, must succeed,
without a false alarm from the daemon while it runs, and leave exactly the simulator's live Leads.

The other tests check the parts alone: the lock's life in a run executed in process, the launcher's answers,
and a broken session being replaced. Linux only (process groups).
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg2
import pytest
import sqlalchemy as sa
from dagster._core.launcher import WorkerStatus

from zoho_dagster.postgres.engine import libpq_url, sqlalchemy_url
from zoho_dagster.postgres.run_launcher import ZohoRunLauncher
from zoho_dagster.postgres.run_liveness import LIVENESS_TAG, RunSessions, is_held, lock_key
from zoho_dagster_tests.daemon_support import (
    PROJECT,
    Deployment,
    deployment_env,
    opened_instance,
    running_daemon,
    wait_for,
    write_instance_yaml,
)
from zoho_dagster_tests.operations_support import earliest_modified

POOL = "zoho_crm_api"
DAEMON_START_SECONDS = 120
WRITE_START_SECONDS = 120  # the command's start to its open write transaction, every answer 0.5 s late
RECOVERY_SECONDS = 180  # the kill to FAILURE and a free slot: what the deployment promises
RUN_SECONDS = 180  # a run of the command, from its start to its exit
SLOW_MS = 500
WARM_UP_DAYS = 30


@pytest.fixture
def anchor(simulator: Any) -> date:
    """The day of the oldest Leads record: the anchor and the first partition of every run here."""
    return earliest_modified(simulator, "Leads")


@pytest.fixture
def deployment(simulator: Any, database_url: str, anchor: date, tmp_path: Path) -> Iterator[Deployment]:
    """``dagster-daemon run -w workspace.yaml`` on the project's dagster.yaml, stopped afterwards."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    write_instance_yaml(home)
    running = Deployment(home, deployment_env(simulator, database_url, home, anchor), tmp_path)
    with running_daemon(running):
        yield running


@pytest.fixture
def instance(
    deployment: Deployment, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    """The deployment's Dagster instance, opened in this process to read runs, events and pool slots."""
    with opened_instance(deployment.home, database_url, monkeypatch) as opened:
        yield opened


def _materialize_command(first: date, last: date) -> list[str]:
    """The seed command's shape (docs/design.md §1) over a partition range: one run, in this process."""
    return [
        *(sys.executable, "-m", "dagster", "asset", "materialize", "--select", "leads"),
        *("--partition-range", f"{first.isoformat()}...{last.isoformat()}"),
        *("-m", "zoho_dagster.definitions"),
    ]


def _materialize(deployment: Deployment, first: date, last: date) -> None:
    """Run the command to its end; it must succeed."""
    completed = subprocess.run(
        _materialize_command(first, last),
        cwd=PROJECT,
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
    )
    assert completed.returncode == 0, (completed.stdout + completed.stderr)[-4000:]


def _run_ids(instance: dg.DagsterInstance) -> list[str]:
    return [run.run_id for run in instance.get_runs()]


def _new_run(instance: dg.DagsterInstance, known: list[str]) -> dg.DagsterRun | None:
    runs = [run for run in instance.get_runs() if run.run_id not in known]
    return runs[0] if runs else None


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


def _lock_held(database_url: str, run_id: str) -> bool:
    engine = sa.create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as connection:
            return is_held(connection, run_id)
    finally:
        engine.dispose()


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


def _failures(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [entry.message for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)]


def test_a_killed_materialize_command_is_failed_by_the_daemon_and_frees_its_slot(
    simulator: Any, database_url: str, anchor: date, deployment: Deployment, instance: dg.DagsterInstance
) -> None:
    started = time.monotonic()
    today = datetime.now(timezone.utc).date()

    # A table a first sync of the oldest days left, and a change in Zoho the killed run would have written.
    warm_up_last = anchor + timedelta(days=WARM_UP_DAYS - 1)
    _materialize(deployment, anchor, warm_up_last)
    synced = _live_rows(database_url)
    assert synced == _truth(simulator, anchor, warm_up_last) and synced
    edited = sorted(synced)[0][0]
    simulator.control.update("Leads", edited, {"Last_Name": "Edited before the crash"})
    before = _table_snapshot(database_url)

    wait_for(
        lambda: "MONITORING" in instance.get_daemon_heartbeats(),
        DAEMON_START_SECONDS,
        f"the daemon's run monitoring to beat (log: {deployment.daemon_log})",
    )

    known = _run_ids(instance)
    command: subprocess.Popen[bytes] | None = None
    try:
        simulator.control.set_faults(rate=1.0, kinds=["slow"], slow_ms=SLOW_MS)
        with (deployment.logs / "killed-command.log").open("w") as log:
            command = subprocess.Popen(
                _materialize_command(anchor, today),
                cwd=PROJECT,
                env=deployment.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def writing() -> tuple[dg.DagsterRun, int] | None:
            if command is not None and command.poll() is not None:
                output = (deployment.logs / "killed-command.log").read_text()[-3000:]
                pytest.fail(f"the command ended before it could be killed:\n{output}")
            run = _new_run(instance, known)
            writer = _writer_session(database_url)
            ready = run and run.status == dg.DagsterRunStatus.STARTED and writer
            return (run, writer) if ready and run and writer else None

        run, writer = wait_for(
            writing, WRITE_START_SECONDS, "the command's run to open its write transaction"
        )
        assert _slots_of(instance, run.run_id)[0] == 1  # the step holds its slot while it writes
        assert str(run.tags.get(LIVENESS_TAG, "")).startswith("held by ")
        assert _lock_held(database_url, run.run_id)

        os.killpg(command.pid, signal.SIGKILL)  # the whole run: it executes in the command's process
        command.wait(timeout=30)
        killed_at = time.monotonic()
    finally:
        if command is not None and command.poll() is None:
            os.killpg(command.pid, signal.SIGKILL)
        simulator.control.clear_faults()

    def remaining() -> float:
        return max(1.0, RECOVERY_SECONDS - (time.monotonic() - killed_at))

    def failed() -> bool:
        current = instance.get_run_by_id(run.run_id)
        return current is not None and current.status == dg.DagsterRunStatus.FAILURE

    wait_for(failed, remaining(), f"run {run.run_id} to be FAILURE")
    failed_after = time.monotonic() - killed_at
    # Who noticed: the daemon's run monitoring, through the run launcher's liveness check.
    assert any("the run's process is gone" in message for message in _failures(instance, run.run_id))
    wait_for(
        lambda: _slots_of(instance, run.run_id) == (0, 0) or None,
        remaining(),
        f"the FAILED run {run.run_id} to give back its {POOL} slot",
    )
    freed_after = time.monotonic() - killed_at
    print(f"killed run FAILURE {failed_after:.1f} s and its slot free {freed_after:.1f} s after the kill")

    # Postgres rolled the transaction back when the connection died: the table is as the first sync left it.
    assert not _rows(database_url, "SELECT 1 FROM pg_stat_activity WHERE pid = :pid", pid=writer)
    assert _table_snapshot(database_url) == before
    assert not _lock_held(database_url, run.run_id)

    # The same command again gets a slot, is never taken for dead, and leaves exactly Zoho's live Leads.
    known = _run_ids(instance)
    _materialize(deployment, anchor, today)
    second = _new_run(instance, known)
    assert second is not None and second.status == dg.DagsterRunStatus.SUCCESS
    assert _failures(instance, second.run_id) == []
    assert str(second.tags.get(LIVENESS_TAG, "")).startswith("held by ")
    expected = _truth(simulator, anchor, today)
    assert any(row_id == edited for row_id, _ in expected - synced), "the edit is in the range"
    assert _live_rows(database_url) == expected
    assert _slots_of(instance, second.run_id) == (0, 0)
    print(f"whole test {time.monotonic() - started:.0f} s")


@pytest.fixture
def local_instance(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An instance on the project's dagster.yaml and the test database, no daemon."""
    write_instance_yaml(tmp_path)
    monkeypatch.setenv("ZOHO_DAGSTER_DAGSTER_STORAGE_URL", sqlalchemy_url(database_url))
    with dg.DagsterInstance.from_config(str(tmp_path)) as opened:
        yield opened


def test_a_run_holds_its_lock_from_start_to_end_and_is_tagged_with_its_process(
    local_instance: dg.DagsterInstance, database_url: str
) -> None:
    seen: dict[str, bool] = {}

    @dg.asset
    def probe(context: dg.AssetExecutionContext) -> None:
        run = local_instance.get_run_by_id(context.run.run_id)
        assert run is not None
        seen["held"] = _lock_held(database_url, context.run.run_id)
        seen["tagged"] = str(run.tags.get(LIVENESS_TAG)).endswith(f" pid {os.getpid()}")

    result = dg.materialize([probe], instance=local_instance)

    assert result.success
    assert seen == {"held": True, "tagged": True}
    assert not _lock_held(database_url, result.run_id)  # given back once the run ended


def test_the_launcher_fails_a_watched_run_only_when_its_lock_stays_free(
    local_instance: dg.DagsterInstance, database_url: str
) -> None:
    @dg.asset
    def nothing() -> None:
        pass

    result = dg.materialize([nothing], instance=local_instance)
    run = local_instance.get_run_by_id(result.run_id)
    assert run is not None
    launcher = local_instance.run_launcher
    assert isinstance(launcher, ZohoRunLauncher)

    sessions = RunSessions(sqlalchemy_url(database_url))
    sessions.hold(run.run_id)
    try:
        assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    finally:
        sessions.release(run.run_id)
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING  # the first miss
    time.sleep(1.1)  # liveness_grace_seconds of the test's dagster.yaml
    dead = launcher.check_run_worker_health(run)
    assert dead.status == WorkerStatus.FAILED and "the run's process is gone" in str(dead.msg)

    unwatched = run.with_tags({key: value for key, value in run.tags.items() if key != LIVENESS_TAG})
    for _ in range(2):
        assert launcher.check_run_worker_health(unwatched).status == WorkerStatus.RUNNING
        time.sleep(1.1)


def test_a_broken_session_is_replaced_and_the_lock_taken_again(database_url: str) -> None:
    sessions = RunSessions(sqlalchemy_url(database_url), ping_seconds=0.2)
    run_id = "00000000-0000-4000-8000-000000000001"
    namespace, key = lock_key(run_id)
    holders = (
        "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.classid = CAST(:c AS oid) "
        "AND l.objid = CAST(:k AS oid) AND l.objsubid = 2 AND l.granted"
    )
    sessions.hold(run_id)
    try:
        first = _rows(database_url, holders, c=namespace, k=key)[0][0]
        with contextlib.closing(psycopg2.connect(libpq_url(database_url))) as admin:
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", (first,))
        again = wait_for(
            lambda: [pid for (pid,) in _rows(database_url, holders, c=namespace, k=key) if pid != first],
            30,
            "the lock to be taken again on a new session",
        )
        assert len(again) == 1
    finally:
        sessions.release(run_id)
    assert _rows(database_url, holders, c=namespace, k=key) == []
    assert sessions.held() == []
