"""Bulk Read gives the records API's records (docs/zoho-crm-api.md §4, §4.1): every field of every record.

The expectation is always what ``ZohoClient.iter_records`` (the records API) returns for the same window and
field list, compared with types (``json.dumps``), so ``850000`` and ``850000.0`` differ, on the requested
fields and ``id`` (the records API also sends Zoho's ``$`` keys, which a CSV has no column for). Which
records: the simulator's strict reading leaves converted records and records awaiting approval out of a job
(UNCONFIRMED, ``set_readings(bulk_includes_hidden=…)``), so the expectation holds the records the records
API marks neither (``$converted``, ``$approved``); ``test_bulk_join.py`` checks that a window read through
the client gets the others too. The field lists are the modules' full listable lists (``listable_fields``;
rich text included: the CSV carries it whole, as the records API route stores it), ``Tag`` included: its
cell holds names, which the module's tags (``/settings/tags``) turn back into ``{"name", "id"}``; ``Layout``
too: its cell holds the id, which the module's layouts (``/settings/layouts``) name.
"""

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from zoho_dagster.client import ZohoClient, listable_fields
from zoho_dagster.client.bulk import (
    BulkReader,
    BulkUnavailable,
    bulk_exportable,
)
from zoho_dagster.client.errors import ZohoAPIError
from zoho_dagster.client.http import Need
from zoho_dagster.simulator import RunningSimulator, run_simulator
from zoho_dagster_tests.client.conftest import ClientFactory
from zoho_dagster_tests.client.helpers import WIDE_END, WIDE_START, is_hidden_by_default, utc

JOB_PAGE = 1_000
"""The job page size of ``paged_simulator`` (Zoho's is 200,000): three jobs read its Contacts."""
CATALOG = (
    "Leads",
    "Contacts",
    "Accounts",
    "Deals",
    "Tasks",
    "Events",
    "Calls",
    "Campaigns",
    "Products",
    "Quotes",
    "Vendors",
)
"""The standard modules of docs/zoho-crm-api.md §3.1 that Bulk Read serves (Notes it refuses)."""
TAGS_ENDPOINT = "GET /crm/v6/settings/tags"


@pytest.fixture(scope="module")
def paged_simulator() -> Iterator[RunningSimulator]:
    """A simulator whose Bulk Read jobs hold 1,000 records a page, to page through jobs on 2,500 records.

    The variable is set only while the process starts, so simulators started later keep Zoho's 200,000.
    """
    with contextlib.ExitStack() as stack:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("ZOHO_SIMULATOR_BULK_PER_PAGE", str(JOB_PAGE))
            running = stack.enter_context(run_simulator(seed=3))
        yield running


@pytest.fixture(scope="module")
def simulator_5000() -> Iterator[RunningSimulator]:
    """A simulator with 5,000-odd live Leads, to measure what one 5,000-record window costs each way."""
    with run_simulator(seed=5, records=5_100) as running:
        yield running


def _need(module: str) -> Need:
    return Need(f"ZohoCRM.modules.{module.lower()}.READ", f"the {module} records")


def _reader(
    client: ZohoClient,
    module: str,
    fields: list[str],
    start: datetime = WIDE_START,
    end: datetime = WIDE_END,
    **options: Any,
) -> BulkReader:
    options.setdefault("poll_first", 0.2)
    options.setdefault("poll_max", 0.4)
    return BulkReader(client.http, module, fields, start, end, _need(module), **options)


def _full_fields(client: ZohoClient, module: str) -> list[str]:
    """Every field the records API lists for ``module``, all of which Bulk Read must export."""
    metadata = listable_fields(client.list_fields(module))
    fields, records_only = bulk_exportable(metadata)
    assert records_only == []
    assert "Tag" in fields and "Layout" in fields
    return fields


def _rich_text(metadata: list[dict[str, Any]]) -> list[str]:
    """The rich-text fields (metadata ``textarea.type``): a list answer cuts them (docs/zoho-crm-api.md
    §2.5)."""
    return [meta["api_name"] for meta in metadata if (meta.get("textarea") or {}).get("type") == "rich_text"]


