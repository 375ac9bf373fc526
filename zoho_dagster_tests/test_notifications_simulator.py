"""The simulator's Notifications API and deliveries (docs/zoho-crm-api.md §3.12), over real sockets.

The API side: scopes by method, enable / list / renew / disable, the expiry rules (none or beyond a day: one
hour; past: refused; lapsed: gone), entries refused as a whole. The delivery side: every create, edit and
delete of a watched module posts Zoho's callback body from a background thread (a slow receiver never slows
the call that changed the record), never retried; and the faults the control plane injects. Deliveries are
caught by a bare HTTP server here, so what is checked is the body on the wire.
"""

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from zoho_dagster_tests.simulator.helpers import client_org, token

WATCH = "/crm/v6/actions/watch"


class Catcher:
    """An HTTP endpoint on a real port recording each POST's body; answers ``status`` after ``delay``."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        self.delay = 0.0
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(catcher.delay)
                catcher.bodies.append({"path": self.path, **json.loads(raw)})
                self.send_response(catcher.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?env=test"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    running = Catcher()
    yield running
    running.close()


def call(org: dict[str, Any], tok: str, method: str, body: Any = None, **params: str) -> requests.Response:
    return requests.request(
        method,
        f"{org['api_domain']}{WATCH}",
        json=body,
        params=params,
        headers={"Authorization": f"Zoho-oauthtoken {tok}"},
        timeout=30,
    )


def entry(url: str, channel: str = "1000000068001", **extra: Any) -> dict[str, Any]:
    expiry = (datetime.now(timezone.utc) + timedelta(hours=20)).isoformat(timespec="seconds")
    return {
        "channel_id": channel,
        "events": ["Leads.all"],
        "notify_url": url,
        "token": "TOKEN_FOR_VERIFICATION",
        "channel_expiry": expiry,
        **extra,
    }


def expiry_in(answer: requests.Response) -> float:
    """Seconds from now to the first channel expiry of an enable/renew answer."""
    event = answer.json()["watch"][0]["details"]["events"][0]
    return (datetime.fromisoformat(event["channel_expiry"]) - datetime.now(timezone.utc)).total_seconds()


def test_scopes_by_method(simulator: Any, catcher: Catcher) -> None:
    records_only = client_org(simulator, ["ZohoCRM.modules.ALL"])
    answer = call(records_only, token(records_only), "POST", {"watch": [entry(catcher.url)]})
    assert (answer.status_code, answer.json()["code"]) == (401, "OAUTH_SCOPE_MISMATCH")
    reader = client_org(simulator, ["ZohoCRM.notifications.READ"])
    assert call(reader, token(reader), "GET").status_code == 204  # no channels yet
    assert call(reader, token(reader), "POST", {"watch": [entry(catcher.url)]}).status_code == 401
    creator = client_org(simulator, ["ZohoCRM.notifications.CREATE"])
    assert call(creator, token(creator), "POST", {"watch": [entry(catcher.url)]}).status_code == 201
    assert call(creator, token(creator), "DELETE", channel_ids="1000000068001").status_code == 401


def test_enable_list_renew_disable(simulator: Any, catcher: Catcher) -> None:
    org = simulator.primary
    tok = token(org)
    enabled = call(
        org, tok, "POST", {"watch": [entry(catcher.url), entry(catcher.url, "42", events=["Deals.edit"])]}
    )
    assert enabled.status_code == 201, enabled.text
    first = enabled.json()["watch"][0]
    assert (first["code"], first["status"]) == ("SUCCESS", "success")
    assert first["message"] == "Successfully subscribed for actions-watch of the given module"
    event = first["details"]["events"][0]
    assert set(event) == {"channel_expiry", "resource_uri", "resource_id", "resource_name", "channel_id"}
    assert (event["resource_name"], event["channel_id"]) == ("Leads", "1000000068001")
    assert 19.9 * 3600 < expiry_in(enabled) <= 20 * 3600
    listed = call(org, tok, "GET").json()
    assert {(w["channel_id"], tuple(w["events"])) for w in listed["watch"]} == {
        ("1000000068001", ("Leads.create", "Leads.delete", "Leads.edit")),
        ("42", ("Deals.edit",)),
    }
    assert listed["watch"][0]["token"] and listed["info"]["more_records"] is False
    assert [w["channel_id"] for w in call(org, tok, "GET", channel_id="42").json()["watch"]] == ["42"]
    later = (datetime.now(timezone.utc) + timedelta(hours=23)).isoformat(timespec="seconds")
    renewed = call(org, tok, "PATCH", {"watch": [entry(catcher.url, channel_expiry=later)]})
    assert renewed.status_code == 200 and 22.9 * 3600 < expiry_in(renewed) <= 23 * 3600
    gone = call(org, tok, "DELETE", channel_ids="1000000068001,42")
    assert gone.status_code == 200
    assert {w["message"] for w in gone.json()["watch"]} == {"Successfully un-subscribed from actions-watch"}
    assert call(org, tok, "GET").status_code == 204
    again = call(org, tok, "DELETE", channel_ids="42")
    assert again.status_code == 400 and again.json()["watch"][0]["code"] == "INVALID_DATA"
    assert call(org, tok, "DELETE").json()["code"] == "REQUIRED_PARAM_MISSING"
    stats = simulator.control.stats()["by_endpoint"]
    assert stats[f"GET {WATCH}"] >= 3 and stats[f"POST {WATCH}"] == 1


def test_expiry_rules(simulator: Any, catcher: Catcher) -> None:
    org = simulator.primary
    tok = token(org)
    no_expiry = {k: v for k, v in entry(catcher.url, "1").items() if k != "channel_expiry"}
    too_far = entry(
        catcher.url, "2", channel_expiry=(datetime.now(timezone.utc) + timedelta(days=2)).isoformat()
    )
    for sent in (no_expiry, too_far):
        answer = call(org, tok, "POST", {"watch": [sent]})
        assert answer.status_code == 201 and 3590 < expiry_in(answer) <= 3600  # silently one hour
    past = entry(catcher.url, "3", channel_expiry="2020-01-01T00:00:00+00:00")
    assert call(org, tok, "POST", {"watch": [past]}).json()["watch"][0]["details"] == {
        "api_name": "channel_expiry"
    }
    simulator.control.advance_clock(3601)  # both channels lapse: gone (and the access token too)
    tok = token(org)
    assert call(org, tok, "GET").status_code == 204
    renew = call(org, tok, "PATCH", {"watch": [entry(catcher.url, "1")]})
    assert renew.status_code == 400 and renew.json()["watch"][0]["details"] == {"api_name": "channel_id"}
    simulator.control.create("Leads", {"Last_Name": "Unwatched"})
    time.sleep(0.5)
    assert catcher.bodies == []
    assert call(org, tok, "POST", {"watch": [entry(catcher.url, "1")]}).status_code == 201  # enabled again


def test_refused_entries(simulator: Any, catcher: Catcher) -> None:
    org = simulator.primary
    tok = token(org)
    for bad, key in (
        (entry(catcher.url, token="x" * 51), "token"),
        (entry(catcher.url, events=["Notes.all"]), "events"),
        (entry(catcher.url, events=["Quoted_Items.all"]), "events"),
        (entry(catcher.url, events=["Leads.update"]), "events"),
        (entry(catcher.url, notify_url="mailto:someone"), "notify_url"),
        (entry(catcher.url, channel_id="abc"), "channel_id"),
    ):
        answer = call(org, tok, "POST", {"watch": [entry(catcher.url, "7"), bad]})
        assert answer.status_code == 400, (key, answer.text)
        assert answer.json()["watch"][1]["details"]["api_name"] == key
    missing = {k: v for k, v in entry(catcher.url).items() if k != "notify_url"}
    assert call(org, tok, "POST", {"watch": [missing]}).json()["watch"][0]["code"] == "MANDATORY_NOT_FOUND"
    assert call(org, tok, "POST", {"watch": []}).json()["code"] == "REQUIRED_PARAM_MISSING"
    assert call(org, tok, "GET").status_code == 204  # nothing of a refused request was applied


def test_deliveries_in_zohos_shape_never_block_never_retried(simulator: Any, catcher: Catcher) -> None:
    org = simulator.primary
    tok = token(org)
    assert call(org, tok, "POST", {"watch": [entry(catcher.url)]}).status_code == 201
    catcher.delay = 1.0
    started = time.monotonic()
    record = simulator.control.create("Leads", {"Last_Name": "Notified"})
    simulator.control.update("Leads", record, {"Last_Name": "Edited", "Email": "e@example.com"})
    simulator.control.delete("Leads", record)
    simulator.control.create("Contacts", {"Last_Name": "Not watched"})
    assert time.monotonic() - started < 0.9  # the calls returned before the first delivery was answered
    state = simulator.control.wait_notifications_sent(timeout=30)
    assert state["stats"]["delivered"] == 3
    by_operation = {body["operation"]: body for body in catcher.bodies}
    assert set(by_operation) == {"insert", "update", "delete"}
    update = by_operation["update"]
    assert set(update) == {
        "path",
        "server_time",
        "query_params",
        "module",
        "resource_uri",
        "ids",
        "affected_fields",
        "operation",
        "channel_id",
        "token",
    }
    assert (update["module"], update["ids"], update["channel_id"]) == ("Leads", [record], "1000000068001")
    assert update["token"] == "TOKEN_FOR_VERIFICATION" and update["query_params"] == {"env": "test"}
    assert update["affected_fields"] == [{record: ["Last_Name", "Email"]}]
    assert (
        update["resource_uri"] == f"{org['api_domain']}/crm/v6/Leads" and update["path"] == "/hook?env=test"
    )
    assert abs(update["server_time"] / 1000 - time.time()) < 60
    # A receiver that answers an error is not asked again (strict: Zoho's retry policy is UNCONFIRMED).
    catcher.delay, catcher.status = 0.0, 500
    simulator.control.create("Leads", {"Last_Name": "Refused"})
    state = simulator.control.wait_notifications_sent(timeout=30)
    time.sleep(0.3)
    assert state["stats"]["refused"] == 1 and len(catcher.bodies) == 4


def test_delivery_faults(simulator: Any, catcher: Catcher) -> None:
    org = simulator.primary
    assert call(org, token(org), "POST", {"watch": [entry(catcher.url)]}).status_code == 201

    def burst(n: int) -> list[str]:
        ids = [simulator.control.create("Leads", {"Last_Name": f"F{i}"}) for i in range(n)]
        simulator.control.wait_notifications_sent(timeout=30)
        return ids

    simulator.control.set_notification_faults(duplicate_rate=1.0)
    ids = burst(5)
    sent = [i for body in catcher.bodies for i in body["ids"]]
    assert sorted(sent) == sorted(ids * 2)
    catcher.bodies.clear()
    simulator.control.set_notification_faults(drop_rate=1.0)
    burst(3)
    assert catcher.bodies == [] and simulator.control.notifications()["stats"]["dropped"] >= 3
    simulator.control.set_notification_faults(outage_seconds=30)
    burst(3)
    state = simulator.control.notifications()
    assert (
        catcher.bodies == [] and state["stats"]["failed"] >= 3 and state["faults"]["outage_seconds_left"] > 0
    )
    simulator.control.set_notification_faults(reorder_window=20, seed=3)
    ids = burst(40)
    order = [i for body in catcher.bodies for i in body["ids"]]
    assert sorted(order) == sorted(ids) and order != ids
    simulator.control.clear_notification_faults()
    catcher.bodies.clear()
    ids = burst(3)
    assert sorted(i for body in catcher.bodies for i in body["ids"]) == sorted(ids)
