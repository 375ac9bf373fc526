"""The demo's comparison of what the sync wrote with the simulator's truth: tables, then child tables.

A parent table is right when it holds exactly the live ids modified since the anchor and the deletions
since then. A child table (line items, lookup links, stage history) is right only when each row hangs under
the right parent (and, for a link, points at the right record). The truth is
``simulator.control.truth(module)``: ``data`` and ``deleted``, ``children`` by parent field and, for Deals,
``stage_history``; only the children of parents the sync holds are expected, and a child row is live
exactly when its parent is.
"""

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from datetime import time as dtime
from typing import Any

from zoho_dagster.discovery import snake_case

STAGE_HISTORY_KEY = "stage_history"
STAGE_HISTORY_FIELD = "Stage_History"


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


def hidden_in_truth(truth: Mapping[str, Any], live: set[str]) -> tuple[int, int]:
    """(converted, awaiting approval) among the truth's records in ``live``: the records Zoho's list API
    leaves out unless asked (docs/zoho-crm-api.md §2.1)."""
    rows = [r for r in truth.get("data") or [] if str(r.get("id")) in live]
    converted = sum(1 for r in rows if r.get("$converted") is True)
    awaiting = sum(1 for r in rows if r.get("$approved") is False)
    return converted, awaiting


def compare(simulator: Any, specs: Sequence[Any], tables: dict[str, str], anchor: date, url: str) -> bool:
    """Print the table of rows per stream beside the simulator's truth; True when every stream matches.

    Converted records and records awaiting approval are counted apart ("conv", "appr"): they are what a
    sync that forgets Zoho's ``converted`` and ``approved`` defaults loses, and they must match too.
    """
    from zoho_dagster.postgres.engine import make_engine
    from zoho_dagster.postgres.queries import hidden_counts, table_state
    from zoho_dagster.postgres.tables import TableName

    since = datetime.combine(anchor, dtime(0), tzinfo=timezone.utc)
    engine = make_engine(url)
    print()
    print(
        f"{'stream':<16} {'table live':>10} {'conv':>6} {'appr':>5} {'deleted':>8} | "
        f"{'truth live':>10} {'conv':>6} {'appr':>5} {'deleted':>8} | result"
    )
    print("-" * 96)
    all_match = True
    skipped = 0
    hidden_total = [0, 0]
    for spec in specs:
        target = TableName.parse(tables[spec.name])
        state = table_state(engine, target)
        truth = simulator.control.truth(spec.module or spec.name)
        if spec.module is None:  # users and modules: a full refresh holds exactly the org's current rows
            live, deleted, older = {str(row["id"]) for row in truth["data"]}, set(), 0
            stored, wanted = (0, 0), (0, 0)
        else:
            live, deleted, older = _expected(truth, since)
            with engine.connect() as conn:
                counts = hidden_counts(conn, target)
            stored, wanted = (counts.converted, counts.awaiting_approval), hidden_in_truth(truth, live)
        hidden_total = [hidden_total[0] + wanted[0], hidden_total[1] + wanted[1]]
        skipped += older
        match = state.live == live and state.deleted == deleted and stored == wanted
        all_match = all_match and match
        print(
            f"{spec.name:<16} {len(state.live):>10,} {stored[0]:>6,} {stored[1]:>5,} "
            f"{len(state.deleted):>8,} | "
            f"{len(live):>10,} {wanted[0]:>6,} {wanted[1]:>5,} {len(deleted):>8,} | "
            f"{'match' if match else 'MISMATCH'}"
        )
    print("-" * 96)
    print(
        f"(conv: converted records, appr: records awaiting approval; Zoho's list API leaves both out unless "
        f"asked. The truth holds {hidden_total[0]:,} and {hidden_total[1]:,}.)"
    )
    if skipped:
        print(
            f"({skipped:,} simulator records were last modified before the anchor {anchor}, outside the "
            "synced "
            "range; set ZOHO_CRM_ANCHOR_DATE earlier to include them.)"
        )
    print("All streams match the simulator's truth: match." if all_match else "Some streams do NOT match.")
    return all_match


def _linked_id(row: Mapping[str, Any]) -> str | None:
    """The id of the record a truth link row points at: its one lookup that is not its parent."""
    parent = str(row["_parent_id"])
    ids = [
        str(value["id"])
        for key, value in row.items()
        if key != "_parent_id" and isinstance(value, Mapping) and value.get("id") is not None
    ]
    others = [value for value in ids if value != parent]
    return others[0] if len(others) == 1 else None


def expected_children(truth: Mapping[str, Any], since: datetime) -> dict[str, dict[str, Mapping[str, Any]]]:
    """By child field: ``{row id: truth row}`` of the rows whose parent the sync holds."""
    parents = {
        str(r["id"])
        for r in truth.get("data") or []
        if r.get("Modified_Time") and _parse_time(str(r["Modified_Time"])) >= since
    }
    sources: dict[str, list[Mapping[str, Any]]] = dict(truth.get("children") or {})
    if STAGE_HISTORY_KEY in truth:
        sources[STAGE_HISTORY_FIELD] = list(truth[STAGE_HISTORY_KEY] or [])
    return {
        field: {str(r["id"]): r for r in rows if str(r["_parent_id"]) in parents}
        for field, rows in sources.items()
    }