def _listed(
    client: ZohoClient,
    module: str,
    start: datetime,
    end: datetime,
    fields: list[str],
    metadata: list[dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The records API's records of the window that a job exports under the simulator's strict reading
    (neither converted nor awaiting approval, by the records API's own ``$`` keys): requested fields, id."""
    # With the fields metadata the records API route reads rich text whole, as the CSV carries it.
    metadata = client.list_fields(module) if metadata is None else metadata
    records = _by_id(client.iter_records(module, start, end, fields, metadata))
    return {
        rid: {key: record[key] for key in (*fields, "Modified_Time", "id") if key in record}
        for rid, record in records.items()
        if not is_hidden_by_default(record)
    }


def _tag_objects(client: ZohoClient, module: str) -> list[dict[str, str]]:
    """The module's tags as a record's ``Tag`` holds them."""
    body = client.http.get("/settings/tags", Need("ZohoCRM.settings.tags.READ", "tags"), {"module": module})
    return [{"name": tag["name"], "id": tag["id"]} for tag in (body.body or {})["tags"]]


def _assert_tags_covered(records: dict[str, dict[str, Any]]) -> None:
    """The comparison saw records with several tags and records with none."""
    counts = [len(record["Tag"]) for record in records.values()]
    assert 0 in counts and max(counts) >= 2, counts


def _by_id(pages: Iterable[list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    for page in pages:
        for record in page:
            assert record["id"] not in records, f"record {record['id']} came twice"
            records[record["id"]] = record
    return records


def _assert_same(expected: dict[str, dict[str, Any]], got: dict[str, dict[str, Any]]) -> None:
    """Same ids, same keys, same values of the same JSON types, for every record."""
    assert got.keys() == expected.keys()
    for rid, record in expected.items():
        if json.dumps(got[rid], sort_keys=True) != json.dumps(record, sort_keys=True):
            diff = {
                key: (record.get(key), got[rid].get(key))
                for key in record.keys() | got[rid].keys()
                if json.dumps(record.get(key)) != json.dumps(got[rid].get(key))
            }
            raise AssertionError(f"record {rid} differs (records API, Bulk Read): {diff}")


def _both_ways(
    client: ZohoClient,
    module: str,
    fields: list[str],
    start: datetime = WIDE_START,
    end: datetime = WIDE_END,
    **options: Any,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], BulkReader]:
    expected = _listed(client, module, start, end, fields, options.get("fields_metadata"))
    reader = _reader(client, module, fields, start, end, **options)
    return expected, _by_id(reader), reader


def _clock_sleep(simulator: RunningSimulator, waits: list[float]) -> Callable[[float], None]:
    """A ``sleep`` for the reader: short waits really sleep, a minute or more moves the simulator's clock."""

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if seconds >= 60:
            simulator.control.advance_clock(seconds)
        else:
            time.sleep(min(seconds, 0.4))

    return sleep


def test_every_catalog_module_is_bulk_readable_with_all_its_listable_fields(
    simulator: RunningSimulator, make_client: ClientFactory
) -> None:
    client = make_client()
    for module in CATALOG:
        fields, records_only = bulk_exportable(listable_fields(client.list_fields(module)))
        assert records_only == [], module
        assert "Tag" in fields and "Layout" in fields, module
    assert _rich_text(listable_fields(client.list_fields("Leads")))  # Leads' rich text is exported too


def test_leads_with_all_their_fields_come_back_identical(
    simulator: RunningSimulator, make_client: ClientFactory
) -> None:
    client = make_client()
    fields = _full_fields(client, "Leads")
    assert len(fields) > 50  # the records API reads them in two passes; Bulk Read in one job
    simulator.control.reset_stats()
    expected, got, reader = _both_ways(client, "Leads", fields)
    assert len(expected) > 1500  # of 2,500: about 30% converted and 5% awaiting approval are left out
    _assert_same(expected, got)
    _assert_tags_covered(got)
    assert len(reader.jobs) == 1
    assert simulator.control.stats()["by_endpoint"][TAGS_ENDPOINT] == 1  # one tags call for the window
    sample = next(iter(got.values()))
    assert set(sample) == {*fields, "id"}


@pytest.mark.parametrize("module", ["Contacts", "Deals", "Accounts"])
def test_other_modules_with_all_their_fields_come_back_identical(
    simulator: RunningSimulator, make_client: ClientFactory, module: str
) -> None:
    client = make_client()
    fields = _full_fields(client, module)
    expected, got, _ = _both_ways(client, module, fields)
    assert len(expected) > 1000
    _assert_same(expected, got)
    _assert_tags_covered(got)


def test_window_is_start_inclusive_end_exclusive_to_the_microsecond(
    simulator: RunningSimulator, make_client: ClientFactory
) -> None:
    client = make_client()
    truth = simulator.control.truth("Contacts")["data"]
    times = sorted({utc(record["Modified_Time"]) for record in truth})
    start, end = times[len(times) // 4], times[len(times) // 2]  # both are real records' Modified_Time
    fields = ["Last_Name", "Account_Name", "Owner"]
    expected, got, _ = _both_ways(client, "Contacts", fields, start, end)
    _assert_same(expected, got)
    assert any(utc(r["Modified_Time"]) == start for r in got.values())
    assert all(start <= utc(r["Modified_Time"]) < end for r in got.values())
    nudged = (start + timedelta(microseconds=1), end + timedelta(microseconds=1))
    expected, got, _ = _both_ways(client, "Contacts", fields, *nudged)
    _assert_same(expected, got)
    assert not any(utc(r["Modified_Time"]) == start for r in got.values())  # start + 1 µs leaves it out
    assert any(utc(r["Modified_Time"]) == end for r in got.values())  # end + 1 µs takes it in


def test_records_written_through_the_api_come_back_identical(
    simulator: RunningSimulator, make_client: ClientFactory
) -> None:
    """Sparse records (nulls everywhere), awkward text, an integral currency, a cleared multi-select, every
    tag in an order of its own and a record whose tags were all taken off."""
    client = make_client()
    control = simulator.control
    tags = _tag_objects(client, "Leads")
    assert len(tags) >= 3
    sparse = control.create("Leads", {"Last_Name": "Sparse"})
    tagged = control.create("Leads", {"Last_Name": "Tagged", "Tag": [*reversed(tags)]})
    awkward = control.create(
        "Leads",
        {
            "Last_Name": "Müller",
            "First_Name": 'Zoë "Z"',
            "Description": 'Line one, with commas; and a "quote"\nline two\r\nline three',
            "Annual_Revenue": 5000,
            "Weight_Kg__c": 0.1,
            "Products_Of_Interest__c": ["CRM", "Sign"],
            "Interests__c": [],
            "Is_Partner__c": False,
        },
    )
    first_lead = control.truth("Leads")["data"][0]["id"]
    control.update(
        "Leads", first_lead, {"Products_Of_Interest__c": None, "Referral_Account__c": None, "Tag": []}
    )
    fields = _full_fields(client, "Leads")
    start = utc(control.truth("Leads")["data"][-1]["Modified_Time"]) - timedelta(days=1)
    expected, got, _ = _both_ways(client, "Leads", fields, start, WIDE_END)
    assert {sparse, awkward, first_lead, tagged} <= got.keys()
    _assert_same(expected, got)
    assert got[awkward]["Annual_Revenue"] == 5000 and isinstance(got[awkward]["Annual_Revenue"], int)
    assert got[first_lead]["Products_Of_Interest__c"] == [] and got[first_lead]["Tag"] == []
    assert got[tagged]["Tag"] == [*reversed(tags)] and got[sparse]["Tag"] == []


def test_job_pages_are_followed_while_more_records(
    paged_simulator: RunningSimulator, make_client: ClientFactory
) -> None:
    client = make_client(org=paged_simulator.primary)
    fields = _full_fields(client, "Contacts")
    paged_simulator.control.reset_stats()
    expected, got, reader = _both_ways(client, "Contacts", fields)
    assert len(expected) > 2 * JOB_PAGE
    _assert_same(expected, got)
    assert len(reader.jobs) == 3
    by_endpoint = paged_simulator.control.stats()["by_endpoint"]
    assert by_endpoint["POST /crm/bulk/v6/read"] == 3
    assert sum(n for e, n in by_endpoint.items() if e.endswith("/result")) == 3
    assert by_endpoint[TAGS_ENDPOINT] == 1  # the tags are read once for the reader, not once a job


def test_a_5000_record_window_costs_far_fewer_credits(
    simulator_5000: RunningSimulator, make_client: ClientFactory
) -> None:
    client = make_client(org=simulator_5000.primary)
    fields = _full_fields(client, "Leads")
    truth = simulator_5000.control.truth("Leads")["data"]
    times = sorted(utc(record["Modified_Time"]) for record in truth)
    start, end = times[0], times[5_000] if len(times) > 5_000 else WIDE_END
    spent: dict[str, dict[str, int]] = {}
    pages: dict[str, dict[str, dict[str, Any]]] = {}
    for way in ("records API", "Bulk Read"):
        simulator_5000.control.reset_stats()
        calls, credits = client.stats.calls, client.stats.credits
        if way == "records API":
            pages[way] = _listed(client, "Leads", start, end, fields)
        else:
            pages[way] = _by_id(_reader(client, "Leads", fields, start, end))
        simulator_side = simulator_5000.control.stats()
        spent[way] = {
            "client calls": client.stats.calls - calls,
            "client credits": client.stats.credits - credits,
            "simulator requests": simulator_side["total_requests"],
            "simulator credits": simulator_side["total_credits"],
            "tags calls": simulator_side["by_endpoint"].get(TAGS_ENDPOINT, 0),
        }
    print(f"\n{len(pages['Bulk Read'])} Leads x {len(fields)} fields: {json.dumps(spent)}")
    assert 3_000 < len(pages["Bulk Read"]) < 5_000  # the window's 5,000 less those the job leaves out
    _assert_same(pages["records API"], pages["Bulk Read"])
    records_api, bulk = spent["records API"], spent["Bulk Read"]
    assert records_api["simulator credits"] >= 2 * 5_000 // 200  # two 50-field passes of 200 a page
    assert bulk["simulator credits"] <= 10 and bulk["client credits"] == bulk["simulator credits"]
    assert bulk["client calls"] == bulk["simulator requests"]  # the tags call is counted like the others
    assert bulk["tags calls"] == 1 and records_api["tags calls"] == 0
    assert bulk["simulator credits"] * 5 < records_api["simulator credits"]
    _assert_tags_covered(pages["Bulk Read"])


def test_a_blocked_download_waits_a_minute_and_retries(
    simulator: RunningSimulator, make_client: ClientFactory
) -> None:
    client = make_client()
    fields = ["Vendor_Name", "Email", "Owner"]
    warm = _reader(client, "Vendors", fields)
    assert _by_id(warm)
    path = f"/crm/bulk/v6/read/{warm.jobs[0]}/result"
    headers = {"Authorization": f"Zoho-oauthtoken {client.tokens.token().value}"}
    for _ in range(9):  # ten downloads in this minute with the warm-up's: the next is refused
        answer = requests.get(simulator.primary["api_domain"] + path, headers=headers, timeout=30)
        assert answer.status_code == 200
    waits: list[float] = []
    expected, got, reader = _both_ways(client, "Vendors", fields, sleep=_clock_sleep(simulator, waits))
    _assert_same(expected, got)
    assert waits.count(60.0) == 1 and len(reader.jobs) == 1


def test_a_result_gone_before_its_download_makes_a_new_job(
    simulator: RunningSimulator, make_client: ClientFactory
) -> None:
    client = make_client()
    waits: list[float] = []
    moved = False

    def sleep(seconds: float) -> None:
        nonlocal moved
        waits.append(seconds)
        if not moved:  # the first poll wait lasts 25 hours: the result expires after its day (§4.1)
            moved = True
            simulator.control.advance_clock(25 * 3600)
        time.sleep(min(seconds, 0.4))

    fields = ["Last_Name", "Email", "Account_Name"]
    expected, got, reader = _both_ways(client, "Contacts", fields, sleep=sleep)
    _assert_same(expected, got)
    assert len(reader.jobs) == 2


def test_a_failed_job_is_created_again(simulator: RunningSimulator, make_client: ClientFactory) -> None:
    client = make_client()
    fields = ["Deal_Name", "Amount", "Stage"]
    expected = _listed(client, "Deals", WIDE_START, WIDE_END, fields)
    reader = _reader(client, "Deals", fields)
    real = reader._job_detail
    failed: list[str] = []

    def fails_once(body: dict[str, Any]) -> dict[str, Any]:
        job = real(body)
        if not failed and job["state"] == "COMPLETED":  # Zoho's failure state, spelling UNCONFIRMED (§4)
            failed.append(job["id"])
            return {**job, "state": "FAILURE", "result": None}
        return job

    reader._job_detail = fails_once  # type: ignore[method-assign]
    _assert_same(expected, _by_id(reader))
    assert len(reader.jobs) == 2 and reader.jobs[0] == failed[0]


def test_transient_faults_are_retried(simulator: RunningSimulator, make_client: ClientFactory) -> None:
    client = make_client()
    fields = _full_fields(client, "Deals")
    expected = _listed(client, "Deals", WIDE_START, WIDE_END, fields)
    simulator.control.set_faults(rate=0.25, kinds=["500", "503", "reset", "truncate"], seed=11)
    try:
        got = _by_id(_reader(client, "Deals", fields, sleep=_clock_sleep(simulator, [])))
    finally:
        simulator.control.clear_faults()
    _assert_same(expected, got)


def test_notes_are_refused_so_the_caller_can_use_the_records_api(
    simulator: RunningSimulator, make_client: ClientFactory
) -> None:
    client = make_client()
    fields, _ = bulk_exportable(client.list_fields("Notes"))
    reader = _reader(client, "Notes", [name for name in fields if name != "Tag"])
    with pytest.raises(BulkUnavailable) as refused:
        next(iter(reader))
    assert refused.value.code == "MODULE_NOT_AVAILABLE"
    with pytest.raises(BulkUnavailable) as refused:  # with Tag, the tags API refuses first: no job at all
        next(iter(_reader(client, "Notes", fields)))
    assert refused.value.code == "INVALID_MODULE" and refused.value.fields == ("Tag",)


def test_fields_a_csv_cannot_carry_are_refused_before_any_call(
    simulator: RunningSimulator, make_client: ClientFactory
) -> None:
    client = make_client()
    metadata = client.list_fields("Leads")
    calls = client.stats.calls
    reader = _reader(client, "Leads", ["Last_Name", "Tag", "$approval_state"], fields_metadata=metadata)
    with pytest.raises(BulkUnavailable) as refused:
        next(iter(reader))
    assert refused.value.fields == ("$approval_state",)
    assert client.stats.calls == calls  # not even the tags: the refusal comes first


def test_bulk_exportable_splits_by_what_a_csv_cell_carries() -> None:
    def meta(name: str, data_type: str, json_type: str | None, **extra: Any) -> dict[str, Any]:
        return {"api_name": name, "data_type": data_type, "json_type": json_type, **extra}

    fields = [
        meta("Last_Name", "text", "string"),
        meta("Seats", "integer", "integer"),
        meta("Revenue", "currency", "double"),
        meta("Opt_Out", "boolean", "boolean"),
        meta("Seen", "datetime", "string"),
        meta("Langs", "multiselectpicklist", "jsonarray"),
        meta("Owner", "ownerlookup", "jsonobject"),
        meta("Account_Name", "lookup", "jsonobject", lookup={"module": {"api_name": "Accounts"}}),
        meta("Score", "formula", "double", formula={"return_type": "double"}),
        meta("Tag", "text", "string"),
        meta("Product_Details", "text", "string"),
        meta("Items", "subform", "jsonarray"),
        meta("Colleagues", "multiuserlookup", "jsonarray"),
        meta("Files", "fileupload", "jsonarray"),
        meta("Layout", "layout", "jsonobject"),
        meta("Notes_Rich", "textarea", "string", textarea={"type": "rich_text"}),
        meta("Notes_Long", "textarea", "string", textarea={"type": "large"}),
        meta("Remind_At", "event_reminder", "string"),
        meta("Broken__c", "text", None),
        meta("Orphan_Lookup", "lookup", "jsonobject", lookup={}),
    ]
    bulk, records_only = bulk_exportable(fields)
    assert bulk == [
        "Last_Name",
        "Seats",
        "Revenue",
        "Opt_Out",
        "Seen",
        "Langs",
        "Owner",
        "Account_Name",
        "Score",
        "Tag",
        "Layout",
        "Notes_Rich",
        "Notes_Long",
    ]
    assert records_only == [
        "Product_Details",
        "Items",
        "Colleagues",
        "Files",
        "Remind_At",
        "Broken__c",
        "Orphan_Lookup",
    ]


def test_pages_stream_out_before_the_csv_is_read_through(
    simulator: RunningSimulator, make_client: ClientFactory
) -> None:
    client = make_client()
    fields = _full_fields(client, "Leads")
    reader = _reader(client, "Leads", fields, page_size=100)
    pages = iter(reader)
    first = next(pages)
    assert len(first) == 100
    assert reader.rows_read == 100  # one page parsed of the 1,500-odd rows in the file
    rest = sum(len(page) for page in pages)
    assert reader.rows_read == 100 + rest > 1500


def test_an_empty_window_creates_one_job_and_downloads_nothing(
    simulator: RunningSimulator, make_client: ClientFactory
) -> None:
    client = make_client()
    simulator.control.reset_stats()
    reader = _reader(client, "Leads", ["Last_Name"], WIDE_END, WIDE_END + timedelta(days=1))
    assert list(reader) == []
    by_endpoint = simulator.control.stats()["by_endpoint"]
    assert by_endpoint["POST /crm/bulk/v6/read"] == 1
    assert not [endpoint for endpoint in by_endpoint if endpoint.endswith("/result")]
    assert list(_reader(client, "Leads", ["Last_Name"], WIDE_START, WIDE_START)) == []


def test_the_tags_are_read_only_when_tag_is_wanted(
    simulator: RunningSimulator, make_client: ClientFactory
) -> None:
    client = make_client()
    for fields, reads in ((["Last_Name", "Email"], 0), (["Last_Name", "Tag"], 1)):
        simulator.control.reset_stats()
        calls = client.stats.calls
        expected, got, _ = _both_ways(client, "Contacts", fields)
        _assert_same(expected, got)
        by_endpoint = simulator.control.stats()["by_endpoint"]
        assert by_endpoint.get(TAGS_ENDPOINT, 0) == reads
        api_calls = sum(n for endpoint, n in by_endpoint.items() if "/oauth/" not in endpoint)
        assert client.stats.calls - calls == api_calls  # the tags call is counted like every other


def test_a_tag_created_after_the_tags_were_read_is_found_by_reading_them_once_more(
    simulator: RunningSimulator, make_client: ClientFactory
) -> None:
    client = make_client()
    stale = client.http.get("/settings/tags", Need("ZohoCRM.settings.tags.READ", "tags"), {"module": "Deals"})
    known = (stale.body or {})["tags"]
    fresh = {"name": "Board Review", "id": str(int(known[0]["id"]) + 1_000_000)}
    deal = simulator.control.truth("Deals")["data"][0]["id"]
    first = {"name": known[0]["name"], "id": known[0]["id"]}
    simulator.control.update("Deals", deal, {"Tag": [first, fresh]})
    fields = ["Deal_Name", "Tag"]
    simulator.control.reset_stats()
    expected, got, _ = _both_ways(client, "Deals", fields, tags_metadata=known)
    _assert_same(expected, got)
    assert got[deal]["Tag"][-1] == fresh
    assert simulator.control.stats()["by_endpoint"][TAGS_ENDPOINT] == 1  # the one read again

    reader = _reader(client, "Deals", fields, tags_metadata=known)
    reader._read_tags = lambda: known  # type: ignore[method-assign]  # a tag renamed or deleted since
    with pytest.raises(ZohoAPIError, match="Board Review"):
        _by_id(reader)


@pytest.mark.parametrize(
    "names",
    [["Hot", "Warm, not hot"], ["Hot", "VIP", "Hot"]],
    ids=["a comma in a name", "two tags of one name"],
)
def test_tags_a_cell_cannot_tell_apart_are_refused_before_any_call(
    simulator: RunningSimulator, make_client: ClientFactory, names: list[str]
) -> None:
    client = make_client()
    metadata = client.list_fields("Leads")
    tags = [{"name": name, "id": str(4_150_868_000_000_000_001 + n)} for n, name in enumerate(names)]
    calls = client.stats.calls
    reader = _reader(client, "Leads", ["Last_Name", "Tag"], fields_metadata=metadata, tags_metadata=tags)
    with pytest.raises(BulkUnavailable) as refused:
        next(iter(reader))
    assert refused.value.fields == ("Tag",) and refused.value.code == "FIELD_NOT_AVAILABLE"
    assert client.stats.calls == calls and reader.jobs == []


def test_a_token_without_the_tags_scope_leaves_tag_to_the_records_api(
    simulator: RunningSimulator, make_client: ClientFactory
) -> None:
    metadata = make_client().list_fields("Leads")
    client = make_client(scopes="ZohoCRM.modules.ALL,ZohoCRM.bulk.ALL")
    reader = _reader(client, "Leads", ["Last_Name", "Tag"], fields_metadata=metadata)
    with pytest.raises(BulkUnavailable) as refused:
        next(iter(reader))
    assert refused.value.fields == ("Tag",) and refused.value.code == "OAUTH_SCOPE_MISMATCH"
    assert reader.jobs == []
    fields = ["Last_Name", "Email"]  # without Tag, the same token still reads the window in bulk
    expected, got, _ = _both_ways(client, "Leads", fields, fields_metadata=metadata)
    _assert_same(expected, got)


def test_the_permissive_reading_exports_converted_and_awaiting_records_too(
    simulator: RunningSimulator, make_client: ClientFactory
) -> None:
    """Whether a job exports them is UNCONFIRMED; read either way, a CSV row is the records API's record."""
    client = make_client()
    fields = _full_fields(client, "Leads")
    every = _by_id(client.iter_records("Leads", WIDE_START, WIDE_END, fields, client.list_fields("Leads")))
    expected = {rid: {k: r[k] for k in (*fields, "Modified_Time", "id")} for rid, r in every.items()}
    simulator.control.set_readings(bulk_includes_hidden=True)
    try:
        got = _by_id(_reader(client, "Leads", fields))
    finally:
        simulator.control.set_readings(bulk_includes_hidden=False)
    _assert_same(expected, got)
    assert any(record["Converted__s"] for record in got.values())


def test_a_layout_id_the_layouts_list_lacks_is_never_named(
    simulator: RunningSimulator, make_client: ClientFactory
) -> None:
    """Strictest (docs/zoho-crm-api.md §4.1): no name is made up for a layout id ``/settings/layouts`` does
    not list. A whole read fails; a ``partial`` one leaves ``Layout`` out of those records, for another route.
    """
    client = make_client()
    answer = client.http.get(
        "/settings/layouts", Need("ZohoCRM.settings.layouts.READ", "layouts"), {"module": "Deals"}
    )
    layouts = (answer.body or {})["layouts"]
    assert {layout["name"] for layout in layouts} == {"Standard", "Partner"}
    standard = [layout for layout in layouts if layout["name"] == "Standard"]
    fields = ["Deal_Name", "Layout"]
    with pytest.raises(ZohoAPIError, match="Layout"):
        _by_id(_reader(client, "Deals", fields, layouts_metadata=standard))
    expected = _listed(client, "Deals", WIDE_START, WIDE_END, fields)
    got = _by_id(_reader(client, "Deals", fields, layouts_metadata=standard, partial=True))
    assert got.keys() == expected.keys()
    for rid, record in expected.items():
        if record["Layout"]["name"] == "Partner":
            assert "Layout" not in got[rid]
            got[rid]["Layout"] = record["Layout"]
    _assert_same(expected, got)
    assert any(record["Layout"]["name"] == "Partner" for record in expected.values())
