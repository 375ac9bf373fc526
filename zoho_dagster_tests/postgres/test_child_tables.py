"""Child tables on the Postgres side: subform rows and lookup links written with their parents.

The parents and their child rows are Zoho-shaped dicts held by the test (a small in-memory "org"); the writer
asks for the children of the parents it staged, as it asks the real client. The expected rows come from that
org, never from the code under test. The ``test_sync_*`` tests at the end run the quotes and deals assets
against the simulator, whose truth and schema give the expected rows.
"""

from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from zoho_dagster.cli.comparison import compare_children
from zoho_dagster.client import DEFAULT_SCOPES, ChildField
from zoho_dagster.postgres import children as ch
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.postgres.tables import TableName
from zoho_dagster.postgres.writer import read_rows, write_stream
from zoho_dagster.record_stream import ChildRows, RecordStream
from zoho_dagster.simulator.schema import CHILD_OF_FIELD, MODULES_BY_NAME
from zoho_dagster.streams import STREAMS_BY_NAME
from zoho_dagster_tests.postgres.sync_helpers import (
    anchor_days_ago,
    assets_by_name,
    columns_by_field,
    expected_value,
    materialize,
    midnight,
    parse_time,
    table,
    today,
    use_simulator,
)

QUOTES = TableName("zoho_crm", "quotes")
ITEMS = TableName("zoho_crm", "quotes__quoted_items")
PARTNERS = TableName("zoho_crm", "quotes__partner_accounts")

PARENT_FIELDS = [
    {"api_name": "Subject", "data_type": "text", "json_type": "string"},
    {"api_name": "Modified_Time", "data_type": "datetime", "json_type": "string"},
]
ITEM_FIELDS = (
    {"api_name": "Product_Name", "data_type": "lookup", "json_type": "jsonobject"},
    {"api_name": "Quantity", "data_type": "double", "json_type": "double"},
    {"api_name": "Sequence_Number", "data_type": "integer", "json_type": "integer"},
)
QUOTED_ITEMS = ChildField("Quoted_Items", "subform", "Quoted_Items", "Parent_Id", ITEM_FIELDS)
PARTNER_ACCOUNTS = ChildField(
    "Partner_Accounts",
    "link",
    "Quotes_X_Accounts",
    "Quote",
    ({"api_name": "Partner_Account", "data_type": "lookup", "json_type": "jsonobject"},),
    "Partner_Account",
    "Accounts",
)


class Org:
    """Parents and their child rows, as Zoho would serve them; records which parent ids were asked for."""

    def __init__(self) -> None:
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.partners: dict[str, list[dict[str, Any]]] = {}
        self.asked: list[list[str]] = []
        self.fail_after: int | None = None

    def rows(
        self, child: ChildField, parent_ids: Sequence[str], hidden: Sequence[str] = ()
    ) -> Iterator[list[dict]]:
        self.asked.append(list(parent_ids))
        if self.fail_after is not None and len(self.asked) > self.fail_after:
            raise RuntimeError("Zoho went away while the child rows were read")
        source = self.items if child.field == "Quoted_Items" else self.partners
        for parent_id in parent_ids:
            page = [{**row, "_parent_id": parent_id} for row in source.get(parent_id, [])]
            if page:
                yield page

    def children(self) -> ChildRows:
        return ChildRows(fields=[QUOTED_ITEMS, PARTNER_ACCOUNTS], rows=self.rows)


def quote(record_id: str, modified: str) -> dict[str, Any]:
    return {"id": record_id, "Subject": f"Quote {record_id}", "Modified_Time": modified}


def item(row_id: str, parent: str, quantity: Any, product: str = "P1") -> dict[str, Any]:
    return {
        "id": row_id,
        "Product_Name": {"id": product, "name": f"Product {product}"},
        "Quantity": quantity,
        "Sequence_Number": 1,
        "Parent_Id": {"id": parent},
    }


def partner(row_id: str, parent: str, account: str) -> dict[str, Any]:
    return {
        "id": row_id,
        "Partner_Account": {"id": account, "name": f"Account {account}"},
        "Quote": {"id": parent},
    }


def stream(org: Org, records: list[dict], deletions: list[dict] | None = None) -> RecordStream:
    deleted = (lambda: iter([deletions])) if deletions is not None else None
    return RecordStream(
        "quotes",
        "Quotes",
        "incremental",
        PARENT_FIELDS,
        [records],
        deletions=deleted,
        children=org.children(),
    )


def rows(url: str, table: TableName) -> dict[str, dict]:
    return {row["id"]: row for row in read_rows(make_engine(url), table, cursor_field=None)}


