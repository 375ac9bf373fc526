"""Standard inventory/service modules, subforms, multi-select and multi-user lookups (docs/zoho-crm-api.md
§2.5, §3.1-§3.3, §7.8), over real sockets."""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any

from zoho_dagster.simulator import RunningSimulator

from .helpers import SESSION, error, get, token

STANDARD = ("Invoices", "Sales_Orders", "Purchase_Orders", "Price_Books", "Cases", "Solutions")
"""The standard modules beyond the twelve that docs/zoho-crm-api.md §3.1 names."""
SUBFORMS = {
    "Quoted_Items": "Quotes",
    "Ordered_Items": "Sales_Orders",
    "Invoiced_Items": "Invoices",
    "Purchased_Items": "Purchase_Orders",
    "Deal_Competitors": "Deals",
}
LINE_ITEM_FIELDS = {
    "Product_Name",
    "Quantity",
    "List_Price",
    "Discount",
    "Tax",
    "Total",
    "Net_Total",
    "Description",
    "Sequence_Number",
    "Parent_Id",
}


def _ids(org: dict[str, Any], tok: str, module: str, n: int = 200) -> list[str]:
    data = get(org, f"/crm/v6/{module}", tok, {"fields": "Modified_Time", "per_page": n}).json()["data"]
    return [r["id"] for r in data]