def child_targets(simulator: Any, specs: Sequence[Any], tables: Mapping[str, str]) -> list[Any]:
    """Every child table the demo's streams fill (for the demo to drop them with their parents first)."""
    from zoho_dagster.postgres.children import child_table_name
    from zoho_dagster.postgres.tables import TableName

    targets = []
    for spec in specs:
        if spec.module is None or not getattr(spec, "incremental", True):
            continue
        truth = simulator.control.truth(spec.module)
        fields = list(truth.get("children") or {}) + (
            [STAGE_HISTORY_FIELD] if STAGE_HISTORY_KEY in truth else []
        )
        parent = TableName.parse(tables[spec.name])
        targets += [child_table_name(parent, snake_case(field)) for field in fields]
    return targets


def compare_children(
    simulator: Any, specs: Sequence[Any], tables: Mapping[str, str], anchor: date, url: str
) -> bool:
    """Print each child table's rows beside the truth's; True when every row is there under its parent (and
    link), live as its parent is, and nothing else is."""
    from zoho_dagster.postgres.children import child_rows_state, child_table_name
    from zoho_dagster.postgres.engine import make_engine
    from zoho_dagster.postgres.tables import TableName

    since = datetime.combine(anchor, dtime(0), tzinfo=timezone.utc)
    engine = make_engine(url)
    print()
    print(f"{'child table':<34} {'table live':>10} {'deleted':>8} | {'truth live':>10} | result")
    print("-" * 75)
    all_match = True
    for spec in specs:
        if spec.module is None:
            continue
        truth = simulator.control.truth(spec.module)
        parent = TableName.parse(tables[spec.name])
        for field, want in expected_children(truth, since).items():
            target = child_table_name(parent, snake_case(field))
            stored = child_rows_state(engine, target)
            is_link = any(row.linked_id is not None for row in stored.values())
            live = {
                row_id: (row.parent_id, row.linked_id) for row_id, row in stored.items() if not row.deleted
            }
            expected = {
                row_id: (str(row["_parent_id"]), _linked_id(row) if is_link else None)
                for row_id, row in want.items()
            }
            deleted = len(stored) - len(live)
            # Rows of parents deleted in Zoho stay, marked deleted: only the live rows must equal the truth.
            match = live == expected
            all_match = all_match and match
            print(
                f"{target.name:<34} {len(live):>10,} {deleted:>8,} | {len(want):>10,} | "
                f"{'match' if match else 'MISMATCH'}"
            )
    print("-" * 75)
    print(
        "All child tables match the simulator's truth: match."
        if all_match
        else "Some child tables do NOT match."
    )
    return all_match


METADATA_TABLES = ("fields", "org", "roles", "profiles", "currencies")
"""What the ``modules`` stream refreshes beside itself (:mod:`zoho_dagster.postgres.metadata_tables`)."""


def compare_metadata(simulator: Any, schema: str, url: str) -> bool:
    """Print the metadata tables' rows beside the truth; True when roles, profiles and currencies hold exactly
    the simulator's ids, ``org`` its one row and ``fields`` one row per field of the synced modules (at least
    one)."""
    import sqlalchemy as sa

    from zoho_dagster.postgres.engine import make_engine

    engine = make_engine(url)
    print()
    print(f"{'metadata table':<34} {'table rows':>10} | {'truth rows':>10} | result")
    print("-" * 66)
    all_match = True
    with engine.connect() as conn:
        for name in METADATA_TABLES:
            exists = sa.inspect(conn).has_table(name, schema=schema)
            table = sa.table(name, sa.column("id"), schema=schema)
            if name in ("roles", "profiles", "currencies"):
                stored = {str(i) for i in conn.execute(sa.select(table.c.id)).scalars()} if exists else set()
                truth = {str(row["id"]) for row in simulator.control.truth(name)["data"]}
                rows, match, wanted = len(stored), exists and stored == truth, f"{len(truth):>10,}"
            else:  # org: one row; fields: the org's field metadata, at least one row
                count = sa.select(sa.func.count()).select_from(table)
                rows = int(conn.execute(count).scalar_one()) if exists else 0
                match = exists and (rows == 1 if name == "org" else rows > 0)
                wanted = f"{'1' if name == 'org' else '≥ 1':>10}"
            all_match = all_match and match
            verdict = "match" if match else "MISMATCH"
            print(f"{schema + '.' + name:<34} {rows:>10,} | {wanted} | {verdict}")
    print("-" * 66)
    print("The metadata tables match: match." if all_match else "Some metadata tables do NOT match.")
    return all_match