def test_child_rows_land_typed_next_to_their_parent(database_url: str) -> None:
    org = Org()
    org.items = {"1": [item("11", "1", 2.5), item("12", "1", 1, "P2")], "2": [item("21", "2", 4)]}
    org.partners = {"1": [partner("91", "1", "A1")]}
    result = write_stream(
        make_engine(database_url),
        stream(org, [quote("1", "2026-03-01T00:00:00Z"), quote("2", "2026-03-01T00:00:00Z")]),
        QUOTES,
    )
    items = rows(database_url, ITEMS)
    assert set(items) == {"11", "12", "21"}
    assert items["11"]["_parent_id"] == "1" and items["21"]["_parent_id"] == "2"
    assert items["11"]["quantity"] == Decimal("2.5")
    assert (items["12"]["product_name_id"], items["12"]["product_name_name"]) == ("P2", "Product P2")
    assert items["11"]["_raw"] == item("11", "1", 2.5)
    assert items["11"]["_zoho_deleted_at"] is None and items["11"]["_zoho_synced_at"] is not None
    links = rows(database_url, PARTNERS)
    assert (links["91"]["linked_id"], links["91"]["linked_name"], links["91"]["_parent_id"]) == (
        "A1",
        "Account A1",
        "1",
    )
    assert result.child_rows == {str(ITEMS): 3, str(PARTNERS): 1}
    assert result.child_received == {str(ITEMS): 3, str(PARTNERS): 1}
    indexes = sa.inspect(make_engine(database_url)).get_indexes(ITEMS.name, ITEMS.schema)
    assert any(index["column_names"] == ["_parent_id"] for index in indexes)


def test_a_parents_rows_are_replaced_as_a_set(database_url: str) -> None:
    engine = make_engine(database_url)
    org = Org()
    org.items = {"1": [item("11", "1", 1), item("12", "1", 2)], "2": [item("21", "2", 3)]}
    write_stream(
        engine, stream(org, [quote("1", "2026-03-01T00:00:00Z"), quote("2", "2026-03-01T00:00:00Z")]), QUOTES
    )
    org.items["1"] = [item("13", "1", 5)]  # line items 11 and 12 removed in Zoho, 13 added
    org.items["2"] = []  # parent 2 not modified: not staged, so its rows stay
    write_stream(engine, stream(org, [quote("1", "2026-03-02T00:00:00Z")]), QUOTES)
    items = rows(database_url, ITEMS)
    assert set(items) == {"13", "21"}
    assert items["13"]["quantity"] == Decimal("5")


def test_a_deleted_parent_soft_deletes_its_rows_and_a_restored_one_clears_them(database_url: str) -> None:
    engine = make_engine(database_url)
    org = Org()
    org.items = {"1": [item("11", "1", 1)], "2": [item("21", "2", 3)]}
    org.partners = {"1": [partner("91", "1", "A1")]}
    write_stream(
        engine, stream(org, [quote("1", "2026-03-01T00:00:00Z"), quote("2", "2026-03-01T00:00:00Z")]), QUOTES
    )
    org.asked.clear()
    result = write_stream(
        engine, stream(org, [], deletions=[{"id": "1", "deleted_time": "2026-03-03T00:00:00Z"}]), QUOTES
    )
    assert org.asked == []  # no parent staged: nothing fetched, yet the marks follow the parent
    assert result.child_rows == {str(ITEMS): 1, str(PARTNERS): 0}  # live rows: parent 2's item
    items, links = rows(database_url, ITEMS), rows(database_url, PARTNERS)
    assert items["11"]["_zoho_deleted_at"] is not None and links["91"]["_zoho_deleted_at"] is not None
    assert items["21"]["_zoho_deleted_at"] is None
    # Restored in Zoho: a newer version comes back, and so do its rows.
    write_stream(engine, stream(org, [quote("1", "2026-03-04T00:00:00Z")]), QUOTES)
    items, links = rows(database_url, ITEMS), rows(database_url, PARTNERS)
    assert items["11"]["_zoho_deleted_at"] is None and links["91"]["_zoho_deleted_at"] is None


