"""Change notifications, measured: latency from a change to its row, credits, and a burst.

Run by hand, never as a timed test::

    python benchmarks/notifications.py               # 20 spaced changes, 1,000 edits, 10,000-change burst
    python benchmarks/notifications.py --burst 1000  # a smaller burst (a smoke run)

Everything is the real thing on one machine: the simulator (``--leads`` Leads), Postgres (a fresh database
on ``--server``, default ``$ZOHO_DAGSTER_TEST_DATABASE_URL``, else a throw-away embedded server), the
receiver started with ``zoho-dagster notifications serve``, the channels enabled with ``zoho-dagster
notifications subscribe``, and Dagster's daemon (``dagster-daemon run -w workspace.yaml`` with a
``DAGSTER_HOME`` of its own: runs and events in the same Postgres, the queued run coordinator dequeuing every
second) with only ``zoho_crm_notification_sensor`` started, its interval ``--sensor-seconds`` (default 5).

1. **Latency**: ``--spaced`` changes of Leads (creates and edits, alternately), ``--gap`` seconds apart; for
   each, the seconds until the receiver stored its notification (``received_at``) and until its row showed
   the change (the table polled every 0.2 s). Median and worst; the issue's target is a median ≤ 30 s.
2. **Credits per 1,000 changed records**: 1,000 Leads edited within a few seconds; the credits the
   simulator counted while the daemon applied them, against the floor of ``ids=`` reads: 10 calls of 100 ids
   per field pass (Leads needs two passes). Also the polling sensor's daily cost for comparison: one call per
   incremental stream per evaluation, 288 evaluations a day at its default 300 s.
3. **Burst**: ``--burst`` changes (40% creates, 40% edits, 20% deletes over Leads and Contacts) made within a
   minute by eight threads; then nothing lost (every notification delivered and stored; the tables' live and
   deleted ids and the edited values equal the truth) and nothing doubled (one row per id; every
   notification consumed exactly once).

Prints one JSON object with every figure (and the figures as a short table on stderr).
"""

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

PROJECT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECRET = "benchmark-secret-" + uuid.uuid4().hex
POLL = 0.2
MODULES = ("Leads", "Contacts")
BURST_THREADS = 8


