"""The metadata tables (fields, org, roles, profiles, currencies) against what the simulator serves over HTTP.

Expected values come from the simulator's own HTTP answers (a token of our own, plain ``requests``) and from
the columns the record writer actually created, never from the code under test.
"""

from typing import Any

import pytest
import sqlalchemy as sa

from zoho_dagster.client.org_metadata import currencies
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster_tests.client.conftest import org_client
from zoho_dagster_tests.postgres.sync_helpers import (
    anchor_days_ago,
    assets_by_name,
    columns_by_field,
    materialize,
    table,
    today,
    use_simulator,
)
from zoho_dagster_tests.simulator.helpers import get, token

FIELD_MODULE_TYPES = {"default", "custom", "subform"}
"""Modules whose fields the table holds: the possible streams and the subform (line-item) modules."""
NOT_RECORD_MODULES = {"Activities"}
"""Listed as api_supported but not served by the records API (docs/zoho-crm-api.md §3.1)."""


@pytest.fixture
def zoho(monkeypatch: pytest.MonkeyPatch, simulator: Any, database_url: str) -> Any:
    use_simulator(monkeypatch, simulator, database_url)
    return simulator


class Served:
    """The simulator's answers, read over HTTP with a token of the test's own."""

    def __init__(self, simulator: Any) -> None:
        self.org = simulator.primary
        self.token = token(self.org)

    def json(self, path: str, root: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        response = get(self.org, f"/crm/v6{path}", self.token, params)
        if response.status_code == 204:
            return []
        assert response.status_code == 200, response.text
        return list(response.json()[root])

    def status(self, path: str) -> tuple[int, dict[str, Any]]:
        response = get(self.org, f"/crm/v6{path}", self.token)
        return response.status_code, response.json()


def _rows(database_url: str, name: str) -> list[dict[str, Any]]:
    with make_engine(database_url).connect() as conn:
        reflected = sa.Table(name, sa.MetaData(), schema="zoho_crm", autoload_with=conn)
        return [dict(row) for row in conn.execute(sa.select(reflected)).mappings()]


def _by(rows: list[dict[str, Any]], *key: str) -> dict[Any, dict[str, Any]]:
    return {tuple(row[k] for k in key) if len(key) > 1 else row[key[0]]: row for row in rows}


def _field_modules(modules: list[dict[str, Any]]) -> set[str]:
    return {
        m["api_name"]
        for m in modules
        if m.get("api_supported") and m.get("generated_type") in FIELD_MODULE_TYPES
    } - NOT_RECORD_MODULES


def _target_module(meta: dict[str, Any]) -> str | None:
    """The module a field points to, by the shapes of docs/zoho-crm-api.md §3.3 (lookup, multi-select and
    multi-user lookups, subforms)."""
    for target in (
        (meta.get("lookup") or {}).get("module"),
        ((meta.get("multiselectlookup") or {}).get("connected_details") or {}).get("module"),
        ((meta.get("multiuserlookup") or {}).get("connected_details") or {}).get("module"),
        meta.get("associated_module"),
    ):
        if target and target.get("api_name"):
            return str(target["api_name"])
    return None


def test_the_metadata_tables_hold_what_zoho_serves(zoho: Any, database_url: str) -> None:
    assets = assets_by_name(anchor_days_ago(5))
    materialize([assets["leads"]], anchor_days_ago(5), today())  # leads exists; contacts not yet
    zoho.control.reset_stats()
    result = materialize([assets["modules"]])
    materialized = result.asset_materializations_for_node("modules")[-1]
    metadata = {key: value.value for key, value in materialized.metadata.items()}
    served_calls = zoho.control.stats()["total_requests"]
    materialize([assets["contacts"]], anchor_days_ago(5), today())  # after: its columns were planned

    served = Served(zoho)
    modules = served.json("/settings/modules", "modules")
    fields = _by(_rows(database_url, "fields"), "module", "api_name")
    expected_modules = _field_modules(modules)
    assert {module for module, _ in fields} == expected_modules
    for module in sorted(expected_modules):
        served_fields = served.json("/settings/fields", "fields", {"module": module})
        assert {name for m, name in fields if m == module} == {f["api_name"] for f in served_fields}, module
        for meta in served_fields:
            row = fields[(module, meta["api_name"])]
            assert row["_raw"] == meta
            assert row["field_id"] == meta["id"]
            assert (row["data_type"], row["json_type"]) == (meta["data_type"], meta["json_type"])
            assert row["label"] == meta["field_label"]
            assert row["picklist_values"] == meta["pick_list_values"]
            assert row["is_custom"] is meta["custom_field"]
            assert row["lookup_module"] == _target_module(meta), (module, meta["api_name"])
            computed = meta.get("formula") or meta.get("rollup_summary") or {}
            assert row["formula_return_type"] == (computed.get("return_type") or None)

    # column_name is the column our table uses: from its comments for leads (synced before), and the one
    # the sync then created for contacts (synced after).
    for module, stream in (("Leads", "leads"), ("Contacts", "contacts")):
        columns = columns_by_field(database_url, stream)
        for (m, api_name), row in fields.items():
            if m != module or api_name == "id":
                continue
            want = columns.get((api_name, "")) or columns.get((api_name, "id"))
            assert row["column_name"] == want, (module, api_name)
            assert row["table_name"] == f"zoho_crm.{stream}"

    org = served.json("/org", "org")[0]
    (org_row,) = _rows(database_url, "org")
    assert org_row["_raw"] == org
    assert (org_row["id"], org_row["time_zone"], org_row["currency"], org_row["iso_code"]) == (
        org["id"],
        org["time_zone"],
        org["currency"],
        org["iso_code"],
    )
    assert org_row["edition"] == org["license_details"]["paid_type"]
    assert org_row["mc_status"] is org["mc_status"]

    roles = _by(_rows(database_url, "roles"), "id")
    served_roles = served.json("/settings/roles", "roles")
    assert {r["id"]: r for r in served_roles} == {i: row["_raw"] for i, row in roles.items()}
    for role in served_roles:
        row = roles[role["id"]]
        assert (row["name"], row["admin_user"]) == (role["name"], role["admin_user"])
        assert row["reporting_to_id"] == (role["reporting_to"] or {}).get("id")

    profiles = _by(_rows(database_url, "profiles"), "id")
    served_profiles = served.json("/settings/profiles", "profiles")
    assert {p["id"]: p for p in served_profiles} == {i: row["_raw"] for i, row in profiles.items()}
    for profile in served_profiles:
        row = profiles[profile["id"]]
        assert (row["name"], row["is_default"], row["is_custom"]) == (
            profile["name"],
            profile["default"],
            profile["custom"],
        )
        assert (row["created_time"] is None) == (profile["created_time"] is None)

    currencies = _by(_rows(database_url, "currencies"), "id")
    status, body = served.status("/org/currencies")
    served_currencies = body["currencies"] if status == 200 else []
    assert org["mc_status"] is (status == 200)
    assert {c["id"]: c for c in served_currencies} == {i: row["_raw"] for i, row in currencies.items()}
    for currency in served_currencies:
        row = currencies[currency["id"]]
        assert (row["iso_code"], row["is_base"]) == (currency["iso_code"], currency["is_base"])
        assert float(row["exchange_rate"]) == float(currency["exchange_rate"])

    # Calls: what the simulator served during the run, one per endpoint and module.
    assert (
        metadata["api_calls"]
        == served_calls
        == 1 + len(expected_modules) + 3 + (1 if org["mc_status"] else 0)
    )
    assert metadata["metadata_tables_rows"] == {
        "fields": len(fields),
        "org": 1,
        "roles": len(roles),
        "profiles": len(profiles),
        "currencies": len(currencies),
    }


def test_multi_currency_off_leaves_an_empty_currencies_table_and_views_survive(
    zoho: Any, database_url: str
) -> None:
    modules = assets_by_name(anchor_days_ago(5))["modules"]
    materialize([modules])
    assert table(database_url, "currencies")
    with make_engine(database_url).begin() as conn:
        conn.execute(sa.text("CREATE VIEW public.picklists AS SELECT module, api_name FROM zoho_crm.fields"))
    zoho.control.set_org(mc_status=False)
    materialize([modules])
    assert _rows(database_url, "currencies") == []
    assert _rows(database_url, "org")[0]["mc_status"] is False
    with make_engine(database_url).connect() as conn:  # a user's view on a metadata table still works
        assert conn.execute(sa.text("SELECT count(*) FROM public.picklists")).scalar_one() > 0


def test_a_failure_mid_refresh_leaves_every_table_as_it_was(zoho: Any, database_url: str) -> None:
    modules = assets_by_name(anchor_days_ago(5))["modules"]
    first = materialize([modules]).asset_materializations_for_node("modules")[-1]
    calls = int(first.metadata["api_calls"].value)
    names = ("modules", "fields", "org", "roles", "profiles", "currencies")
    before = {name: _rows(database_url, name) for name in names}
    zoho.control.set_org(mc_status=False)  # what a complete refresh would change: org and currencies
    # The calls from the next-to-last on fail: fields, org and roles were already rewritten in the
    # transaction when the profiles (or currencies) call gives up.
    zoho.control.set_faults(schedule=[{"at_request": n, "kind": "500"} for n in range(calls - 1, calls + 40)])
    zoho.control.reset_stats()
    result = materialize([modules], raise_on_error=False, max_retries=1, backoff_base_seconds=0.01)
    zoho.control.clear_faults()
    assert not result.success
    served = zoho.control.stats()["by_endpoint"]
    assert served["GET /crm/v6/settings/roles"] == 1 and served["GET /crm/v6/org"] == 1  # read and written
    assert served["GET /crm/v6/settings/profiles"] >= 1  # the call that gave up
    after = {name: _rows(database_url, name) for name in names}
    for name in names:
        assert sorted(map(repr, after[name])) == sorted(map(repr, before[name])), name


def test_currencies_are_none_when_zoho_says_the_feature_is_off(zoho: Any, database_url: str) -> None:
    """Asked without ``/org`` (or against an ``/org`` that still says on), FEATURE_NOT_ENABLED is no error."""
    zoho.control.set_org(mc_status=False)
    served = Served(zoho)
    status, body = served.status("/org/currencies")
    assert (status, body["code"]) == (400, "FEATURE_NOT_ENABLED")
    zoho.control.reset_stats()
    client = org_client(zoho.primary, database_url)
    assert currencies(client) == []
    assert currencies(client, {"mc_status": False}) == []
    calls = {k: n for k, n in zoho.control.stats()["by_endpoint"].items() if k.startswith("GET /crm")}
    assert calls == {"GET /crm/v6/org/currencies": 1}  # the second read asked nothing
