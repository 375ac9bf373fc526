"""``zoho-dagster demo | dev | discover | check``: the package's front door.

- ``demo``: the embedded Postgres (or ``ZOHO_DAGSTER_DATABASE_URL``) and the bundled simulator; syncs every
  stream over the whole anchor range, one single-run backfill per stream, then compares each table with the
  simulator's truth and exits 1 on any difference.
- ``dev``: ``dagster dev -w workspace.yaml`` with a prepared ``DAGSTER_HOME`` (Dagster's storage in Postgres),
  against real Zoho when ``ZOHO_CRM_*`` credentials are set, else against a simulator started for it.
- ``discover``: the org's modules and fields; ``--write`` records the modules for the replication file's
``*``.
- ``check``: credentials, region and scopes, each failure with its fix.
"""

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from datetime import time as dtime
from pathlib import Path
from typing import Any

SIMULATOR_ENV = {
    "client_id": "ZOHO_CRM_CLIENT_ID",
    "client_secret": "ZOHO_CRM_CLIENT_SECRET",
    "soid": "ZOHO_CRM_SOID",
    "region": "ZOHO_CRM_REGION",
    "accounts_url": "ZOHO_CRM_ACCOUNTS_URL",
    "api_domain": "ZOHO_CRM_API_DOMAIN",
}
STATE_DIR = Path(".zoho_dagster")
DEMO_SCHEMA_ON_SHARED_DATABASE = "zoho_crm_demo"


# --------------------------------------------------------------------------------------------- environment


def _point_at_simulator(primary: dict[str, Any]) -> None:
    """Export the simulator's primary org as the ZOHO_CRM_* variables (a refresh token would compete)."""
    for key, variable in SIMULATOR_ENV.items():
        os.environ[variable] = str(primary[key])
    os.environ.pop("ZOHO_CRM_REFRESH_TOKEN", None)
    os.environ.pop("ZOHO_CRM", None)


def _database_url() -> str:
    """``ZOHO_DAGSTER_DATABASE_URL`` or the embedded server's, exported so Dagster's processes share it."""
    from zoho_dagster.postgres.embedded import resolve_database_url

    url = resolve_database_url()
    os.environ["ZOHO_DAGSTER_DATABASE_URL"] = url
    return url


@contextlib.contextmanager
def _simulator(records: int, seed: int, latency_ms: int) -> Iterator[Any]:
    from zoho_dagster.simulator import run_simulator

    with run_simulator(seed=seed, records=records, latency_ms=latency_ms) as simulator:
        yield simulator


# ---------------------------------------------------------------------------------------------------- demo


@dataclass
class StreamRun:
    """One stream's sync in the demo: how it went, for the progress line and the closing table."""

    name: str
    ok: bool
    rows: int
    seconds: float
    api_calls: int
    error: str = ""


def _metadata_value(result: Any, name: str, key: str, default: Any = 0) -> Any:
    materializations = result.asset_materializations_for_node(name)
    if not materializations:
        return default
    entry = materializations[-1].metadata.get(key)
    return getattr(entry, "value", default) if entry is not None else default


