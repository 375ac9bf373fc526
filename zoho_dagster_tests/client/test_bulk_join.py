"""A big window read with Bulk Read gives the table the records API gives, whatever Bulk Read cannot export
and whatever it leaves out (docs/zoho-crm-api.md §4.1, client/bulk_join.py).

Every test reads a whole window through ``ZohoClient.iter_records`` twice, against a real simulator over
sockets: once with Bulk Read (a threshold below the window's size) and once with the records API alone (no
threshold), and compares the two field for field, ``$`` columns included (``record_fields``: what the table
holds). The ids are also checked against the simulator's truth (every live record, converted and awaiting
approval included). The simulator's strict reading leaves converted and awaiting-approval records out of a
Bulk Read job; the permissive one (``set_readings(bulk_includes_hidden=True)``) exports them: both must give
the same table.
"""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from zoho_dagster.client import ClientConfig, Credentials, ZohoClient, listable_fields, record_fields
from zoho_dagster.client.bulk_join import BulkJoin
from zoho_dagster.client.client import module_scope
from zoho_dagster.client.http import Need
from zoho_dagster.client.policy import FAST_TEST_POLICY
from zoho_dagster.client.records import WindowReader
from zoho_dagster.client.token_cache import InMemoryTokenCache
from zoho_dagster.client.visibility import CONVERTED
from zoho_dagster.simulator import RunningSimulator, run_simulator
from zoho_dagster_tests.client.helpers import (
    WIDE_END,
    WIDE_START,
    is_awaiting_approval,
    is_converted,
    is_hidden_by_default,
    utc,
)

RECORDS = 4_000
THRESHOLD = 500
BULK_CREATE = "POST /crm/bulk/v6/read"
LAYOUTS = "GET /crm/v6/settings/layouts"
RICH = "Rich_Description__c"
LIST_CUT = 500
"""Characters of rich text a list answer carries (docs/zoho-crm-api.md §2.5), the simulator's reading."""
READINGS = {"strict": False, "permissive": True}
NO_LAYOUTS_SCOPES = (
    "ZohoCRM.modules.ALL,ZohoCRM.settings.fields.READ,ZohoCRM.settings.tags.READ,ZohoCRM.bulk.ALL,"
    "ZohoSearch.securesearch.READ,ZohoCRM.coql.READ,ZohoCRM.org.READ"
)
"""Every scope a Bulk Read of a window needs but the layouts' (``ZohoCRM.settings.layouts.READ``)."""
NO_TAGS_SCOPES = NO_LAYOUTS_SCOPES.replace("ZohoCRM.settings.tags.READ", "ZohoCRM.settings.layouts.READ")
"""Every scope a Bulk Read of a window needs but the tags' (``ZohoCRM.settings.tags.READ``)."""
TOKENS = InMemoryTokenCache()
"""Shared by every client of these tests (the key holds the scopes): the simulator mints 10 tokens in 10
minutes, as Zoho does."""


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    with run_simulator(seed=13, records=RECORDS) as running:
        yield running


@pytest.fixture(autouse=True)
def strict_again(simulator: RunningSimulator) -> Iterator[None]:
    """Each test starts from the simulator's defaults: strict readings, 30% converted, 5% awaiting."""
    strict = {"bulk_includes_hidden": False, "coql_includes_hidden": False, "count_includes_hidden": False}
    simulator.control.set_readings(**strict)
    simulator.control.set_visibility(converted_share=0.30, awaiting_approval_share=0.05)
    yield
    simulator.control.set_readings(**strict)
    simulator.control.set_visibility(converted_share=0.30, awaiting_approval_share=0.05)


def _client(
    simulator: RunningSimulator, bulk_threshold: int, scopes: str | None = None, whole_rich_text: bool = True
) -> ZohoClient:
    """A client of the primary org; with ``scopes``, of a Self Client given only those."""
    org = simulator.primary
    if scopes:
        org = {**org, **simulator.control.add_client(scopes.split(","))}
    credentials = Credentials(
        client_id=org["client_id"],
        client_secret=org["client_secret"],
        accounts_url=org["accounts_url"],
        region=org["region"],
        soid=org["soid"],
        **({"scopes": scopes} if scopes else {}),
    )
    return ZohoClient(
        ClientConfig(
            credentials=credentials,
            token_cache=TOKENS,
            api_domain=org["api_domain"],
            max_concurrency=6,
            bulk_threshold=bulk_threshold,
            whole_rich_text=whole_rich_text,
            policy=FAST_TEST_POLICY,
        )
    )