@contextlib.contextmanager
def database(server: str | None) -> Iterator[str]:
    """A fresh database on ``server`` (or on a throw-away embedded server), dropped afterwards."""
    from zoho_dagster.postgres.engine import make_engine, sqlalchemy_url

    with contextlib.ExitStack() as stack:
        if server is None:
            import pgserver

            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="zd_bench_pg_"))
            embedded = pgserver.get_server(Path(directory), cleanup_mode="stop")
            stack.callback(embedded.cleanup)
            server = embedded.get_uri()
        name = f"zd_bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(sqlalchemy_url(server), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = sa.make_url(sqlalchemy_url(server)).set(database=name).render_as_string(hide_password=False)
        try:
            yield url.replace("postgresql+psycopg2://", "postgresql://")
        finally:
            make_engine.cache_clear()
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def process(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running in its own process group (its output in ``log``), stopped on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


def _command(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A command of the project (the CLI, ``dagster``) run to its end from the project's directory."""
    return subprocess.run(command, env=env, cwd=PROJECT, capture_output=True, text=True, timeout=300)


def wait_for(what: str, check: Any, timeout: float, every: float = POLL) -> float:
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not after {timeout:.0f} s")
        time.sleep(every)


def dagster_home(directory: Path, url: str) -> Path:
    from zoho_dagster.postgres.engine import sqlalchemy_url

    home = directory / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        json.dumps(
            {
                "storage": {"postgres": {"postgres_url": sqlalchemy_url(url)}},
                "run_coordinator": {
                    "module": "dagster.core.run_coordinator",
                    "class": "QueuedRunCoordinator",
                    "config": {"dequeue_interval_seconds": 1},
                },
                "concurrency": {"pools": {"default_limit": 3}},
                "telemetry": {"enabled": False},
            }
        )
    )
    return home


class Bench:
    def __init__(self, sim: Any, url: str) -> None:
        from zoho_dagster.postgres.engine import make_engine

        self.sim = sim
        self.control = sim.control
        self.engine = make_engine(url)

    def rows(self, table: str, ids: list[str], column: str = "last_name") -> dict[str, Any]:
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(table, schema="zoho_crm"):
                return {}
            query = sa.text(
                f"SELECT id, {column}, _zoho_deleted_at FROM zoho_crm.{table} WHERE id = ANY(:ids)"
            )
            return {r[0]: (r[1], r[2]) for r in conn.execute(query, {"ids": list(ids)})}

    def received(self, record_id: str) -> float | None:
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("notifications", schema="zoho_dagster"):
                return None
            value = conn.execute(
                sa.text(
                    "SELECT extract(epoch FROM min(received_at)) FROM zoho_dagster.notifications "
                    "WHERE :id = ANY(ids)"
                ),
                {"id": record_id},
            ).scalar()
            return float(value) if value is not None else None

    def pending(self) -> int:
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("notifications", schema="zoho_dagster"):
                return 0
            return int(
                conn.execute(
                    sa.text("SELECT count(*) FROM zoho_dagster.notifications WHERE consumed_at IS NULL")
                ).scalar_one()
            )

    def settled(self) -> bool:
        return self.control.notifications()["pending"] == 0 and self.pending() == 0


def latency(bench: Bench, spaced: int, gap: float) -> dict[str, Any]:
    """Spaced single changes: seconds to the stored notification and to the row."""
    existing = [r["id"] for r in bench.control.truth("Leads")["data"][:spaced]]
    to_notification, to_row = [], []
    for n in range(spaced):
        marker = f"Latency {n} {uuid.uuid4().hex[:6]}"
        started = time.time()
        if n % 2 == 0:
            record = bench.control.create("Leads", {"Last_Name": marker})
        else:
            record = existing[n]
            bench.control.update("Leads", record, {"Last_Name": marker})
        wait_for(
            f"row of change {n}",
            lambda r=record, m=marker: bench.rows("leads", [r]).get(r, (None,))[0] == m,
            timeout=300,
        )
        to_row.append(time.time() - started)
        received = bench.received(record)
        if received is not None:
            to_notification.append(received - started)
        print(
            f"  change {n}: notification {to_notification[-1]:.2f} s, row {to_row[-1]:.1f} s", file=sys.stderr
        )
        time.sleep(gap)
    return {
        "changes": spaced,
        "to_notification_median_s": round(statistics.median(to_notification), 2),
        "to_row_median_s": round(statistics.median(to_row), 1),
        "to_row_p90_s": round(sorted(to_row)[int(len(to_row) * 0.9) - 1], 1),
        "to_row_max_s": round(max(to_row), 1),
    }


def credits_per_thousand(bench: Bench) -> dict[str, Any]:
    """1,000 Leads edited within seconds; the credits the simulator counted while they were applied."""
    from zoho_dagster.client import listable_fields, plan_passes

    ids = [r["id"] for r in bench.control.truth("Leads")["data"]][:1000]
    fields = [f["api_name"] for f in listable_fields(_fields(bench, "Leads")) if f["api_name"] != "id"]
    passes = len(plan_passes(fields))
    wait_for("quiet before", bench.settled, 120)
    before = bench.control.stats()
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda rid: bench.control.update("Leads", rid, {"Description": "credits"}), ids))
    made = time.monotonic() - started
    wait_for("1,000 edits applied", lambda: bench.settled() and _all_have(bench, ids, "credits"), 600)
    after = bench.control.stats()
    spent = after["total_credits"] - before["total_credits"]
    by_endpoint = {
        k: v - before["by_endpoint"].get(k, 0)
        for k, v in after["by_endpoint"].items()
        if v - before["by_endpoint"].get(k, 0)
    }
    floor = 10 * passes
    return {
        "records": len(ids),
        "edits_made_in_s": round(made, 1),
        "field_passes": passes,
        "credits": spent,
        "floor_credits": floor,
        "ratio_to_floor": round(spent / floor, 2),
        "calls_by_endpoint": by_endpoint,
    }


def _fields(bench: Bench, module: str) -> list[dict[str, Any]]:
    from zoho_dagster.cli.common import zoho_client

    with zoho_client() as client:
        return client.list_fields(module)


