"""Child rows through the client: COQL on subform and linking modules, stage history per deal.

Expected rows come from the simulator's truth (``truth(module)["children"]``, ``["stage_history"]``) and its
own schema, never from the reader under test; costs come from Zoho's COQL pricing (docs/zoho-crm-api.md
§3.8), counted both by the client and by the simulator.
"""

import math
import re
from collections.abc import Mapping
from typing import Any

import pytest

from zoho_dagster.client import ChildReader, ZohoClient
from zoho_dagster.client.children import PARENT_KEY, bounded_map, checked_ids
from zoho_dagster.simulator.schema import CHILD_MODULES, CHILD_MODULES_BY_NAME, MODULES_BY_NAME
from zoho_dagster_tests.client.conftest import ClientFactory
from zoho_dagster_tests.client.helpers import is_awaiting_approval, is_hidden_by_default

COQL_ENDPOINT = "POST /crm/v6/coql"


def reader(client: ZohoClient, module: str) -> ChildReader:
    return ChildReader(client, module, client.list_fields(module))


def by_id(pages: Any) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for page in pages:
        for row in page:
            assert str(row["id"]) not in rows, f"row {row['id']} read twice"
            rows[str(row["id"])] = row
    return rows


def names_of(simulator: Any, module: str) -> dict[str, Any]:
    """Record id → its display name, from the simulator's truth and schema (``full_name`` for users)."""
    if module == "users":
        return {str(u["id"]): u.get("full_name") for u in simulator.control.truth("users")["data"]}
    name_field = MODULES_BY_NAME[module].name_field
    return {str(r["id"]): r.get(name_field) for r in simulator.control.truth(module)["data"]}


def lookup_names(simulator: Any, child_module: str) -> dict[str, dict[str, Any]]:
    """Lookup field → (target record id → name) for the lookups of a subform or linking module."""
    spec = CHILD_MODULES_BY_NAME[child_module]
    found = {}
    for field in spec.fields:
        if field.api_name == spec.link_field:
            continue
        if field.data_type == "lookup":
            found[field.api_name] = names_of(simulator, field.lookup)
        elif field.data_type in ("userlookup", "ownerlookup"):
            found[field.api_name] = names_of(simulator, "users")
    return found


