"""Side by side, on one simulator and one Postgres: a Leads backfill by zoho_dagster and by dlt's rest_api.

Why this exists: a Python user who wants Zoho CRM in Postgres would otherwise reach for dlt, so the honest
figure is ours beside theirs on the same machine at the same moment, each run the way its user runs it:

- **us**: ``dagster asset materialize -m zoho_dagster.definitions --select leads --partition-range
  <first>...<today>`` in a subprocess (a single-run backfill of every daily partition from the earliest
  ``Modified_Time`` day), ``ZOHO_CRM_*`` pointing at the simulator's primary org, a fresh database and a
  ``DAGSTER_HOME`` holding a copy of the project's ``dagster.yaml``; extra variables with ``--env``;
- **dlt**: ``benchmarks/dlt_zoho_source.py`` in a subprocess, dlt's defaults, its own fresh database.

Both wall times are whole-process (interpreter start-up, imports, token, metadata, pages, load). Simulator
counters are reset before each side, so calls and credits are that side's alone. The work is not the same, and
the table shows it: ours reads every listable field (72 on the simulator's Leads: two passes of at most 50
joined on id), the deletions, runs the asset checks in the same run and stores one materialization event per
daily partition (about 400); dlt reads only the 50 fields one call can carry. Where our time went (sync,
events, checks, start-up) is read from the run's log lines; dlt's from its trace. The machine may be shared,
so each side's 1-minute load average at its end is recorded too. Before either side runs, the simulator
renders every lead once and keeps it (``warm``): Zoho serves data at rest, while the simulator otherwise makes
each record in pure Python on first read, on one core, a cost the side reading first would pay alone. Cases::

    python benchmarks/compare_dlt.py --quick              # smoke run: 5,000 leads, both cases (~1.5 min)
    python benchmarks/compare_dlt.py                      # 100,000 leads, both cases
    python benchmarks/compare_dlt.py --records 20000 --cases b --env ZOHO_CRM_MAX_CONCURRENCY=10
    python benchmarks/compare_dlt.py --memory 1000000 --env ZOHO_CRM_BULK_THRESHOLD=0   # our peak RSS, 1M
    python benchmarks/compare_dlt.py --quick --postgres-url embedded   # no PostgreSQL server on the machine

(a) no latency; (b) 300 ms per request with the org's concurrency limit at 10 (Zoho Standard edition), where
the floor is what any records API client could reach: record calls x 0.3 s / 10 in flight. Our COQL passes
read the fields beyond 50 with fewer calls than that floor counts, so the floor of the calls we really made
(record pages and COQL calls x 0.3 s / 10) is printed beside it: how well we use the concurrency we have.
The simulator's daily credit limit is lifted in every case so that neither side is cut off by a quota the
other would also hit. Results are printed as a table and merged into ``benchmarks/results/compare_dlt.json``
(git-ignored), each side's output into ``benchmarks/results/compare_dlt_logs/``.

Size limits on each side: a window of more than ``ZOHO_CRM_BULK_THRESHOLD`` records (100,000) is read by our
client with Bulk Read, so at the default 100,000 leads (99,700 live) both sides use the records API; dlt's
script cannot go past 100,000 at all (one ``page_token`` chain serves at most that many). The memory mode's
million is read with the records API too (threshold 0): the simulator builds a Bulk Read job by walking every
record in pure Python, and at a million leads its first job was still building after 14 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg2
import requests

from zoho_dagster.cli.common import SIMULATOR_KEYS
from zoho_dagster.client.client import listable_fields
from zoho_dagster.settings import SECRET_VARIABLES
from zoho_dagster.simulator import run_simulator
from zoho_dagster.simulator.runner import RunningSimulator

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "compare_dlt.json"
LOGS = RESULTS.parent / "compare_dlt_logs"  # each side's output, per configuration, kept after the run
DLT_SCRIPT = Path(__file__).with_name("dlt_zoho_source.py")
DAGSTER = Path(sys.executable).parent / "dagster"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_RECORDS = 100_000
QUICK_RECORDS = 5_000
PER_PAGE = 200
MAX_FIELDS_PER_CALL = 50
# Enough scopes for the harness's own look-ups, the record count included (it needs the search scope).
PROBE_SCOPES = "ZohoCRM.modules.ALL,ZohoCRM.settings.ALL,ZohoSearch.securesearch.READ"
UNLIMITED_CREDITS = 10**9
TOKEN_ENDPOINT = "POST /oauth/v2/token"
RECORDS_ENDPOINT = "GET /crm/v6/Leads"
COQL_ENDPOINT = "POST /crm/v6/coql"


@dataclass(frozen=True)
class Case:
    """One simulator set-up both sides run against."""

    name: str
    latency_ms: int
    concurrency: int | None  # the org's concurrency limit; None keeps the edition's (Enterprise: 20)


CASES = {
    "a": Case("a", latency_ms=0, concurrency=None),
    "b": Case("b", latency_ms=300, concurrency=10),
}


@dataclass(frozen=True)
class Probe:
    """What the harness learns from the simulator before the sides run (outside every timing)."""

    leads: int  # every live lead, converted and awaiting approval included: what each table must hold
    leads_shown_by_default: int  # those Get Records returns without converted/approved (dlt's defaults)
    fields: int  # every field of /settings/fields?module=Leads
    listable_fields: int  # those the list API returns (F): what our sync reads
    earliest_day: date  # UTC day of the oldest Modified_Time: the anchor, so the backfill covers every lead


@dataclass
class Run:
    """One side's subprocess: its wall time, what it cost the simulator and what it left in Postgres."""

    side: str
    wall_seconds: float
    returncode: int
    peak_tree_rss_mb: float
    stats: dict[str, Any]
    load_average: float  # the 1-minute load average as the side ended: others' work on the same 2 cores
    rows: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    log_tail: str = ""


