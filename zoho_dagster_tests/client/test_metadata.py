"""Users, modules, fields, counts, deletions and the cheap change probe, against the simulator's truth."""

from datetime import datetime, timedelta, timezone
from typing import Any

from zoho_dagster.client import parse_datetime
from zoho_dagster_tests.client.conftest import ClientFactory
from zoho_dagster_tests.client.helpers import WIDE_END, WIDE_START, shown_by_default, utc


def test_modules_and_fields(make_client: ClientFactory) -> None:
    client = make_client()
    names = {module["api_name"] for module in client.list_modules()}
    assert {"Leads", "Contacts", "Events", "Notes"} <= names
    fields = client.list_fields("Leads")
    assert {"Modified_Time", "Last_Name"} <= {field["api_name"] for field in fields}
    assert all("data_type" in field for field in fields)


def test_count_matches_truth(simulator: Any, make_client: ClientFactory) -> None:
    # Under the simulator's strict reading the count leaves out what the list API hides by default (ref. §10).
    assert make_client().count("Deals") == len(shown_by_default(simulator.control.truth("Deals")))


def test_users_are_paged_whole(make_client: ClientFactory) -> None:
    client = make_client()
    users = [user for page in client.iter_users() for user in page]
    assert users and len({user["id"] for user in users}) == len(users)
    assert all("email" in user for user in users)


def test_deleted_records_match_truth(simulator: Any, make_client: ClientFactory) -> None:
    client = make_client()
    expected = {entry["id"] for entry in simulator.control.truth("Leads")["deleted"]}
    got = {entry["id"] for page in client.iter_deleted("Leads") for entry in page}
    assert got == expected and expected
    assert list(client.iter_deleted("Leads", since=WIDE_END)) == []


def test_deleted_since_is_inclusive_filter(simulator: Any, make_client: ClientFactory) -> None:
    truth = simulator.control.truth("Leads")["deleted"]
    cut = sorted(utc(entry["deleted_time"]) for entry in truth)[len(truth) // 2]
    got = {e["id"] for page in make_client().iter_deleted("Leads", since=cut) for e in page}
    assert got == {e["id"] for e in truth if utc(e["deleted_time"]) >= cut}


def test_changed_since_costs_one_call(simulator: Any, make_client: ClientFactory) -> None:
    client = make_client()
    newest = max(utc(r["Modified_Time"]) for r in simulator.control.truth("Leads")["data"])
    assert client.changed_since("Leads", newest) is True
    assert client.changed_since("Leads", newest + timedelta(seconds=1)) is False
    assert client.stats.calls == 2
    rid = simulator.control.truth("Leads")["data"][0]["id"]
    later = (newest + timedelta(hours=1)).isoformat()
    simulator.control.update("Leads", rid, {"Last_Name": "Touched", "Modified_Time": later})
    assert client.changed_since("Leads", newest + timedelta(seconds=1)) is True
    assert list(client.iter_records("Leads", WIDE_START, WIDE_START, ["Last_Name"])) == []


def test_datetimes_are_normalised_to_utc() -> None:
    expected = datetime(2021, 8, 4, 11, 8, 39, tzinfo=timezone.utc)
    assert parse_datetime("2021-08-04T14:08:39+03:00") == expected
    assert parse_datetime("2021-08-04T11:08:39Z") == expected
    assert parse_datetime("2021-08-04T16:38:39+05:30") == expected
    assert parse_datetime("2021-08-04T01:08:39-10:00") == expected
    assert parse_datetime("2021-08-04T14:08:39+03:00").utcoffset() == timedelta(0)