def test_a_failure_while_children_are_read_leaves_every_table_as_it_was(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(database_url)
    org = Org()
    org.items = {"1": [item("11", "1", 1)], "2": [item("21", "2", 3)]}
    write_stream(
        engine, stream(org, [quote("1", "2026-03-01T00:00:00Z"), quote("2", "2026-03-01T00:00:00Z")]), QUOTES
    )
    before = (rows(database_url, QUOTES), rows(database_url, ITEMS), rows(database_url, PARTNERS))
    monkeypatch.setattr(ch, "PARENT_BATCH", 1)
    org.items = {"1": [item("12", "1", 9)], "2": []}
    org.fail_after = 2  # the first batch's two child tables are staged, the second batch fails
    with pytest.raises(RuntimeError, match="went away"):
        write_stream(
            engine,
            stream(org, [quote("1", "2026-03-05T00:00:00Z"), quote("2", "2026-03-05T00:00:00Z")]),
            QUOTES,
        )
    after = (rows(database_url, QUOTES), rows(database_url, ITEMS), rows(database_url, PARTNERS))
    assert after == before


def test_parents_are_asked_for_in_bounded_batches_each_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ch, "PARENT_BATCH", 3)
    org = Org()
    records = [quote(str(n), "2026-03-01T00:00:00Z") for n in range(10)]
    records.append(quote("4", "2026-03-02T00:00:00Z"))  # two versions of one parent in the window
    org.items = {str(n): [item(f"{n}-1", str(n), n)] for n in range(10)}
    write_stream(make_engine(database_url), stream(org, records), QUOTES)
    for_items = org.asked[0::2]  # each batch asks both child fields, items first
    assert all(len(batch) <= 3 for batch in org.asked)
    assert sorted(n for batch in for_items for n in batch) == sorted(str(n) for n in range(10))
    assert len(rows(database_url, ITEMS)) == 10


def test_a_bad_child_value_is_null_kept_in_raw_and_counted(database_url: str) -> None:
    org = Org()
    org.items = {"1": [item("11", "1", "many"), item("12", "1", 3)]}
    result = write_stream(
        make_engine(database_url), stream(org, [quote("1", "2026-03-01T00:00:00Z")]), QUOTES
    )
    items = rows(database_url, ITEMS)
    assert items["11"]["quantity"] is None and items["11"]["_raw"]["Quantity"] == "many"
    assert items["12"]["quantity"] == Decimal("3")
    assert result.values.rejected == {"Quoted_Items.Quantity": 1}


def test_a_child_row_without_id_is_refused_and_nothing_is_written(database_url: str) -> None:
    org = Org()
    org.items = {"1": [{"Quantity": 1}]}
    with pytest.raises(ch.ChildInputError, match=r"Quoted_Items row .* has no id"):
        write_stream(make_engine(database_url), stream(org, [quote("1", "2026-03-01T00:00:00Z")]), QUOTES)
    assert rows(database_url, QUOTES) == {}


def test_full_refresh_streams_have_no_children(database_url: str) -> None:
    org = Org()
    org.items = {"1": [item("11", "1", 1)]}
    full = RecordStream(
        "quotes",
        "Quotes",
        "full-refresh",
        PARENT_FIELDS,
        [[quote("1", "2026-03-01T00:00:00Z")]],
        children=org.children(),
    )
    result = write_stream(make_engine(database_url), full, QUOTES)
    assert org.asked == [] and result.child_rows == {}
    assert not sa.inspect(make_engine(database_url)).has_table(ITEMS.name, schema=ITEMS.schema)


# ------------------------------------------------------------------------------------------------------------
# --- End to end: the quotes and deals assets against the simulator, into Postgres.

STAGE_HISTORY_TYPES = {
    "Stage": "picklist",
    "Amount": "currency",
    "Probability": "integer",
    "Expected_Revenue": "currency",
    "Closing_Date": "date",
    "Modified_Time": "datetime",
    "Modified_By": "userlookup",
    "Duration_Days": "integer",
}
"""The Stage_History row's fields and types, as docs/zoho-crm-api.md §3.9 describes them."""


@pytest.fixture
def zoho(monkeypatch: pytest.MonkeyPatch, simulator: Any, database_url: str) -> Any:
    use_simulator(monkeypatch, simulator, database_url)
    return simulator


def display_names(simulator: Any, module: str) -> dict[str, Any]:
    if module == "users":
        return {str(u["id"]): u.get("full_name") for u in simulator.control.truth("users")["data"]}
    name_field = MODULES_BY_NAME[module].name_field
    return {str(r["id"]): r.get(name_field) for r in simulator.control.truth(module)["data"]}


def child_types(parent: str, field: str) -> tuple[dict[str, tuple[str, str]], str]:
    """(api_name → (data_type, lookup target)) of a child table's rows, and the row's parent field, from the
    simulator's schema."""
    if field == "Stage_History":
        return {
            name: (kind, "users" if kind == "userlookup" else "")
            for name, kind in STAGE_HISTORY_TYPES.items()
        }, ""
    spec = CHILD_OF_FIELD[(parent, field)]
    types = {
        f.api_name: (
            f.data_type,
            "users" if f.data_type in ("userlookup", "ownerlookup") else (f.lookup or ""),
        )
        for f in spec.fields
        if f.api_name != spec.link_field
    }
    return types, spec.link_field