def _sync_all(specs: Sequence[Any], tables: dict[str, str], requests_per_second: float) -> list[StreamRun]:
    """Materialize every stream in-process: partitioned ones as one run over the whole partition range."""
    import dagster as dg

    from zoho_dagster.assets import build_stream_assets
    from zoho_dagster.postgres.io_manager import PostgresIOManager
    from zoho_dagster.resource import ZohoCRMResource

    assets = build_stream_assets(specs, tables)
    resources = {
        "zoho_crm": ZohoCRMResource.from_env(requests_per_second=requests_per_second),
        "io_manager": PostgresIOManager(),
    }
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    runs: list[StreamRun] = []
    with dg.DagsterInstance.ephemeral() as instance:
        for asset in assets:
            name = asset.key.to_user_string()
            tags: dict[str, str] = {}
            if asset.partitions_def is not None:
                keys = asset.partitions_def.get_partition_keys()
                tags = {
                    "dagster/asset_partition_range_start": keys[0],
                    "dagster/asset_partition_range_end": keys[-1],
                }
            started = time.monotonic()
            result = dg.materialize(
                [asset],
                instance=instance,
                resources=resources,
                tags=tags,
                run_config=quiet,
                raise_on_error=False,
            )
            seconds = time.monotonic() - started
            error = ""
            if not result.success:
                failures = [e for e in result.all_events if e.is_step_failure]
                error = failures[0].step_failure_data.error.message.strip() if failures else "run failed"
            run = StreamRun(
                name,
                result.success,
                int(_metadata_value(result, name, "dagster/row_count")),
                seconds,
                int(_metadata_value(result, name, "api_calls")),
                error,
            )
            status = "ok" if run.ok else f"FAILED: {run.error}"
            print(
                f"  {name:<10} {run.rows:>8,} rows  {run.seconds:6.1f} s  "
                f"{run.api_calls:>5} API calls  {status}",
                flush=True,
            )
            runs.append(run)
    return runs


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def _expected(truth: dict[str, Any], since: datetime) -> tuple[set[str], set[str], int]:
    """Ids the sync must hold for a truth: live records modified since the anchor, deletions since then."""
    live = {
        r["id"] for r in truth["data"] if r.get("Modified_Time") and _parse_time(r["Modified_Time"]) >= since
    }
    deleted = {d["id"] for d in truth["deleted"] if _parse_time(d["deleted_time"]) >= since}
    older = len(truth["data"]) - len(live)
    return live, deleted, older


def _compare(simulator: Any, specs: Sequence[Any], tables: dict[str, str], anchor: date, url: str) -> bool:
    """Print the table of rows per stream beside the simulator's truth; True when every stream matches."""
    from zoho_dagster.postgres.engine import make_engine
    from zoho_dagster.postgres.inspect import table_state
    from zoho_dagster.postgres.writer import TableName

    since = datetime.combine(anchor, dtime(0), tzinfo=timezone.utc)
    engine = make_engine(url)
    print()
    print(f"{'stream':<10} {'table live':>10} {'deleted':>8} | {'truth live':>10} {'deleted':>8} | result")
    print("-" * 64)
    all_match = True
    skipped = 0
    for spec in specs:
        state = table_state(engine, TableName.parse(tables[spec.name]))
        truth = simulator.control.truth(spec.module or spec.name)
        if spec.module is None:  # users and modules: a full refresh holds exactly the org's current rows
            live, deleted, older = {str(row["id"]) for row in truth["data"]}, set(), 0
        else:
            live, deleted, older = _expected(truth, since)
        skipped += older
        match = state.live == live and state.deleted == deleted
        all_match = all_match and match
        print(
            f"{spec.name:<10} {len(state.live):>10,} {len(state.deleted):>8,} | {len(live):>10,} "
            f"{len(deleted):>8,} | {'match' if match else 'MISMATCH'}"
        )
    print("-" * 64)
    if skipped:
        print(
            f"({skipped:,} simulator records were last modified before the anchor {anchor}, outside the "
            "synced "
            "range; set ZOHO_CRM_ANCHOR_DATE earlier to include them.)"
        )
    print("All streams match the simulator's truth: match." if all_match else "Some streams do NOT match.")
    return all_match


def cmd_demo(args: argparse.Namespace) -> int:
    from zoho_dagster.partitions import anchor_date
    from zoho_dagster.postgres.engine import make_engine
    from zoho_dagster.postgres.inspect import drop_tables
    from zoho_dagster.postgres.writer import TableName
    from zoho_dagster.streams import CATALOG

    shared = bool(os.environ.get("ZOHO_DAGSTER_DATABASE_URL"))
    schema = args.schema or (DEMO_SCHEMA_ON_SHARED_DATABASE if shared else "zoho_crm")
    url = _database_url()
    specs = [s for s in CATALOG if not args.streams or s.name in args.streams]
    tables = {spec.name: f"{schema}.{spec.name}" for spec in specs}
    drop_tables(make_engine(url), [TableName.parse(t) for t in tables.values()])
    where = "ZOHO_DAGSTER_DATABASE_URL" if shared else "the embedded Postgres"
    print(f"zoho-dagster demo: simulator with {args.records:,} leads → {where}, schema {schema}")
    with _simulator(args.records, args.seed, args.latency_ms) as simulator:
        _point_at_simulator(simulator.primary)
        anchor = anchor_date()
        print(
            f"syncing {len(specs)} streams, Modified_Time from {anchor} to today (UTC), one run per stream:"
        )
        started = time.monotonic()
        runs = _sync_all(specs, tables, args.requests_per_second)
        elapsed = time.monotonic() - started
        total_rows = sum(r.rows for r in runs)
        calls = sum(r.api_calls for r in runs)
        print(
            f"synced {total_rows:,} rows in {elapsed:.1f} s ({total_rows / max(elapsed, 1e-9):,.0f} rows/s, "
            f"{calls} API calls)"
        )
        matched = _compare(simulator, specs, tables, anchor, url) and all(r.ok for r in runs)
    return 0 if matched else 1