def test_standard_modules_are_served_by_every_endpoint(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    modules = {m["api_name"]: m for m in get(org, "/crm/v6/settings/modules", tok).json()["modules"]}
    for name in STANDARD:
        row = modules[name]
        assert row["generated_type"] == "default" and row["api_supported"] is True
        assert row["display_field"]["api_name"] and row["display_field"]["id"]
        fields = get(org, "/crm/v6/settings/fields", tok, {"module": name}).json()["fields"]
        assert row["display_field"]["api_name"] in {f["api_name"] for f in fields}
        listed = get(org, f"/crm/v6/{name}", tok, {"fields": "Owner,Created_Time"})
        assert listed.status_code == 200, name
        count = get(org, f"/crm/v6/{name}/actions/count", tok).json()["count"]
        assert 5 <= count <= 250, (name, count)  # small modules: at most a tenth of the 2,500 leads
        first = listed.json()["data"][0]["id"]
        one = get(org, f"/crm/v6/{name}/{first}", tok).json()["data"][0]
        assert one["id"] == first and "Modified_Time" in one
        assert get(org, f"/crm/v6/{name}/deleted", tok).status_code == 200
    grand = {
        f["api_name"]: f
        for f in get(org, "/crm/v6/settings/fields", tok, {"module": "Invoices"}).json()["fields"]
    }
    assert grand["Grand_Total"]["data_type"] == "currency"
    assert grand["Account_Name"]["lookup"]["module"]["api_name"] == "Accounts"


def test_subform_and_linking_modules_in_metadata(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    modules = {m["api_name"]: m for m in get(org, "/crm/v6/settings/modules", tok).json()["modules"]}
    for name in SUBFORMS:
        assert modules[name]["generated_type"] == "subform" and modules[name]["api_supported"] is True
    for name in ("Deals_X_Accounts", "Deals_X_Users"):
        assert modules[name]["generated_type"] == "linking"
    quotes = {
        f["api_name"]: f
        for f in get(org, "/crm/v6/settings/fields", tok, {"module": "Quotes"}).json()["fields"]
    }
    items = quotes["Quoted_Items"]
    assert (items["data_type"], items["json_type"]) == ("subform", "jsonarray")
    assert items["associated_module"] == {"api_name": "Quoted_Items", "id": modules["Quoted_Items"]["id"]}
    row_fields = get(org, "/crm/v6/settings/fields", tok, {"module": "Quoted_Items"}).json()["fields"]
    by = {f["api_name"]: f for f in row_fields}
    assert set(by) >= LINE_ITEM_FIELDS
    assert by["Parent_Id"]["lookup"]["module"]["api_name"] == "Quotes"
    assert by["Product_Name"]["lookup"]["module"]["api_name"] == "Products"
    assert by["Quantity"]["data_type"] == "double" and by["Sequence_Number"]["data_type"] == "integer"
    deals = {
        f["api_name"]: f
        for f in get(org, "/crm/v6/settings/fields", tok, {"module": "Deals"}).json()["fields"]
    }
    partners = deals["Partner_Accounts"]
    assert (partners["data_type"], partners["json_type"]) == ("multiselectlookup", "jsonarray")
    details = partners["multiselectlookup"]
    assert details["linking_details"]["module"]["api_name"] == "Deals_X_Accounts"
    assert details["linking_details"]["lookup_field"]["api_name"] == "Deal"
    assert details["linking_details"]["connected_lookup_field"]["api_name"] == "Partner_Account"
    assert details["connected_details"]["module"]["api_name"] == "Accounts"
    team = deals["Deal_Team"]
    assert team["data_type"] == "multiuserlookup"
    assert team["multiuserlookup"]["linking_details"]["module"]["api_name"] == "Deals_X_Users"
    assert team["multiuserlookup"]["linking_details"]["connected_lookup_field"]["api_name"] == "Team_Member"
    assert team["multiuserlookup"]["connected_details"]["module"]["api_name"] == "users"
    competitors = {
        f["api_name"]: f
        for f in get(org, "/crm/v6/settings/fields", tok, {"module": "Deal_Competitors"}).json()["fields"]
    }
    assert competitors["Strength"]["data_type"] == "picklist"
    assert competitors["Threat_Level"]["data_type"] == "integer" and "Parent_Id" in competitors


def test_list_refuses_subform_and_lookup_array_fields(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    for module, field in (("Quotes", "Quoted_Items"), ("Deals", "Partner_Accounts"), ("Deals", "Deal_Team")):
        resp = get(
            org, f"/crm/v6/{module}", tok, {"fields": f"Subject,{field}" if module == "Quotes" else field}
        )
        assert resp.status_code == 400
        body = error(resp)
        assert body["code"] == "INVALID_DATA" and body["details"] == {"api_name": field}
    rows = get(org, "/crm/v6/Deals", tok, {"fields": "Deal_Name,Stage"}).json()["data"]
    assert all("Deal_Team" not in r and "Partner_Accounts" not in r for r in rows)


def test_single_record_read_carries_arrays_and_has_more(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    seen_rows = seen_empty = False
    for quote_id in _ids(org, tok, "Quotes", 40):
        rec = get(org, f"/crm/v6/Quotes/{quote_id}", tok).json()["data"][0]
        assert rec["$has_more"] == {"Quoted_Items": False}
        items = rec["Quoted_Items"]
        assert isinstance(items, list)
        seen_empty |= not items
        for row in items:
            seen_rows = True
            assert set(row) >= LINE_ITEM_FIELDS and row["id"].isdigit()
            assert set(row["Product_Name"]) == {"name", "id"}
            assert row["Parent_Id"]["id"] == quote_id and row["Parent_Id"]["module"]["api_name"] == "Quotes"
            assert row["Total"] == row["Quantity"] * row["List_Price"]
        assert len(items) <= 5
    assert seen_rows and seen_empty  # some parents have none
    for deal_id in _ids(org, tok, "Deals", 30):
        rec = get(org, f"/crm/v6/Deals/{deal_id}", tok).json()["data"][0]
        assert set(rec["$has_more"]) == {"Partner_Accounts", "Deal_Team", "Deal_Competitors"}
        for link in rec["Partner_Accounts"]:
            assert set(link) == {"id", "Partner_Account"} and set(link["Partner_Account"]) == {"name", "id"}
        for link in rec["Deal_Team"]:
            assert set(link) == {"id", "Team_Member"} and link["Team_Member"]["id"].isdigit()
    only = get(org, f"/crm/v6/Quotes/{quote_id}", tok, {"fields": "Subject"}).json()["data"][0]
    assert set(only) == {"Subject", "id"}


def test_subform_module_endpoint_lists_every_row_with_its_parent(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    truth = sim.control.truth("Quotes")
    expected = {r["id"]: r["_parent_id"] for r in truth["children"]["Quoted_Items"]}
    assert len(expected) > 200  # more than one page
    sim.control.reset_stats()
    seen: dict[str, str] = {}
    params: dict[str, Any] = {"fields": "Product_Name,Quantity,Parent_Id"}
    calls = 0
    while True:
        body = get(org, "/crm/v6/Quoted_Items", tok, params).json()
        calls += 1
        assert body["info"]["count"] <= 200
        for row in body["data"]:
            seen[row["id"]] = row["Parent_Id"]["id"]
        if not body["info"]["more_records"]:
            break
        params = {**params, "page_token": body["info"]["next_page_token"]}
    assert seen == expected
    assert sim.control.stats()["total_credits"] == calls  # one credit per call
    bad = get(org, "/crm/v6/Quoted_Items", tok, {"fields": "Nope"})
    assert bad.status_code == 400 and error(bad)["code"] == "INVALID_DATA"
    assert get(org, "/crm/v6/Quoted_Items", tok).status_code == 400  # fields is mandatory
    assert get(org, f"/crm/v6/Quoted_Items/{next(iter(seen))}", tok).status_code == 400  # not a record module


def test_bulk_read_refuses_subform_fields_and_skips_them_by_default(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    url = f"{org['api_domain']}/crm/bulk/v6/read"
    headers = {"Authorization": f"Zoho-oauthtoken {tok}"}
    refused = SESSION.post(
        url,
        json={"query": {"module": {"api_name": "Quotes"}, "fields": ["Subject", "Quoted_Items"]}},
        headers=headers,
    )
    assert refused.status_code == 400 and error(refused)["code"] == "FIELD_NOT_AVAILABLE"
    job = SESSION.post(url, json={"query": {"module": {"api_name": "Quotes"}}}, headers=headers)
    assert job.status_code == 201
    job_id = job.json()["data"][0]["details"]["id"]
    time.sleep(1.2)
    assert get(org, f"/crm/bulk/v6/read/{job_id}", tok).json()["data"][0]["state"] == "COMPLETED"
    raw = get(org, f"/crm/bulk/v6/read/{job_id}/result", tok).content
    header = zipfile.ZipFile(io.BytesIO(raw)).read(f"{job_id}.csv").decode().splitlines()[0].split(",")
    assert "Subject" in header and "Quoted_Items" not in header


def test_control_replaces_rows_and_moves_the_parent(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    quote_id = _ids(org, tok, "Quotes", 1)[0]
    before = get(org, f"/crm/v6/Quotes/{quote_id}", tok).json()["data"][0]
    product = get(org, "/crm/v6/Products", tok, {"fields": "Product_Name", "per_page": 1}).json()["data"][0]
    kept = before["Quoted_Items"][:1]
    rows = [{"id": r["id"], "Quantity": 3.0} for r in kept] + [
        {"Product_Name": {"id": product["id"]}, "Quantity": 2.0, "List_Price": 10.0, "Sequence_Number": 9}
    ]
    time.sleep(1.1)  # Modified_Time has second precision
    sim.control.set_children("Quotes", quote_id, "Quoted_Items", rows)
    after = get(org, f"/crm/v6/Quotes/{quote_id}", tok).json()["data"][0]
    assert [r["id"] for r in after["Quoted_Items"]][: len(kept)] == [r["id"] for r in kept]
    assert len(after["Quoted_Items"]) == len(kept) + 1
    new = after["Quoted_Items"][-1]
    assert new["Product_Name"] == {"name": product["Product_Name"], "id": product["id"]}
    assert new["Total"] == 20.0
    assert after["Modified_Time"] != before["Modified_Time"]
    truth_rows = [
        r for r in sim.control.truth("Quotes")["children"]["Quoted_Items"] if r["_parent_id"] == quote_id
    ]
    assert [r["id"] for r in truth_rows] == [r["id"] for r in after["Quoted_Items"]]
    assert truth_rows[-1]["Product_Name"] == {"id": product["id"]}  # COQL shape: lookups carry only the id
    deal_id = _ids(org, tok, "Deals", 1)[0]
    account = get(org, "/crm/v6/Accounts", tok, {"fields": "Account_Name", "per_page": 1}).json()["data"][0]
    sim.control.set_children(
        "Deals", deal_id, "Partner_Accounts", [{"Partner_Account": {"id": account["id"]}}]
    )
    links = get(org, f"/crm/v6/Deals/{deal_id}", tok).json()["data"][0]["Partner_Accounts"]
    assert [link["Partner_Account"] for link in links] == [
        {"name": account["Account_Name"], "id": account["id"]}
    ]
    try:
        sim.control.set_children("Deals", deal_id, "Stage", [])
        raise AssertionError("Stage is no subform")
    except RuntimeError as exc:
        assert "400" in str(exc)
    sim.control.delete("Quotes", quote_id)
    assert quote_id not in {r["_parent_id"] for r in sim.control.truth("Quotes")["children"]["Quoted_Items"]}


def test_subform_scope_is_the_parent_modules(sim: RunningSimulator) -> None:
    from .helpers import client_org

    narrow = client_org(sim, ["ZohoCRM.modules.leads.READ"])
    resp = get(narrow, "/crm/v6/Quoted_Items", token(narrow), {"fields": "Quantity"})
    assert resp.status_code == 401 and error(resp)["code"] == "OAUTH_SCOPE_MISMATCH"
    quotes = client_org(sim, ["ZohoCRM.modules.quotes.READ"])
    assert get(quotes, "/crm/v6/Quoted_Items", token(quotes), {"fields": "Quantity"}).status_code == 200