def assert_child_table_equals_truth(
    simulator: Any, database_url: str, parent: str, field: str, truth_rows: list[dict], parents: set[str]
) -> int:
    """Every truth row of a synced parent is a live row under that parent with its typed values, and nothing
    else is live; returns the number of rows."""
    table_name = f"{parent.lower()}__{field.lower()}"
    stored = table(database_url, table_name)
    columns = columns_by_field(database_url, table_name)
    want = {str(r["id"]): r for r in truth_rows if str(r["_parent_id"]) in parents}
    assert {i for i, row in stored.items() if row["_zoho_deleted_at"] is None} == set(want), table_name
    types, _ = child_types(parent, field)
    names = {target: display_names(simulator, target) for target in {t for _, t in types.values() if t}}
    linking = (
        CHILD_OF_FIELD.get((parent, field)) is not None
        and CHILD_OF_FIELD[(parent, field)].generated_type == "linking"
    )
    problems = []
    for row_id, truth_row in want.items():
        row = stored[row_id]
        if row["_parent_id"] != str(truth_row["_parent_id"]):
            problems.append((row_id, "_parent_id", row["_parent_id"], truth_row["_parent_id"]))
        for api_name, (data_type, target) in types.items():
            value = truth_row.get(api_name)
            if target:
                want_id = value.get("id") if value else None
                want_name = (
                    (value.get("name") if value and "name" in value else names[target].get(str(want_id)))
                    if value
                    else None
                )
                prefix = "linked" if linking else None
                id_column = "linked_id" if prefix else columns[(api_name, "id")]
                name_column = "linked_name" if prefix else columns[(api_name, "name")]
                if (row[id_column], row[name_column]) != (want_id, want_name):
                    problems.append(
                        (row_id, api_name, (row[id_column], row[name_column]), (want_id, want_name))
                    )
            else:
                got = row[columns[(api_name, "")]]
                if got != expected_value(value, data_type, api_name):
                    problems.append((row_id, api_name, got, value))
    assert not problems, (table_name, problems[:5])
    return len(want)


def synced_parents(truth: dict, since: datetime) -> set[str]:
    return {str(r["id"]) for r in truth["data"] if parse_time(r["Modified_Time"]) >= since}


def test_sync_fills_every_child_table_as_the_truth_says(zoho: Any, database_url: str) -> None:
    anchor = anchor_days_ago(20)
    assets = assets_by_name(anchor)
    result = materialize([assets["quotes"], assets["deals"]], anchor, today())
    since = midnight(anchor)
    sizes = {}
    for parent in ("Quotes", "Deals"):
        truth = zoho.control.truth(parent)
        parents = synced_parents(truth, since)
        sources = dict(truth["children"])
        if parent == "Deals":
            sources["Stage_History"] = truth["stage_history"]
        assert set(sources) == {f for (p, f) in CHILD_OF_FIELD if p == parent} | (
            {"Stage_History"} if parent == "Deals" else set()
        )
        for field, rows in sources.items():
            sizes[field] = assert_child_table_equals_truth(zoho, database_url, parent, field, rows, parents)
    assert all(sizes.values()), sizes
    metadata = {k: v.value for k, v in result.asset_materializations_for_node("deals")[-1].metadata.items()}
    assert metadata["child_tables"]["zoho_crm.deals__stage_history"]["rows"] == sizes["Stage_History"]
    assert metadata["child_tables"]["zoho_crm.deals__deal_team"]["rows"] == sizes["Deal_Team"]
    assert 0 < metadata["child_api_credits"] <= metadata["api_credits"]
    # The demo's comparison says match, and notices a missing row.
    specs = [STREAMS_BY_NAME["quotes"], STREAMS_BY_NAME["deals"]]
    tables = {"quotes": "zoho_crm.quotes", "deals": "zoho_crm.deals"}
    assert compare_children(zoho, specs, tables, anchor, database_url)
    with make_engine(database_url).begin() as conn:
        conn.execute(
            sa.text(
                "DELETE FROM zoho_crm.deals__deal_team "
                "WHERE id = (SELECT min(id) FROM zoho_crm.deals__deal_team)"
            )
        )
    assert not compare_children(zoho, specs, tables, anchor, database_url)