# ----------------------------------------------------------------------------------------------------- dev


def _has_credentials() -> bool:
    from zoho_dagster.settings import load_settings

    return load_settings().has_credentials


def _dagster_home(project: Path) -> Path:
    """``.zoho_dagster/dagster_home`` with the project's dagster.yaml (Dagster's storage in Postgres)."""
    home = (STATE_DIR / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    source = project / "dagster.yaml"
    if source.exists():
        shutil.copyfile(source, home / "dagster.yaml")
    else:
        (home / "dagster.yaml").write_text(
            "storage:\n  custom:\n    module: zoho_dagster.postgres.dagster_storage\n"
            "    class: ZohoDagsterStorage\n    config: {}\n"
            "concurrency:\n  pools:\n    default_limit: 3\n"
        )
    return home


def _workspace(project: Path, home: Path) -> Path:
    workspace = project / "workspace.yaml"
    if workspace.exists():
        return workspace
    generated = home / "workspace.yaml"
    generated.write_text("load_from:\n  - python_module:\n      module_name: zoho_dagster.definitions\n")
    return generated


def cmd_dev(args: argparse.Namespace) -> int:
    from zoho_dagster.postgres.dagster_storage import STORAGE_URL_VARIABLE, dagster_storage_url

    project = Path.cwd()
    url = _database_url()
    os.environ[STORAGE_URL_VARIABLE] = dagster_storage_url(os.environ.get(STORAGE_URL_VARIABLE) or url)
    home = _dagster_home(project)
    os.environ["DAGSTER_HOME"] = str(home)
    command = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-w",
        str(_workspace(project, home)),
        *args.dagster_args,
    ]
    with contextlib.ExitStack() as stack:
        if _has_credentials() and not args.simulator:
            print("zoho-dagster dev: real Zoho CRM (ZOHO_CRM_* set)")
        else:
            simulator = stack.enter_context(_simulator(args.records, args.seed, 0))
            _point_at_simulator(simulator.primary)
            print(f"zoho-dagster dev: simulator at {simulator.base_url} (no ZOHO_CRM_* credentials set)")
        print(f"DAGSTER_HOME={home}; synced tables in {'ZOHO_DAGSTER_DATABASE_URL' if url else 'embedded'}")
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


# ----------------------------------------------------------------------------------------- discover, check


def _client() -> Any:
    from zoho_dagster.resource import ZohoCRMResource

    return ZohoCRMResource.from_env().process_config_and_initialize().get_client()


def cmd_discover(args: argparse.Namespace) -> int:
    from zoho_dagster.client.errors import ZohoError
    from zoho_dagster.discovery import modules_from_zoho, write_discovery

    try:
        client = _client()
        modules = client.list_modules()
        usable = [m for m in modules if m.get("api_supported")]
        print(f"{len(usable)} modules served by the API (of {len(modules)}):")
        for module in usable:
            name = module.get("api_name")
            if args.module and name not in args.module:
                continue
            kind = module.get("generated_type", "default")
            print(f"\n{name}  ({module.get('plural_label') or module.get('module_name')}, {kind})")
            if args.no_fields:
                continue
            for field in client.list_fields(str(name)):
                print(f"    {field.get('api_name'):<50} {field.get('data_type', '?')}")
        if args.write:
            path = write_discovery(modules_from_zoho(modules))
            print(f"\nwrote {path}")
    except ZohoError as error:
        print(f"discover failed: {error}", file=sys.stderr)
        return 1
    return 0