# --------------------------------------------------------------------------------------------- processes


def run_tree(
    cmd: list[str], env: dict[str, str], cwd: Path, timeout: float, log: Path
) -> tuple[float, int, float]:
    """Run ``cmd`` to completion; return (wall seconds, exit code, peak RSS of its whole process tree in MB).

    The tree is sampled from a thread (every 0.2 s, children included: Dagster's multiprocess executor runs
    steps in subprocesses, and compute-log watchers run beside) so the wall time is the process's own, not
    rounded up to a polling tick. RSS is summed over processes, so
    pages they share count more than once: an upper bound, which is what a capacity plan needs.
    """
    peak = [0]
    done = threading.Event()
    with log.open("w") as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        sampler = threading.Thread(target=_sample_tree, args=(proc.pid, peak, done), daemon=True)
        sampler.start()
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc.pid)
            returncode = proc.wait()
            out.write(f"\n[compare_dlt] killed after {timeout:.0f} s\n")
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): leave no side running behind
            _kill_tree(proc.pid)
            raise
        wall = time.monotonic() - started
        done.set()
        sampler.join()
    return wall, returncode, peak[0] / 2**20


def _sample_tree(pid: int, peak: list[int], done: threading.Event) -> None:
    """Keep ``peak[0]`` at the largest summed RSS seen for ``pid`` and its descendants."""
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not done.is_set():
        total = 0
        try:
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for process in processes:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        peak[0] = max(peak[0], total)
        done.wait(0.2)


def _kill_tree(pid: int) -> None:
    """End a timed-out or interrupted side: the process this harness started and its descendants, by id."""
    try:
        root = psutil.Process(pid)
        processes = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue


def base_env() -> dict[str, str]:
    """The caller's environment without any Zoho or Dagster setting, as the seed-command test does: nothing
    from an activated shell (``DAGSTER_MODULE_NAME``) or a real org may leak into a side."""
    return {key: value for key, value in os.environ.items() if not key.startswith(("ZOHO_", "DAGSTER_"))}


def zoho_env(sim: RunningSimulator) -> dict[str, str]:
    """``ZOHO_CRM_*`` of the simulator's primary org, as ``point_at_simulator`` sets them, for a child."""
    org = sim.primary
    return {SECRET_VARIABLES[key]: str(org[key]) for key in SIMULATOR_KEYS}