def test_sync_replaced_rows_disappear_and_a_deleted_parent_takes_its_rows_along(
    zoho: Any, database_url: str
) -> None:
    anchor = anchor_days_ago(30)
    quotes = assets_by_name(anchor)["quotes"]
    materialize([quotes], anchor, today())
    truth = zoho.control.truth("Quotes")
    parents = synced_parents(truth, midnight(anchor))
    by_parent: dict[str, list[dict]] = {}
    for row in truth["children"]["Quoted_Items"]:
        if row["_parent_id"] in parents:
            by_parent.setdefault(row["_parent_id"], []).append(row)
    changed, deleted = [p for p, rows in sorted(by_parent.items()) if len(rows) >= 2][:2]
    kept, removed = by_parent[changed][0]["id"], [r["id"] for r in by_parent[changed][1:]]
    new_row = {"Product_Name": {"id": by_parent[changed][0]["Product_Name"]["id"]}, "Quantity": 3.0}
    zoho.control.set_children("Quotes", changed, "Quoted_Items", [{"id": kept}, new_row])
    zoho.control.delete("Quotes", deleted)
    materialize([quotes], today())  # the open partition: where the edit moved the quote
    stored = table(database_url, "quotes__quoted_items")
    assert kept in stored and not set(removed) & set(stored)
    assert next(r for r in stored.values() if r["_parent_id"] == changed and r["id"] != kept)["quantity"] == 3
    truth = zoho.control.truth("Quotes")
    now_live = {r["id"]: r for r in truth["children"]["Quoted_Items"] if r["_parent_id"] == changed}
    assert {i for i, r in stored.items() if r["_parent_id"] == changed} == set(now_live)
    gone = [r for r in stored.values() if r["_parent_id"] == deleted]
    assert gone and all(r["_zoho_deleted_at"] is not None for r in gone)
    assert table(database_url, "quotes")[deleted]["_zoho_deleted_at"] is not None
    others = [r for r in stored.values() if r["_parent_id"] not in (deleted,)]
    assert all(r["_zoho_deleted_at"] is None for r in others)


def test_sync_refused_while_children_are_read_leaves_parent_and_children_as_they_were(
    zoho: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    anchor = anchor_days_ago(10)
    quotes = assets_by_name(anchor)["quotes"]
    materialize([quotes], anchor, today())
    before = (table(database_url, "quotes"), table(database_url, "quotes__quoted_items"))
    some = sorted(r["_parent_id"] for r in before[1].values())[0]
    zoho.control.set_children("Quotes", some, "Quoted_Items", [])
    # A token without ZohoCRM.coql.READ: the parents are read, then COQL is refused.
    scopes = DEFAULT_SCOPES.replace(",ZohoCRM.coql.READ", "")
    monkeypatch.setenv("ZOHO_CRM_SCOPES", scopes)
    result = materialize([quotes], today(), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "ZohoCRM.coql.READ" in failure.step_failure_data.error.message
    assert (table(database_url, "quotes"), table(database_url, "quotes__quoted_items")) == before


def test_stage_history_is_read_again_only_for_deals_whose_stage_changed(zoho: Any, database_url: str) -> None:
    """One related-list call per deal is the price (docs/zoho-crm-api.md §3.9), so a re-sync reads the history
    of a deal only when its Stage changed; the table still equals the truth for every synced deal."""
    anchor = anchor_days_ago(20)
    deals = assets_by_name(anchor)["deals"]
    materialize([deals], anchor, today())
    truth = zoho.control.truth("Deals")
    synced = sorted(synced_parents(truth, midnight(anchor)))
    by_id = {str(r["id"]): r for r in truth["data"]}
    quiet, moved = synced[0], synced[1]
    new_stage = next(stage for stage in ("Closed Won", "Closed Lost") if stage != by_id[moved]["Stage"])
    zoho.control.update("Deals", quiet, {"Amount": 4321.0})  # modified, same Stage
    zoho.control.update("Deals", moved, {"Stage": new_stage})  # a new history row in Zoho

    def history_calls() -> int:
        by_endpoint = zoho.control.stats()["by_endpoint"]
        return sum(n for key, n in by_endpoint.items() if key.endswith("/Stage_History"))

    zoho.control.reset_stats()
    materialize([deals], anchor, today())  # every synced deal again, two of them modified
    assert history_calls() == 1  # the moved deal's; none for the other deals, the quiet one included
    truth = zoho.control.truth("Deals")
    parents = synced_parents(truth, midnight(anchor))
    history = [row for row in truth["stage_history"] if row["_parent_id"] in parents]
    assert any(row["_parent_id"] == moved and row["Stage"] == new_stage for row in history)
    assert assert_child_table_equals_truth(zoho, database_url, "Deals", "Stage_History", history, parents)