def _fix_for(error: Exception) -> str:
    from zoho_dagster.client.errors import ZohoAuthError, ZohoConfigError, ZohoPermissionError

    if isinstance(error, ZohoConfigError):
        return "fix the variable named above"
    if isinstance(error, ZohoPermissionError):
        missing = getattr(error, "missing", None)
        return (
            f"regenerate the Self Client grant with the scope {missing}"
            if missing
            else (
                "regenerate the Self Client grant with ZohoCRM.modules.ALL, ZohoCRM.settings.ALL, "
                "ZohoCRM.users.READ"
            )
        )
    if isinstance(error, ZohoAuthError):
        return (
            "check ZOHO_CRM_CLIENT_ID / ZOHO_CRM_CLIENT_SECRET and ZOHO_CRM_REGION: a client is known "
            "only in "
            "the data centre of its org (US, EU, IN, AU, JP, CN, CA, SA)"
        )
    return "check the network path to Zoho and ZOHO_CRM_API_DOMAIN"


def cmd_check(args: argparse.Namespace) -> int:
    from zoho_dagster.client.errors import ZohoError
    from zoho_dagster.settings import load_settings
    from zoho_dagster.streams import CATALOG

    failures = 0

    def step(label: str, action: Any) -> Any:
        nonlocal failures
        try:
            value = action()
        except (ZohoError, ValueError) as error:
            failures += 1
            print(f"FAIL  {label}: {error}\n      fix: {_fix_for(error)}")
            return None
        print(f"ok    {label}")
        return value

    settings = step("configuration", load_settings)
    if settings is None:
        return 1
    if not settings.has_credentials:
        print(
            "FAIL  credentials: none set\n      fix: set ZOHO_CRM_CLIENT_ID, ZOHO_CRM_CLIENT_SECRET and "
            "ZOHO_CRM_SOID (or ZOHO_CRM_REFRESH_TOKEN), or ZOHO_CRM"
        )
        return 1
    print(f"      region {settings.region}, accounts server {settings.accounts_url}")

    def connect() -> Any:
        client = _client()
        client.list_modules()
        return client

    zoho = step("credentials and region (token + modules metadata)", connect)
    if zoho is None:
        return 1
    now = datetime.now(timezone.utc)
    for spec in CATALOG:
        if spec.module:
            module = spec.module
            step(f"scope for {spec.name} ({module})", lambda module=module: zoho.changed_since(module, now))
        elif spec.name == "users":
            step("scope for users", lambda: next(iter(zoho.iter_users()), None))
    print("all checks passed" if not failures else f"{failures} check(s) failed")
    return 0 if not failures else 1


# ---------------------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoho-dagster", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="sync the bundled simulator into Postgres and compare with its truth"
    )
    demo.add_argument("--records", type=int, default=2500, help="leads in the simulator (default 2500)")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--latency-ms", type=int, default=0, help="simulated API latency per request")
    demo.add_argument("--requests-per-second", type=float, default=5.0, help="client rate limit (default 5)")
    demo.add_argument("--schema", help="target schema (default zoho_crm; zoho_crm_demo on a shared database)")
    demo.add_argument("--streams", nargs="*", help="only these streams (default: all)")
    demo.set_defaults(func=cmd_demo)

    dev = commands.add_parser(
        "dev",
        help="dagster dev on this project (simulator unless ZOHO_CRM_* is set); other options: dagster dev",
    )
    dev.add_argument("--simulator", action="store_true", help="use the simulator even if credentials are set")
    dev.add_argument("--records", type=int, default=2500)
    dev.add_argument("--seed", type=int, default=1)
    dev.set_defaults(func=cmd_dev)

    discover = commands.add_parser("discover", help="print the org's modules and fields")
    discover.add_argument("--module", nargs="*", help="only these module API names")
    discover.add_argument("--no-fields", action="store_true", help="modules only")
    discover.add_argument("--write", action="store_true", help="write the discovery file for custom modules")
    discover.set_defaults(func=cmd_discover)

    check = commands.add_parser("check", help="check credentials, region and scopes")
    check.set_defaults(func=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "dev":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.dagster_args = extra  # `zoho-dagster dev -p 3001`: the rest goes to `dagster dev`
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