def _columns(metadata: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(the fields a read asks for, the table's columns): the listable fields, then the ``$`` keys too."""
    fields = [str(meta["api_name"]) for meta in listable_fields(metadata)]
    return fields, [str(meta["api_name"]) for meta in record_fields(metadata)]


def _read(
    client: ZohoClient, module: str, metadata: list[dict[str, Any]], columns: list[str], fields: list[str]
) -> dict[str, dict[str, Any]]:
    """The window's records by id, each as the table would hold it: every column, present."""
    records: dict[str, dict[str, Any]] = {}
    for page in client.iter_records(module, WIDE_START, WIDE_END, fields, metadata):
        for record in page:
            assert record["id"] not in records, f"record {record['id']} came twice"
            missing = [column for column in columns if column not in record]
            assert not missing, f"record {record['id']} lacks {missing}"
            records[record["id"]] = {column: record[column] for column in (*columns, "id")}
    return records


def _assert_same(expected: dict[str, dict[str, Any]], got: dict[str, dict[str, Any]]) -> None:
    assert got.keys() == expected.keys()
    for rid, record in expected.items():
        if json.dumps(got[rid], sort_keys=True) != json.dumps(record, sort_keys=True):
            diff = {k: (record.get(k), got[rid].get(k)) for k in record if record.get(k) != got[rid].get(k)}
            raise AssertionError(f"record {rid} differs (records API, Bulk Read): {diff}")


def _truth_ids(simulator: RunningSimulator, module: str) -> dict[str, dict[str, Any]]:
    return {
        record["id"]: record
        for record in simulator.control.truth(module)["data"]
        if WIDE_START <= utc(record["Modified_Time"]) < WIDE_END
    }


def _both_ways(
    simulator: RunningSimulator, module: str, scopes: str | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, int]]:
    """(records API alone, Bulk Read) of the widest window, and the simulator's calls of the latter."""
    reference = _client(simulator, 0)
    metadata = reference.list_fields(module)
    fields, columns = _columns(metadata)
    expected = _read(reference, module, metadata, columns, fields)
    bulk = _client(simulator, THRESHOLD, scopes)
    simulator.control.reset_stats()
    got = _read(bulk, module, metadata, columns, fields)
    by_endpoint = dict(simulator.control.stats()["by_endpoint"])
    assert bulk.stats.calls == sum(n for e, n in by_endpoint.items() if "/oauth/" not in e)
    return expected, got, by_endpoint


@pytest.mark.parametrize("reading", READINGS)
def test_leads_with_layout_and_rich_text_are_read_with_bulk_read_and_equal_the_records_api(
    simulator: RunningSimulator, reading: str
) -> None:
    simulator.control.set_readings(bulk_includes_hidden=READINGS[reading])
    expected, got, calls = _both_ways(simulator, "Leads")
    truth = _truth_ids(simulator, "Leads")
    assert len(truth) > 3 * THRESHOLD and got.keys() == truth.keys()
    _assert_same(expected, got)
    assert calls[BULK_CREATE] >= 1 and calls[LAYOUTS] == 1
    # Layout is rebuilt from the CSV's id and the layouts API: both layouts show.
    assert {record["Layout"]["name"] for record in got.values()} == {"Standard", "Partner"}
    # Rich text: whole both ways, the CSV's value and the records API's re-read of what the list cut
    # (docs/zoho-crm-api.md §4.1, client/full_text.py); the records API reference equals it above.
    long = [rid for rid, record in truth.items() if len(record.get(RICH) or "") > LIST_CUT]
    assert len(long) > len(truth) // 10
    assert all(got[rid][RICH] == truth[rid][RICH] for rid in long)
    # The hidden sets are in, with the records API's $ keys; the others carry those of a shown record.
    converted = {rid for rid, record in truth.items() if is_converted(record)}
    awaiting = {rid for rid, record in truth.items() if is_awaiting_approval(record)}
    assert len(converted) > len(truth) // 5 and awaiting
    for rid, record in got.items():
        assert record["$converted"] is (rid in converted) and record["$approved"] is (rid not in awaiting)


def _single_reads(calls: dict[str, int], module: str) -> int:
    """Single-record reads (``GET /crm/v6/{module}/{id}``) among a read's calls by endpoint."""
    prefix = f"GET /crm/v6/{module}/"
    return sum(n for e, n in calls.items() if e.startswith(prefix) and "/actions/" not in e)


def test_hidden_leads_take_their_rich_text_from_the_csv_when_the_job_exports_them(
    simulator: RunningSimulator,
) -> None:
    """A hidden lead's rich text the list cut waits for the CSV: under the permissive reading (the job
    exports hidden leads) the CSV's whole value completes it, and only the strict reading pays a
    single-record read per such lead. Both tables equal the records API's."""
    truth = _truth_ids(simulator, "Leads")
    long_hidden = [
        rid for rid, r in truth.items() if is_hidden_by_default(r) and len(r.get(RICH) or "") > LIST_CUT
    ]
    reads = {}
    for reading, exported in READINGS.items():
        simulator.control.set_readings(bulk_includes_hidden=exported)
        expected, got, calls = _both_ways(simulator, "Leads")
        _assert_same(expected, got)
        reads[reading] = _single_reads(calls, "Leads")
    assert len(long_hidden) > 100
    assert reads["strict"] >= len(long_hidden) * 0.9  # those the window's Bulk Read part read: nearly all
    assert reads["permissive"] <= reads["strict"] - len(long_hidden) * 0.8, reads


def test_rich_text_kept_as_listed_costs_no_single_record_reads(simulator: RunningSimulator) -> None:
    """``whole_rich_text=False`` (ZOHO_CRM_WHOLE_RICH_TEXT=false): the hidden leads' rich text stays as the
    list API cut it, the CSV's stays whole, and no record is read one at a time: the credits of the
    all-exportable case plus the hidden sets' pages (docs/zoho-crm-api.md §4.1)."""
    client = _client(simulator, THRESHOLD, whole_rich_text=False)
    metadata = client.list_fields("Leads")
    fields, columns = _columns(metadata)
    simulator.control.reset_stats()
    got = _read(client, "Leads", metadata, columns, fields)
    calls = simulator.control.stats()["by_endpoint"]
    truth = _truth_ids(simulator, "Leads")
    assert got.keys() == truth.keys() and calls[BULK_CREATE] >= 1
    assert _single_reads(calls, "Leads") == 0
    hidden = {rid for rid, record in truth.items() if is_hidden_by_default(record)}
    cut = [rid for rid in hidden if len(truth[rid].get(RICH) or "") > LIST_CUT]
    assert cut, "no hidden lead with rich text past the list's cut"
    # The window's first pages come from the records API (cut), the rest of the shown leads from the CSV.
    whole_from_csv = 0
    for rid, record in truth.items():
        whole = record.get(RICH) or ""
        value = got[rid][RICH] or ""
        assert value == (whole[:LIST_CUT] if rid in hidden else value) and whole.startswith(value), rid
        whole_from_csv += len(whole) > LIST_CUT and value == whole
    assert whole_from_csv > len(cut)


@pytest.mark.parametrize("reading", [*READINGS, "permissive everywhere"])
def test_a_third_converted_and_some_awaiting_approval_every_id_arrives(
    simulator: RunningSimulator, reading: str
) -> None:
    """Also with COQL and the count API counting hidden records (the count then cuts other chunks)."""
    simulator.control.set_visibility(converted_share=1 / 3, awaiting_approval_share=0.08)
    everywhere = reading == "permissive everywhere"
    simulator.control.set_readings(
        bulk_includes_hidden=READINGS.get(reading, True),
        coql_includes_hidden=everywhere,
        count_includes_hidden=everywhere,
    )
    for module in ("Leads", "Contacts"):
        truth = _truth_ids(simulator, module)
        expected, got, calls = _both_ways(simulator, module)
        assert got.keys() == truth.keys() == expected.keys(), module
        _assert_same(expected, got)
        assert calls[BULK_CREATE] >= 1, module
        hidden = [r for r in truth.values() if is_hidden_by_default(r)]
        assert len(hidden) > len(truth) // (3 if module == "Leads" else 20), module


def test_layout_refused_by_scope_is_read_by_another_route_and_bulk_read_stays(
    simulator: RunningSimulator,
) -> None:
    expected, got, calls = _both_ways(simulator, "Deals", scopes=NO_LAYOUTS_SCOPES)
    assert len(got) > THRESHOLD
    _assert_same(expected, got)
    assert calls[BULK_CREATE] >= 1
    assert calls[LAYOUTS] == 1  # refused once, not asked again for the next chunk
    assert {record["Layout"]["name"] for record in got.values()} == {"Standard", "Partner"}


def test_tag_refused_by_scope_is_read_by_another_route_and_bulk_read_stays(
    simulator: RunningSimulator,
) -> None:
    expected, got, calls = _both_ways(simulator, "Contacts", scopes=NO_TAGS_SCOPES)
    assert len(got) > THRESHOLD
    _assert_same(expected, got)
    assert calls[BULK_CREATE] >= 1 and calls["GET /crm/v6/settings/tags"] == 1
    assert any(record["Tag"] for record in got.values())


def test_a_layout_id_the_layouts_list_lacks_is_completed_by_ids(simulator: RunningSimulator) -> None:
    """Strictest: a CSV id without a name in the list is never named by guess; the record's Layout comes from
    the records API (``ids=``), so every record is whole."""
    client = _client(simulator, 0)
    metadata = client.list_fields("Contacts")
    fields, columns = _columns(metadata)
    expected = _read(client, "Contacts", metadata, columns, fields)
    layouts = client.http.get(
        "/settings/layouts", Need("ZohoCRM.settings.layouts.READ", "layouts"), {"module": "Contacts"}
    )
    standard_only = [layout for layout in (layouts.body or {})["layouts"] if layout["name"] == "Standard"]
    partner = [rid for rid, record in expected.items() if record["Layout"]["name"] == "Partner"]
    assert partner
    simulator.control.reset_stats()
    join = BulkJoin(
        client.http,
        "Contacts",
        fields,
        WIDE_START,
        WIDE_END,
        Need(module_scope("Contacts"), "Contacts"),
        fields_metadata=metadata,
        full_text_fields=client.whole_text_fields(metadata, fields),
        bulk_fields=[name for name in fields if name != "Modified_Time"],
        bulk_options={"layouts_metadata": standard_only, "poll_first": 0.2, "poll_max": 0.4},
    )
    got: dict[str, dict[str, Any]] = {}
    for page in join:
        for record in page:
            assert record["id"] not in got
            got[record["id"]] = {column: record[column] for column in (*columns, "id")}
    _assert_same(expected, got)
    ids_calls = simulator.control.stats()["by_endpoint"]["GET /crm/v6/Contacts"]
    hidden_pages = 2  # at least one page per hidden set
    assert ids_calls >= hidden_pages + len(partner) // 100


@pytest.mark.parametrize("reading", READINGS)
def test_records_converted_after_the_jobs_snapshot_come_once_from_the_hidden_sets(
    simulator: RunningSimulator, reading: str
) -> None:
    """More leads become converted after the job's snapshot, keeping their Modified_Time (the simulator's
    share knob): their CSV rows and other fields give way to the hidden sets' versions, read after it."""
    simulator.control.set_readings(bulk_includes_hidden=READINGS[reading])
    client = _client(simulator, 0)
    metadata = client.list_fields("Leads")
    fields, columns = _columns(metadata)
    raised: list[str] = []

    def sliced(window: WindowReader) -> WindowReader:
        if window.scope == CONVERTED and not raised:  # the first hidden set: the job has completed
            simulator.control.set_visibility(converted_share=0.5)
            raised.append("converted share 0.5")
        return window

    join = BulkJoin(
        client.http,
        "Leads",
        fields,
        WIDE_START,
        WIDE_END,
        Need(module_scope("Leads"), "Leads"),
        fields_metadata=metadata,
        full_text_fields=client.whole_text_fields(metadata, fields),
        bulk_fields=[name for name in fields if name not in ("Modified_Time", RICH)],
        sliced=sliced,
        bulk_options={"poll_first": 0.2, "poll_max": 0.4},
    )
    got: dict[str, dict[str, Any]] = {}
    for page in join:
        for record in page:
            assert record["id"] not in got, f"record {record['id']} came twice"
            got[record["id"]] = {column: record[column] for column in (*columns, "id")}
    assert raised
    expected = _read(client, "Leads", metadata, columns, fields)  # the records API, after the change
    _assert_same(expected, got)
    assert sum(1 for record in got.values() if record["$converted"]) > len(got) * 0.4