# ---------------------------------------------------------------------------------------------- postgres


def with_database(server_url: str, name: str, password: str | None = None) -> str:
    """``server_url`` pointing at database ``name``; given a ``password``, shaped for dlt's credentials too.

    dlt insists on a password and a host: the password fills an empty one (trust auth ignores it), and a
    Unix-socket URL (the embedded server's ``...@/db?host=/socket/dir``) gets ``localhost``, which libpq
    overrides with the ``host`` query parameter.
    """
    parts = urlsplit(server_url)
    netloc = parts.netloc
    if password and "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, _, current = userinfo.partition(":")
        netloc = f"{userinfo if current else f'{user}:{password}'}@{host or 'localhost'}"
    return urlunsplit((parts.scheme, netloc, f"/{name}", parts.query, parts.fragment))


@contextlib.contextmanager
def postgres_server(url: str, directory: Path) -> Iterator[str]:
    """The server both sides write to: ``url``, or for ``embedded`` a throw-away one from the pgserver wheel
    (as the demo and ``end_to_end.py`` use) on a machine that runs no PostgreSQL."""
    if url != "embedded":
        yield url
        return
    import pgserver

    server = pgserver.get_server(directory / "pgdata", cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


def admin(server_url: str, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
    connection = psycopg2.connect(server_url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


@contextlib.contextmanager
def fresh_database(server_url: str, name: str) -> Iterator[str]:
    """A new empty database for one side, so neither finds the other's tables, token cache or Dagster runs;
    dropped afterwards, also when the run is interrupted."""
    admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def count_rows(url: str, sql: str) -> int | None:
    """One ``count(*)``; ``None`` when the table is missing (the side failed before creating it)."""
    try:
        connection = psycopg2.connect(url)
    except psycopg2.Error:
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            row = cursor.fetchone()
            return int(row[0]) if row else None
    except psycopg2.Error:
        return None
    finally:
        connection.close()


# ------------------------------------------------------------------------------------------------- sides

_DURATION_PARTS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def _seconds(text: str) -> float:
    """Dagster's ``format_duration`` (``533ms``, ``2.1s``, ``4m52s``, ``1h4m``) back to seconds."""
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    return sum(float(value) * _DURATION_PARTS[unit] for value, unit in re.findall(r"([\d.]+)([hms])", text))


def dagster_timings(log: str) -> dict[str, Any]:
    """Where our wall time went, read from the run's own log lines: the sync itself (the IO manager's
    "... in N s" line), the rest of the asset step (Dagster stores one materialization event per partition),
    the checks step, and everything outside the run (interpreter, definitions, storage set-up, run creation).
    """
    patterns = {
        "sync_seconds": r"deletions marked in ([\d.]+s)",
        "leads_step_seconds": r'Finished execution of step "leads" in (\S+)\.',
        "checks_step_seconds": r'Finished execution of step "leads_checks" in (\S+)\.',
        # The multiprocess executor's last line, or the in-process executor's.
        "run_seconds": r"(?:parent process exiting after|Finished steps in process \(pid: \d+\) in) (\S+)",
    }
    timings: dict[str, Any] = {}
    for key, pattern in patterns.items():
        found = re.search(pattern, log)
        if found:
            timings[key] = round(_seconds(found.group(1)), 2)
    timings["materialization_events"] = log.count("ASSET_MATERIALIZATION")
    return timings


def probe(sim: RunningSimulator) -> Probe:
    """Five calls, before any counter is reset: the counts to verify against, F, and the earliest day.

    The oldest ``Modified_Time`` comes from one sorted ``per_page=1`` call rather than the simulator's truth,
    which at a million records would be a very large answer.
    """
    org = sim.primary
    grant = requests.post(
        f"{org['accounts_url']}/oauth/v2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": org["client_id"],
            "client_secret": org["client_secret"],
            "soid": org["soid"],
            "scope": PROBE_SCOPES,
        },
        timeout=60,
    ).json()
    session = requests.Session()
    session.headers["Authorization"] = f"Zoho-oauthtoken {grant['access_token']}"
    api = f"{org['api_domain']}/crm/v6"
    fields = session.get(f"{api}/settings/fields", params={"module": "Leads"}, timeout=60).json()["fields"]
    oldest = session.get(
        f"{api}/Leads",
        params={"fields": "Modified_Time", "sort_by": "Modified_Time", "sort_order": "asc", "per_page": 1},
        timeout=60,
    ).json()["data"][0]["Modified_Time"]
    shown = session.get(f"{api}/Leads/actions/count", timeout=60).json()["count"]
    # The simulator's strict count leaves converted leads and leads awaiting approval out, as Zoho's may
    # (docs/zoho-crm-api.md §10); a table that holds every lead is checked against the count of all of them.
    sim.control.set_readings(count_includes_hidden=True)
    every = session.get(f"{api}/Leads/actions/count", timeout=60).json()["count"]
    sim.control.set_readings(count_includes_hidden=False)
    session.close()
    return Probe(
        leads=int(every),
        leads_shown_by_default=int(shown),
        fields=len(fields),
        listable_fields=len(listable_fields(fields)),
        earliest_day=datetime.fromisoformat(oldest).astimezone(timezone.utc).date(),
    )


def side_stats(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The simulator's counters for one side: API calls (token grants apart, as Zoho counts them), the record
    list calls among them, and credits."""
    endpoints = dict(snapshot.get("by_endpoint") or {})
    grants = int(endpoints.get(TOKEN_ENDPOINT, 0))
    return {
        "api_calls": int(snapshot["total_requests"]) - grants,
        "record_calls": int(endpoints.get(RECORDS_ENDPOINT, 0)),
        "coql_calls": int(endpoints.get(COQL_ENDPOINT, 0)),
        "credits": int(snapshot["total_credits"]),
        "token_grants": int(snapshot.get("token_grants", grants)),
        "by_endpoint": endpoints,
    }


def run_ours(
    sim: RunningSimulator,
    server_url: str,
    workdir: Path,
    label: str,
    anchor: date,
    partitions: list[str],
    extra_env: dict[str, str],
    timeout: float,
) -> Run:
    """The product path: ``dagster asset materialize`` over ``partitions``, with a fresh database and home."""
    home = workdir / f"dagster_home_{label}"
    home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    cmd = [str(DAGSTER), "asset", "materialize", "-m", "zoho_dagster.definitions", "--select", "leads"]
    log = workdir / "logs" / f"{label}.log"
    with fresh_database(server_url, f"zd_bench_{os.getpid()}_{label}") as url:
        env = {
            **base_env(),
            **zoho_env(sim),
            "DAGSTER_HOME": str(home),
            "ZOHO_DAGSTER_DATABASE_URL": url,
            "ZOHO_CRM_ANCHOR_DATE": anchor.isoformat(),
            **extra_env,
        }
        sim.control.reset_stats()
        wall, returncode, peak = run_tree([*cmd, *partitions], env, ROOT, timeout, log)
        stats = side_stats(sim.control.stats())
        load = os.getloadavg()[0]
        rows = count_rows(url, "SELECT count(*) FROM zoho_crm.leads WHERE _zoho_deleted_at IS NULL")
        total = count_rows(url, "SELECT count(*) FROM zoho_crm.leads")
    output = log.read_text()
    timings = dagster_timings(output)
    if "run_seconds" in timings:
        timings["outside_run_seconds"] = round(wall - timings["run_seconds"], 2)
    return Run(
        side="us",
        wall_seconds=wall,
        returncode=returncode,
        peak_tree_rss_mb=peak,
        stats=stats,
        load_average=load,
        rows=rows,
        detail={
            "rows_with_tombstones": total,
            "command": " ".join([*cmd[1:], *partitions]),
            "timings": timings,
        },
        log_tail="" if returncode == 0 else output[-3000:],
    )


def run_dlt(sim: RunningSimulator, server_url: str, workdir: Path, label: str, timeout: float) -> Run:
    """dlt's side: its script in a fresh directory (no stray ``.dlt`` config), its own fresh database.

    dlt's Postgres credentials insist on a password; the server trusts local connections and ignores it.
    Telemetry is switched off only because this machine has no route out: a blocked send must not be timed.
    """
    name = f"zd_bench_{os.getpid()}_{label}"
    rundir = workdir / f"dlt_{label}"
    rundir.mkdir()
    env = {**base_env(), **zoho_env(sim), "RUNTIME__DLTHUB_TELEMETRY": "false"}
    cmd = [
        sys.executable,
        str(DLT_SCRIPT),
        "--database-url",
        with_database(server_url, name, password="unused"),
        "--pipelines-dir",
        str(rundir / "pipelines"),
    ]
    log = workdir / "logs" / f"{label}.log"
    with fresh_database(server_url, name) as url:
        sim.control.reset_stats()
        wall, returncode, peak = run_tree(cmd, env, rundir, timeout, log)
        stats = side_stats(sim.control.stats())
        load = os.getloadavg()[0]
        rows = count_rows(url, "SELECT count(*) FROM zoho_crm.leads")
    output = log.read_text()
    detail: dict[str, Any] = {}
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            detail = dict(json.loads(line))
            break
    return Run(
        side="dlt",
        wall_seconds=wall,
        returncode=returncode,
        peak_tree_rss_mb=peak,
        stats=stats,
        load_average=load,
        rows=rows,
        detail=detail,
        log_tail="" if returncode == 0 else output[-3000:],
    )


# ---------------------------------------------------------------------------------------------- figures


def figures(run: Run, leads: int, fields_read: int) -> dict[str, Any]:
    """One side's line of the table (and of the JSON)."""
    per_10k = 10_000 / leads if leads else 0.0
    return {
        "ok": run.returncode == 0 and run.rows == leads,
        "returncode": run.returncode,
        "rows": run.rows,
        "expected_rows": leads,
        "fields_read": fields_read,
        "wall_seconds": round(run.wall_seconds, 2),
        "rows_per_second": round((run.rows or 0) / run.wall_seconds, 1) if run.wall_seconds else 0.0,
        "api_calls": run.stats["api_calls"],
        "record_calls": run.stats["record_calls"],
        "credits": run.stats["credits"],
        "token_grants": run.stats["token_grants"],
        "calls_per_10k_records": round(run.stats["api_calls"] * per_10k, 1),
        "credits_per_10k_records": round(run.stats["credits"] * per_10k, 1),
        "peak_tree_rss_mb": round(run.peak_tree_rss_mb, 1),
        "load_average_1min_at_end": round(run.load_average, 2),
        "by_endpoint": run.stats["by_endpoint"],
        **({"detail": run.detail} if run.detail else {}),
        **({"log_tail": run.log_tail} if run.log_tail else {}),
    }


def floor_seconds(case: Case, found: Probe) -> float | None:
    """The least time any client needs for the record calls of case (b): every call takes the latency and at
    most ``concurrency`` are in flight. Record calls = pages x field passes = ceil(N/200) x ceil(F/50)."""
    if not case.latency_ms or not case.concurrency:
        return None
    calls = math.ceil(found.leads / PER_PAGE) * math.ceil(found.listable_fields / MAX_FIELDS_PER_CALL)
    return calls * (case.latency_ms / 1000) / case.concurrency


def run_case(case: Case, records: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Both sides (and our start-up) against one simulator, one after the other, counters reset between."""
    extra_env = dict(args.env)
    timeout = 600 + records * 0.02
    print(
        f"case ({case.name}): {records:,} leads, latency {case.latency_ms} ms, "
        f"org concurrency {case.concurrency or 'edition default (20)'}",
        flush=True,
    )
    with run_simulator(records=records, latency_ms=case.latency_ms) as sim:
        sim.control.set_limits(credits_per_day=UNLIMITED_CREDITS, concurrency=case.concurrency)
        found = probe(sim)
        began = time.monotonic()
        warmed = sim.control.warm("Leads")
        print(f"  simulator warmed  {time.monotonic() - began:8.1f} s ({warmed:,} leads at rest)", flush=True)
        today = datetime.now(timezone.utc).date()
        startup = None
        if not args.no_startup and not args.quick:
            # A partition the day before the anchor holds no record: what is left is start-up (imports,
            # definitions, Dagster's storage, token, metadata, one empty page per pass, the deletions).
            empty_day = found.earliest_day - timedelta(days=1)
            startup = run_ours(
                sim,
                args.postgres_url,
                workdir,
                f"{case.name}_startup",
                empty_day,
                ["--partition", empty_day.isoformat()],
                extra_env,
                timeout,
            )
            print(
                f"  start-up run      {startup.wall_seconds:8.1f} s (exit {startup.returncode})", flush=True
            )
        ours = run_ours(
            sim,
            args.postgres_url,
            workdir,
            f"{case.name}_us",
            found.earliest_day,
            ["--partition-range", f"{found.earliest_day.isoformat()}...{today.isoformat()}"],
            extra_env,
            timeout,
        )
        print(f"  us                {ours.wall_seconds:8.1f} s (exit {ours.returncode})", flush=True)
        theirs = run_dlt(sim, args.postgres_url, workdir, f"{case.name}_dlt", timeout)
        print(f"  dlt               {theirs.wall_seconds:8.1f} s (exit {theirs.returncode})", flush=True)
    us = figures(ours, found.leads, found.listable_fields)
    dlt = figures(theirs, found.leads, int(theirs.detail.get("fields", MAX_FIELDS_PER_CALL)))
    result: dict[str, Any] = {
        "case": case.name,
        "records": records,
        "latency_ms": case.latency_ms,
        "org_concurrency": case.concurrency,
        "extra_env": extra_env,
        "probe": {**asdict(found), "earliest_day": found.earliest_day.isoformat()},
        "us": us,
        "dlt": dlt,
        "us_over_dlt_rows_per_second": (
            round(us["rows_per_second"] / dlt["rows_per_second"], 2) if dlt["rows_per_second"] else None
        ),
    }
    if startup is not None:
        result["us_startup"] = {
            "wall_seconds": round(startup.wall_seconds, 2),
            "returncode": startup.returncode,
            "api_calls": startup.stats["api_calls"],
        }
    floor = floor_seconds(case, found)
    if floor is not None:
        result["floor"] = {
            "record_calls": math.ceil(found.leads / PER_PAGE)
            * math.ceil(found.listable_fields / MAX_FIELDS_PER_CALL),
            "seconds": round(floor, 2),
            "us_over_floor": round(ours.wall_seconds / floor, 2),
            **(
                {"us_over_floor_plus_startup": round(ours.wall_seconds / (floor + startup.wall_seconds), 2)}
                if startup is not None
                else {}
            ),
        }
        made = ours.stats["record_calls"] + ours.stats["coql_calls"]
        own = made * (case.latency_ms / 1000) / (case.concurrency or 1)
        result["floor_of_our_calls"] = {
            "read_calls": made,
            "seconds": round(own, 2),
            **(
                {"us_over_floor_plus_startup": round(ours.wall_seconds / (own + startup.wall_seconds), 2)}
                if startup is not None
                else {}
            ),
        }
    return result


def run_memory(records: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Our peak memory for a ``records`` backfill at no latency: the only subprocess of this harness run, so
    ``RUSAGE_CHILDREN``'s ``ru_maxrss`` is the largest single process of our tree; the sampled tree sum is
    reported beside it."""
    print(f"memory: {records:,} leads, our side only", flush=True)
    with run_simulator(records=records, latency_ms=0) as sim:
        sim.control.set_limits(credits_per_day=UNLIMITED_CREDITS)
        found = probe(sim)
        today = datetime.now(timezone.utc).date()
        ours = run_ours(
            sim,
            args.postgres_url,
            workdir,
            "memory_us",
            found.earliest_day,
            ["--partition-range", f"{found.earliest_day.isoformat()}...{today.isoformat()}"],
            dict(args.env),
            600 + records * 0.02,
        )
        # Read before the simulator (a child too, and a big one at this size) is stopped and waited for.
        largest_child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    return {
        "records": records,
        "extra_env": dict(args.env),
        "us": figures(ours, found.leads, found.listable_fields),
        "largest_process_peak_rss_mb": round(largest_child_mb, 1),
    }


# ----------------------------------------------------------------------------------------------- output


def print_table(section: dict[str, Any]) -> None:
    """The compact table: one line per side and case, then the ratios (or the memory mode's one line)."""
    header = (
        f"{'case':<5}{'side':<5}{'rows':>10} {'ok':<4}{'wall s':>9}{'rows/s':>10}{'calls':>8}{'credits':>9}"
        f"{'calls/10k':>11}{'cred/10k':>10}{'fields':>8}{'RSS MB':>9}{'load':>6}"
    )
    print()
    if section.get("cases"):
        print(header)
        print("-" * len(header))
    for result in section.get("cases", []):
        for side in ("us", "dlt"):
            line = result[side]
            print(
                f"{result['case']:<5}{side:<5}{line['rows'] or 0:>10,} {'yes' if line['ok'] else 'NO':<4}"
                f"{line['wall_seconds']:>9.1f}{line['rows_per_second']:>10,.0f}{line['api_calls']:>8,}"
                f"{line['credits']:>9,}{line['calls_per_10k_records']:>11.1f}"
                f"{line['credits_per_10k_records']:>10.1f}{line['fields_read']:>8}{line['peak_tree_rss_mb']:>9.0f}"
                f"{line['load_average_1min_at_end']:>6.1f}"
            )
    for result in section.get("cases", [])[:1]:
        probe = result.get("probe") or {}
        if "leads_shown_by_default" in probe:
            print(
                f"ok: the table holds every live lead ({probe['leads']:,}); Get Records' defaults (dlt's) "
                f"return the {probe['leads_shown_by_default']:,} neither converted nor awaiting approval"
            )
    print()
    for result in section.get("cases", []):
        text = (
            f"case ({result['case']}): {result['records']:,} leads, {result['latency_ms']} ms; "
            f"us/dlt rows/s = {result['us_over_dlt_rows_per_second']}"
        )
        if "us_startup" in result:
            text += f"; our start-up {result['us_startup']['wall_seconds']} s"
        if "floor" in result:
            floor = result["floor"]
            text += (
                f"; floor {floor['record_calls']:,} record calls x {result['latency_ms'] / 1000} s / "
                f"{result['org_concurrency']} = {floor['seconds']} s, us/floor = {floor['us_over_floor']}"
            )
            if "us_over_floor_plus_startup" in floor:
                text += f", us/(floor + start-up) = {floor['us_over_floor_plus_startup']}"
        if "floor_of_our_calls" in result:
            own = result["floor_of_our_calls"]
            text += f"; floor of our {own['read_calls']:,} read calls {own['seconds']} s"
            if "us_over_floor_plus_startup" in own:
                text += f", us/(that + start-up) = {own['us_over_floor_plus_startup']}"
        print(text)
        timings = result["us"].get("detail", {}).get("timings", {})
        if timings:
            print(
                f"  us: sync (read + write) {timings.get('sync_seconds', '?')} s, leads step "
                f"{timings.get('leads_step_seconds', '?')} s ({timings.get('materialization_events', '?')} "
                f"materialization events), checks step {timings.get('checks_step_seconds', '?')} s, "
                f"outside the run {timings.get('outside_run_seconds', '?')} s"
            )
        steps = result["dlt"].get("detail", {}).get("steps", {})
        if steps:
            print("  dlt: " + ", ".join(f"{step} {seconds} s" for step, seconds in steps.items()))
    if "largest_process_peak_rss_mb" in section:
        us = section["us"]
        print(
            f"memory: {section['records']:,} leads backfilled in {us['wall_seconds']:.0f} s "
            f"({'ok' if us['ok'] else 'NOT ok'}, {us['rows'] or 0:,} rows): peak RSS of our process tree "
            f"{us['peak_tree_rss_mb']:.0f} MB (summed), largest single process "
            f"{section['largest_process_peak_rss_mb']:.0f} MB"
        )


def write_results(key: str, section: dict[str, Any]) -> None:
    """Merge ``section`` into the JSON file under ``key`` (:func:`result_key`), so a quick run does not wipe
    the last full one, nor a memory run the comparisons."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    existing: dict[str, Any] = {}
    if RESULTS.exists():
        try:
            existing = dict(json.loads(RESULTS.read_text()))
        except (ValueError, TypeError):
            existing = {}
    existing[key] = section
    staged = RESULTS.with_name(f".{RESULTS.name}.{os.getpid()}")  # whole or not at all
    staged.write_text(json.dumps(existing, indent=2) + "\n")
    staged.replace(RESULTS)
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")


def source_state() -> dict[str, Any]:
    """The commit measured and the package files changed beside it: the working tree is what runs, and
    figures from a tree with uncommitted changes must say so."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout

    changed = [line[3:] for line in git("status", "--porcelain", "--", "zoho_dagster").splitlines() if line]
    return {"commit": git("rev-parse", "HEAD").strip(), "uncommitted_package_files": changed}


def result_key(args: argparse.Namespace, records: int, names: list[str]) -> str:
    """The run's name in the JSON file and its log folder: one per configuration, so a run of another
    configuration (a single case, extra variables) never overwrites this one's figures or logs."""
    if args.memory:
        key = f"memory_{args.memory}"
    else:
        key = f"comparison_{records}" + ("" if names == sorted(CASES) else "_cases_" + "".join(names))
    return key + "".join(f"_{name}={value}" for name, value in args.env)


def _without_password(url: str) -> str:
    """The server as recorded in the results: its URL with any password left out."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}@{parts.netloc.rsplit('@', 1)[1]}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM as an exception, so the simulator, the side running and the temporary files are cleaned up."""
    raise SystemExit(128 + signum)


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--env takes KEY=VALUE, not {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, help=f"leads in the simulator (default {DEFAULT_RECORDS:,})")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_RECORDS:,} leads and no start-up run",
    )
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), help="default: a b")
    parser.add_argument(
        "--env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra variable for our dagster process, e.g. ZOHO_CRM_MAX_CONCURRENCY=10 (repeatable)",
    )
    parser.add_argument("--no-startup", action="store_true", help="skip our zero-record start-up run")
    parser.add_argument(
        "--memory", type=int, metavar="N", help="only measure our peak RSS for an N-record backfill"
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_SERVER,
        help=f"server to create the databases on (default {DEFAULT_SERVER}; 'embedded': a throw-away one)",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    records = args.records or (QUICK_RECORDS if args.quick else DEFAULT_RECORDS)
    machine = {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "dagster": version("dagster"),
        "dlt": version("dlt"),
        "postgres": _without_password(args.postgres_url),
        **source_state(),
    }
    names = args.cases or sorted(CASES)
    key = result_key(args, records, names)
    with (
        tempfile.TemporaryDirectory(prefix="zd_compare_dlt_") as directory,
        postgres_server(args.postgres_url, Path(directory)) as server_url,
    ):
        args.postgres_url = server_url
        workdir = Path(directory)
        (workdir / "logs").mkdir()
        try:
            if args.memory:
                section = {**machine, **run_memory(args.memory, args, workdir)}
                ok = section["us"]["ok"]
            else:
                cases = [run_case(CASES[name], records, args, workdir) for name in names]
                section = {**machine, "records": records, "quick": args.quick, "cases": cases}
                ok = all(case[side]["ok"] for case in cases for side in ("us", "dlt"))
        finally:
            shutil.copytree(workdir / "logs", LOGS / key, dirs_exist_ok=True)
    print_table(section)
    for case in section.get("cases", []):
        for side in ("us", "dlt"):
            if case[side].get("log_tail"):
                print(
                    f"\n--- case ({case['case']}) {side} failed; end of its output:\n{case[side]['log_tail']}"
                )
    write_results(key, section)
    print(f"logs: {(LOGS / key).relative_to(ROOT)}/")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