def assert_rows_equal_truth(
    read: dict[str, dict[str, Any]],
    truth_rows: list[dict[str, Any]],
    parent: str,
    names: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Every truth row is read, under its parent, with its values; a lookup (``{"id"}`` in COQL's truth)
    is read as the same record with its display name."""
    want = {str(row["id"]): row for row in truth_rows}
    assert set(read) == set(want)
    names = names or {}
    problems = []
    for row_id, row in want.items():
        mine = read[row_id]
        if mine[PARENT_KEY] != str(row["_parent_id"]):
            problems.append((row_id, PARENT_KEY, mine[PARENT_KEY], row["_parent_id"]))
        for key, value in row.items():
            if key in ("_parent_id", parent):
                continue
            got = mine.get(key)
            if isinstance(value, Mapping) and "id" in value:
                same = isinstance(got, Mapping) and str(got.get("id")) == str(value["id"])
                name = value.get("name", names.get(key, {}).get(str(value["id"])))
                same = same and got.get("name") == name
            else:
                same = got == value
            if not same:
                problems.append((row_id, key, got, value))
    assert not problems, problems[:5]


def test_child_fields_follow_the_metadata(make_client: ClientFactory) -> None:
    with make_client() as client:
        for module in ("Quotes", "Deals", "Leads"):
            found = {child.field: child for child in reader(client, module).children}
            expected = {spec.parent_field: spec for spec in CHILD_MODULES if spec.parent == module}
            assert set(found) == set(expected) | ({"Stage_History"} if module == "Deals" else set())
            for name, spec in expected.items():
                child = found[name]
                assert child.module == spec.api_name
                assert child.parent_field == spec.link_field
                if spec.generated_type == "linking":
                    assert (child.kind, child.linked_field, child.linked_module) == (
                        "link",
                        spec.connected_field,
                        spec.connected_module,
                    )
                else:
                    assert child.kind == "subform"
                    columns = {f.api_name for f in spec.fields} - {spec.link_field}
                    assert {meta["api_name"] for meta in child.fields} == columns


@pytest.mark.parametrize("module", ["Quotes", "Deals"])
def test_rows_of_every_child_field_equal_the_truth(
    simulator: Any, make_client: ClientFactory, module: str
) -> None:
    truth = simulator.control.truth(module)
    parents = [str(record["id"]) for record in truth["data"]]
    # Parents awaiting approval (or converted): the strict simulator's COQL leaves their rows out, so the
    # writer names them and their rows come from single-record reads (docs/zoho-crm-api.md §10).
    hidden = [str(r["id"]) for r in truth["data"] if is_hidden_by_default(r)]
    assert hidden
    with make_client() as client:
        children = reader(client, module)
        for child in children.children:
            if child.kind == "related":
                continue  # stage history: its own test, one call per deal
            read = by_id(children.rows(child, parents, hidden))
            names = lookup_names(simulator, child.module)
            assert_rows_equal_truth(read, truth["children"][child.field], child.parent_field, names)
            assert read, f"the simulator seeds {child.field} rows"


def test_stage_history_is_one_call_per_deal_and_equals_the_truth(
    simulator: Any, make_client: ClientFactory
) -> None:
    truth = simulator.control.truth("Deals")
    deals = sorted(str(record["id"]) for record in truth["data"])[:40]
    want = [row for row in truth["stage_history"] if str(row["_parent_id"]) in set(deals)]
    with make_client() as client:
        children = reader(client, "Deals")
        history = next(child for child in children.children if child.field == "Stage_History")
        simulator.control.reset_stats()
        read = by_id(children.rows(history, deals))
    assert_rows_equal_truth(read, want, "")
    stats = simulator.control.stats()
    assert stats["total_requests"] == len(deals)  # seeded deals have 1 to 4 rows: one page each
    assert children.stats.calls == len(deals)


def test_a_thousand_parents_cost_a_fraction_of_a_credit_each(
    simulator: Any, make_client: ClientFactory
) -> None:
    """COQL reads up to 50 parents per query (the ``in`` limit), 200 rows for 1 credit (§3.8): a
    child field of 1,000 parents costs at least 20 calls and, with a few rows per parent, about as many
    credits; the one-GET-per-parent way would cost 1,000."""
    truth = simulator.control.truth("Deals")
    parents = sorted(str(record["id"]) for record in truth["data"])[:1000]
    assert len(parents) == 1000
    with make_client(max_concurrency=5) as client:
        children = reader(client, "Deals")
        children.display_fields()  # the one /settings/modules and /users reads are not per parent
        children.users()
        figures = {}
        for child in children.children:
            if child.kind == "related":
                continue
            simulator.control.reset_stats()
            before = children.stats.credits
            rows = sum(len(page) for page in children.rows(child, parents))
            stats = simulator.control.stats()
            credits = children.stats.credits - before
            assert stats["by_endpoint"] == {COQL_ENDPOINT: stats["total_requests"]}  # nothing per record
            assert credits == stats["total_credits"]  # the client's count is Zoho's
            assert math.ceil(len(parents) / 50) <= stats["total_requests"]
            assert credits <= len(parents) / 10
            figures[child.field] = (rows, credits)
    print(f"\ncredits per 1,000 parents by child field (rows, credits): {figures}")


def test_coql_is_retried_like_any_read(simulator: Any, make_client: ClientFactory) -> None:
    truth = simulator.control.truth("Quotes")
    shown = [r for r in truth["data"] if not is_awaiting_approval(r)]  # COQL's parents (ref. §10)
    parents = [str(record["id"]) for record in shown][:40]
    want = [row for row in truth["children"]["Quoted_Items"] if str(row["_parent_id"]) in set(parents)]
    with make_client() as client:
        children = reader(client, "Quotes")
        items = next(child for child in children.children if child.field == "Quoted_Items")
        children.display_fields()
        simulator.control.set_faults(schedule=[{"at_request": 1, "kind": "503"}])
        read = by_id(children.rows(items, parents))
        simulator.control.clear_faults()
    assert_rows_equal_truth(read, want, items.parent_field, lookup_names(simulator, items.module))
    assert children.stats.calls == 2  # the refused call, then its retry (one batch of 40 parents)


def test_an_id_that_is_not_a_zoho_id_is_refused_in_one_sentence() -> None:
    with pytest.raises(ValueError, match=re.escape('Record id "1\') or (1=1" is not a Zoho record id')):
        checked_ids(["123", "1') or (1=1"])


def test_bounded_map_yields_every_result_and_raises_the_first_error() -> None:
    assert sorted(bounded_map(lambda n: n * n, range(50), workers=4)) == [n * n for n in range(50)]

    def fail_on_seven(n: int) -> int:
        if n == 7:
            raise RuntimeError("seven")
        return n

    with pytest.raises(RuntimeError, match="seven"):
        list(bounded_map(fail_on_seven, range(20), workers=3))