def _all_have(bench: Bench, ids: list[str], text: str) -> bool:
    with bench.engine.connect() as conn:
        count = conn.execute(
            sa.text("SELECT count(*) FROM zoho_crm.leads WHERE id = ANY(:ids) AND description = :t"),
            {"ids": ids, "t": text},
        ).scalar_one()
    return int(count) == len(ids)


def polling_cost(interval_seconds: int = 300) -> dict[str, Any]:
    """The polling change sensor's cost of asking: one call per incremental stream per evaluation."""
    from zoho_dagster.streams import CATALOG

    streams = sum(1 for s in CATALOG if s.incremental and s.module)
    evaluations = 86_400 // interval_seconds
    return {
        "interval_s": interval_seconds,
        "streams": streams,
        "credits_per_day_asking": streams * evaluations,
        "notification_upkeep_credits_per_day": "about 3 (a batched renewal every ~11 h)",
    }


def burst(bench: Bench, size: int) -> dict[str, Any]:
    """``size`` changes within a minute over Leads and Contacts; nothing lost, nothing doubled."""
    rng = random.Random(7)
    wait_for("quiet before", bench.settled, 120)
    stats_before = bench.control.notifications()["stats"]
    plan: list[tuple[str, str, str | None]] = []
    per_module = size // 2
    for module in MODULES:
        pool_ids = [r["id"] for r in bench.control.truth(module)["data"]]
        old = rng.sample(pool_ids, per_module * 2 // 5 + per_module // 5)
        plan += [("create", module, None)] * (per_module * 2 // 5)
        plan += [("update", module, rid) for rid in old[: per_module * 2 // 5]]
        plan += [("delete", module, rid) for rid in old[per_module * 2 // 5 :]]
    rng.shuffle(plan)
    lock = threading.Lock()
    touched: dict[str, dict[str, Any]] = {
        m: {"created": set(), "edited": {}, "deleted": set()} for m in MODULES
    }

    def apply(step: tuple[str, str, str | None]) -> None:
        kind, module, rid = step
        if kind == "create":
            new = bench.control.create(module, {"Last_Name": "Burst new"})
            with lock:
                touched[module]["created"].add(new)
        elif kind == "update" and rid is not None:
            value = f"Burst {rid[-6:]}"
            bench.control.update(module, rid, {"Last_Name": value})
            with lock:
                touched[module]["edited"][rid] = value
        elif rid is not None:
            bench.control.delete(module, rid)
            with lock:
                touched[module]["deleted"].add(rid)

    started = time.monotonic()
    with ThreadPoolExecutor(BURST_THREADS) as pool:
        list(pool.map(apply, plan))
    made = time.monotonic() - started
    drained = wait_for("burst applied", bench.settled, 900, every=1.0)
    stats = bench.control.notifications()["stats"]
    delta = {k: stats.get(k, 0) - stats_before.get(k, 0) for k in set(stats) | set(stats_before)}
    lost: list[str] = []
    for module in MODULES:
        table = module.lower()
        created, edited, deleted = (touched[module][k] for k in ("created", "edited", "deleted"))
        rows = bench.rows(table, [*created, *edited, *deleted])
        lost += [f"{module} created {rid}" for rid in created if rid not in rows or rows[rid][1] is not None]
        lost += [
            f"{module} edited {rid}" for rid, value in edited.items() if rows.get(rid, (None,))[0] != value
        ]
        lost += [f"{module} deleted {rid}" for rid in deleted if rows.get(rid, (None, None))[1] is None]
    doubled: list[str] = []
    with bench.engine.connect() as conn:
        rows_total, consumed, stored_ids = conn.execute(
            sa.text(
                "SELECT count(*), count(consumed_at), sum(cardinality(ids)) FROM zoho_dagster.notifications"
            )
        ).one()
        duplicates = conn.execute(
            sa.text(
                "SELECT (SELECT count(*) - count(DISTINCT id) FROM zoho_crm.leads) + "
                "(SELECT count(*) - count(DISTINCT id) FROM zoho_crm.contacts)"
            )
        ).scalar_one()
    if duplicates:
        doubled.append(f"{duplicates} duplicate ids in the tables")
    if int(rows_total) != int(consumed):
        doubled.append(f"{int(rows_total) - int(consumed)} notifications not consumed")
    return {
        "changes": len(plan),
        "made_in_s": round(made, 1),
        "changes_per_s": round(len(plan) / made, 1),
        "applied_within_s_after_last": round(drained, 1),
        "notifications": {k: v for k, v in sorted(delta.items()) if v},
        "stored_notifications_total": int(rows_total),
        "consumed_total": int(consumed),
        "stored_ids_total": int(stored_ids or 0),
        "lost": lost[:10],
        "lost_total": len(lost),
        "doubled": doubled,
        "nothing_lost_nothing_doubled": not lost and not doubled and delta.get("failed", 0) == 0,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from zoho_dagster.simulator import run_simulator

    results: dict[str, Any] = {"leads": args.leads, "sensor_seconds": args.sensor_seconds}
    with (
        database(args.server) as url,
        tempfile.TemporaryDirectory(prefix="zd_bench_notify_") as scratch,
        run_simulator(records=args.leads) as sim,
    ):
        directory = Path(scratch)
        port = free_port()
        primary = sim.primary
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ZOHO_", "DAGSTER_"))},
            "ZOHO_CRM_CLIENT_ID": primary["client_id"],
            "ZOHO_CRM_CLIENT_SECRET": primary["client_secret"],
            "ZOHO_CRM_SOID": primary["soid"],
            "ZOHO_CRM_ACCOUNTS_URL": primary["accounts_url"],
            "ZOHO_CRM_API_DOMAIN": primary["api_domain"],
            "ZOHO_DAGSTER_DATABASE_URL": url,
            "ZOHO_DAGSTER_NOTIFY_SECRET": SECRET,
            "ZOHO_DAGSTER_NOTIFY_URL": f"http://127.0.0.1:{port}/zoho/notify",
            "ZOHO_DAGSTER_NOTIFY_SENSOR_SECONDS": str(args.sensor_seconds),
            "DAGSTER_HOME": str(dagster_home(directory, url)),
        }
        os.environ.update({k: v for k, v in env.items() if k.startswith("ZOHO_")})
        bench = Bench(sim, url)
        zoho_dagster = str(BIN / "zoho-dagster")
        with (
            process(
                [zoho_dagster, "notifications", "serve", "--port", str(port)], env, directory / "receiver.log"
            ),
            process(
                [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, directory / "daemon.log"
            ),
        ):
            wait_for("receiver", lambda: _healthy(port), 60)
            subscribe = _command([zoho_dagster, "notifications", "subscribe"], env)
            assert subscribe.returncode == 0, subscribe.stderr
            results["subscribe"] = subscribe.stdout.strip()
            sensor_start = ["sensor", "start", "-w", "workspace.yaml", "zoho_crm_notification_sensor"]
            started = _command([str(BIN / "dagster"), *sensor_start], env)
            assert started.returncode == 0, started.stdout + started.stderr
            probe = sim.control.create("Leads", {"Last_Name": "Probe"})
            results["daemon_first_row_s"] = round(
                wait_for("the daemon's first run", lambda: probe in bench.rows("leads", [probe]), 600, 1.0), 1
            )
            print("latency ...", file=sys.stderr)
            results["latency"] = latency(bench, args.spaced, args.gap)
            print("credits ...", file=sys.stderr)
            results["credits_per_1000"] = credits_per_thousand(bench)
            results["polling_sensor"] = polling_cost()
            print("burst ...", file=sys.stderr)
            results["burst"] = burst(bench, args.burst)
            again = _command([zoho_dagster, "notifications", "subscribe"], env)
            results["subscribe_again"] = again.stdout.strip()
    return results


def _healthy(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20_000, help="Leads in the simulator (default 20,000)")
    parser.add_argument(
        "--server",
        default=os.environ.get("ZOHO_DAGSTER_TEST_DATABASE_URL"),
        help="Postgres server for a fresh database (default $ZOHO_DAGSTER_TEST_DATABASE_URL)",
    )
    parser.add_argument("--sensor-seconds", type=int, default=5, help="notification sensor interval (5)")
    parser.add_argument("--spaced", type=int, default=20, help="spaced changes for the latency (20)")
    parser.add_argument("--gap", type=float, default=2.0, help="seconds between spaced changes (2)")
    parser.add_argument("--burst", type=int, default=10_000, help="changes in the burst (10,000)")
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=1))
    return 0 if result["burst"]["nothing_lost_nothing_doubled"] else 1


if __name__ == "__main__":
    sys.exit(main())
