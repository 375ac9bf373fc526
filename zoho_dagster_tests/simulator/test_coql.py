"""COQL (docs/zoho-crm-api.md §3.8): shapes, v6 limits, errors, credits by LIMIT, over real sockets."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import requests

from zoho_dagster.simulator import RunningSimulator

from .helpers import SESSION, client_org, error, get, shown_by_default, token


def coql(org: dict[str, Any], tok: str, query: str) -> requests.Response:
    return SESSION.post(
        f"{org['api_domain']}/crm/v6/coql",
        json={"select_query": query},
        headers={"Authorization": f"Zoho-oauthtoken {tok}"},
        timeout=60,
    )


def coql_body(org: dict[str, Any], tok: str, query: str) -> dict[str, Any]:
    """The answer of a query that must succeed (200), decoded."""
    resp = coql(org, tok, query)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_select_with_lookups_dots_and_in(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    deals = get(org, "/crm/v6/Deals", tok, {"fields": "Deal_Name,Account_Name,Amount", "per_page": 3}).json()[
        "data"
    ]
    ids = ", ".join(f"'{d['id']}'" for d in deals)
    body = coql_body(
        org,
        tok,
        f"select Deal_Name, Account_Name, Account_Name.Account_Name, Amount from Deals where (id in ({ids})) "
        "order by id asc limit 0, 10",
    )
    assert body["info"] == {"count": 3, "more_records": False}
    by_id = {d["id"]: d for d in deals}
    assert [r["id"] for r in body["data"]] == sorted(by_id, key=int)
    for row in body["data"]:
        listed = by_id[row["id"]]
        assert row["Deal_Name"] == listed["Deal_Name"] and row["Amount"] == listed["Amount"]
        assert row["Account_Name"] == {"id": listed["Account_Name"]["id"]}  # a lookup column: only the id
        assert row["Account_Name.Account_Name"] == listed["Account_Name"]["name"]


def test_default_order_is_id_ascending_and_limits_page(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    first = coql(org, tok, "select Last_Name from Leads limit 5").json()
    assert [r["id"] for r in first["data"]] == sorted((r["id"] for r in first["data"]), key=int)
    assert first["info"] == {"count": 5, "more_records": True}
    second = coql(org, tok, "select Last_Name from Leads limit 5 offset 5").json()
    both = coql(org, tok, "select Last_Name from Leads limit 0, 10").json()
    assert first["data"] + second["data"] == both["data"]
    empty = coql(org, tok, "select Last_Name from Leads where Last_Name = 'No Such Name'")
    assert empty.status_code == 204 and empty.content == b""


def test_criteria_compare_by_type(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    # COQL leaves out records awaiting approval (strict reading, docs/zoho-crm-api.md §10).
    truth = shown_by_default(sim.control.truth("Deals")["data"])
    big = sorted(truth, key=lambda r: int(r["id"]))
    amount = sorted(r["Amount"] for r in big)[len(big) // 2]
    query = (
        f"select Amount, Stage from Deals where ((Amount >= {amount:.0f} and Stage = 'Closed Won') "
        "and Modified_Time >= '2000-01-01T00:00:00+00:00') limit 2000"
    )
    rows = coql(org, tok, query).json()["data"]
    expected = [r["id"] for r in big if r["Amount"] >= amount and r["Stage"] == "Closed Won"]
    assert [r["id"] for r in rows] == expected[:2000]
    assert all(r["Stage"] == "Closed Won" for r in rows)


def test_modified_time_order_and_keyset_criteria_give_the_window_in_order(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    truth = shown_by_default(sim.control.truth("Contacts")["data"])

    def instant(record: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(record["Modified_Time"]).astimezone(timezone.utc)

    ordered = sorted(truth, key=lambda r: (instant(r), r["id"]))
    start, end = instant(ordered[len(ordered) // 5]), instant(ordered[len(ordered) // 2])
    expected = [r["id"] for r in ordered if start <= instant(r) < end]
    assert len(expected) > 300
    read: list[str] = []
    after = f"Modified_Time >= '{start.isoformat()}'"
    while True:  # the keyset walk of the client's COQL passes, 150 rows a page
        body = coql_body(
            org,
            tok,
            f"select id, Modified_Time from Contacts where ({after} and Modified_Time < '{end.isoformat()}') "
            "order by Modified_Time asc, id asc limit 150",
        )
        read += [row["id"] for row in body["data"]]
        if not body["info"]["more_records"]:
            break
        last = body["data"][-1]
        moment = instant(last).isoformat()
        after = f"(Modified_Time > '{moment}' or (Modified_Time = '{moment}' and id > '{last['id']}'))"
    assert read == expected


def test_subform_and_linking_modules(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    parents = list(
        dict.fromkeys(r["_parent_id"] for r in sim.control.truth("Quotes")["children"]["Quoted_Items"])
    )
    sim.control.update("Quotes", parents[0], {"$approved": False})  # one parent awaits approval
    quotes = sim.control.truth("Quotes")
    shown = {q["id"] for q in shown_by_default(quotes["data"])}
    truth = quotes["children"]["Quoted_Items"]
    parents = parents[:50]
    values = ", ".join(f"'{p}'" for p in parents)
    rows = coql_body(
        org,
        tok,
        f"select Product_Name, Quantity, Parent_Id from Quoted_Items where Parent_Id in ({values}) "
        "limit 2000",
    )["data"]
    # The rows of a quote awaiting approval are left out with it (strict reading, §10).
    expected = [r for r in truth if r["_parent_id"] in set(parents) and r["_parent_id"] in shown]
    assert len(expected) < len([r for r in truth if r["_parent_id"] in set(parents)])
    assert [r["id"] for r in rows] == sorted((r["id"] for r in expected), key=int)
    assert all(set(r["Parent_Id"]) == {"id"} for r in rows)
    deals = sim.control.truth("Deals")
    shown_deals = {d["id"] for d in shown_by_default(deals["data"])}
    links = deals["children"]["Partner_Accounts"]
    deal = next(r["_parent_id"] for r in links if r["_parent_id"] in shown_deals)
    linked = coql_body(
        org,
        tok,
        "select Partner_Account, Partner_Account.Account_Name, Deal from Deals_X_Accounts "
        f"where Deal = '{deal}'",
    )["data"]
    assert {r["Partner_Account"]["id"] for r in linked} == {
        r["Partner_Account"]["id"] for r in links if r["_parent_id"] == deal
    }


def test_limits_and_errors(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    cases = {
        "select Last_Name from Leads limit 2001": "LIMIT_EXCEEDED",  # at most 2,000 rows a call
        "select Last_Name from Leads limit 9000, 2000": "LIMIT_EXCEEDED",  # offset + limit at most 10,000
        "select Last_Name from Leads where id in ({})".format(
            ", ".join(f"'{n}'" for n in range(51))
        ): "LIMIT_EXCEEDED",
        "select {} from Leads".format(", ".join(f"Last_Name{n}" for n in range(51))): "LIMIT_EXCEEDED",
        "select Last_Name Leads": "SYNTAX_ERROR",
        "select * from Leads": "SYNTAX_ERROR",
        "select Last_Name from Leads where Last_Name = 'a' and Email = 'b' and Phone = 'c'": "SYNTAX_ERROR",
        "select Last_Name from Leads where Last_Name = ": "SYNTAX_ERROR",
        "select Nope from Leads": "INVALID_QUERY",
        "select Last_Name from NoModule": "INVALID_QUERY",
        "select Partner_Accounts from Deals": "INVALID_QUERY",  # multi-select lookups are not supported
        "select Quoted_Items from Quotes": "INVALID_QUERY",  # nor line items
        "select Modified_Time from Leads where Modified_Time >= 'yesterday'": "INVALID_QUERY",
    }
    for query, code in cases.items():
        resp = coql(org, tok, query)
        assert resp.status_code == 400, (query, resp.status_code)
        assert error(resp)["code"] == code, (query, resp.json())
    # Exactly at the 10,000-row window: accepted (no leads that far in a 2,500-lead org, so 204).
    assert coql(org, tok, "select Last_Name from Leads limit 8000, 2000").status_code == 204
    assert coql(org, tok, "select Last_Name from Leads limit 1000, 2000").status_code == 200
    assert (
        coql(
            org,
            tok,
            "select Last_Name from Leads where id in ({})".format(", ".join(f"'{n}'" for n in range(50))),
        ).status_code
        == 204
    )
    wrong_method = get(org, "/crm/v6/coql", tok)
    assert wrong_method.status_code == 400 and error(wrong_method)["code"] == "INVALID_REQUEST_METHOD"


def test_credits_by_limit(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    for limit, credits in ((200, 1), (201, 2), (1000, 2), (1001, 3), (2000, 3)):
        sim.control.reset_stats()
        assert coql(org, tok, f"select Last_Name from Leads limit {limit}").status_code == 200
        assert sim.control.stats()["total_credits"] == credits, limit


def test_scope(sim: RunningSimulator) -> None:
    no_coql = client_org(sim, ["ZohoCRM.modules.ALL"])
    resp = coql(no_coql, token(no_coql), "select Last_Name from Leads")
    assert resp.status_code == 401 and error(resp)["code"] == "OAUTH_SCOPE_MISMATCH"
    no_module = client_org(sim, ["ZohoCRM.coql.READ", "ZohoCRM.modules.deals.READ"])
    resp = coql(no_module, token(no_module), "select Last_Name from Leads")
    assert resp.status_code == 401 and error(resp)["code"] == "OAUTH_SCOPE_MISMATCH"
    assert coql(no_module, token(no_module), "select Deal_Name from Deals limit 1").status_code == 200


def test_counts_against_sub_concurrency() -> None:
    """COQL is a sub-concurrency API (docs/zoho-crm-api.md §3.8, §6.3): with calls held in flight by
    latency, an eleventh concurrent query gets 429 although the edition's concurrency (20) is not reached."""
    import threading

    from zoho_dagster.simulator import run_simulator

    with run_simulator(seed=7, records=100, latency_ms=1500) as slow:
        org, tok = slow.primary, token(slow.primary)
        codes: list[int] = []

        def call() -> None:
            codes.append(coql(org, tok, "select Last_Name from Leads limit 1").status_code)

        threads = [threading.Thread(target=call) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert codes.count(200) == 10 and codes.count(429) == 2
