"""Reading a module's ``Modified_Time`` window ``[start, end)`` with Bulk Read jobs (docs/zoho-crm-api.md §4).

Why: the records API costs a credit per 200 records *per 50-field pass* (a 70-field module is read twice),
while one Bulk Read job exports 200,000 records with every field for a few calls. ``BulkReader`` yields what
``WindowReader`` yields for the same window and fields — pages of records in the records API's JSON shape
holding exactly the requested fields, ``Modified_Time`` and ``id`` — so the caller can choose either path by
window size and get the same rows.

How (the CSV conventions are the strict readings of docs/zoho-crm-api.md §4.1):

- one job per 200,000 records (``page=1,2,…`` while ``more_records``), criteria ``Modified_Time between
  [ceil(start), ceil(end) - 1 s]``: Zoho's ``between`` is inclusive and takes no milliseconds, and
  ``Modified_Time`` has whole seconds, so that is exactly ``start <= Modified_Time < end``;
- a lookup or user column carries only the id; its name (and a user's email) come as dot-notation columns and
  are put back together as ``{"name", "id"[, "email"]}``; every other cell is converted by the field's
  ``json_type``; an empty cell is ``null`` (``[]`` for a multi-select and for ``Tag``);
- ``Tag`` is a cell of tag names joined by ``,``: each name becomes the records API's ``{"name", "id"}``
  through the module's tags (``GET /crm/v6/settings/tags?module=…``: one call per reader, only when ``Tag``
  is wanted, and once more if the CSV names a tag created since); tags whose names a cell could not tell
  apart (a comma in a name, two tags of one name) make ``Tag`` unavailable before any job is created;
- status is polled with a growing pause; the ZIP goes to a temporary file and its CSV member is parsed row by
  row, so memory holds a page of records, never the file or the window;
- a 429 on a download (10 downloads a minute) waits a minute and retries; a job that fails, never finishes or
  whose result is gone (404) is created again, a bounded number of times;
- what Bulk Read cannot serve raises ``BulkUnavailable`` so the caller reads the window with the records API:
  modules it refuses (Notes: ``MODULE_NOT_AVAILABLE``), fields it refuses or a CSV cell cannot carry
  faithfully (``bulk_exportable``), a token without the bulk scope (or, for ``Tag``, without the tags
  scope), an edition without Bulk Read.

Every attempt is counted in ``http.stats`` as ``ZohoHttp.get`` counts its own: a call each, and
``BULK_CALL_COST`` credits for an answered one (Bulk Read's cost is UNCONFIRMED, docs/zoho-crm-api.md §4).
The calls use the ``ZohoHttp``'s session, token provider, limiter and retry policy: ``ZohoHttp.get`` serves
only JSON GETs under ``/crm/v6``, and Bulk Read needs a JSON POST, GETs under ``/crm/bulk/v6`` and a binary
download.
"""

import csv
import io
import json
import logging
import re
import tempfile
import time
import zipfile
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

import requests

from zoho_dagster.client.auth import AccessToken
from zoho_dagster.client.errors import (
    TRANSPORT_ERRORS,
    ZohoAPIError,
    ZohoCreditsExhausted,
    ZohoPermissionError,
    ZohoTransientError,
)
from zoho_dagster.client.http import CREDITS_MESSAGE, Need, ZohoHttp, error_fields
from zoho_dagster.client.records import CURSOR_FIELD, Record
from zoho_dagster.client.redact import redact
from zoho_dagster.client.timeutil import as_utc, header_datetime, parse_datetime

log = logging.getLogger(__name__)

BULK_READ_PATH = "/crm/bulk/v6/read"
JOB_PAGE_SIZE = 200_000
"""Records per job page, fixed by Zoho (docs/zoho-crm-api.md §4): the reader follows ``more_records``."""
PAGE_SIZE = 2_000
BULK_CALL_COST = 1
"""Credits per answered create, status or download call: UNCONFIRMED (docs/zoho-crm-api.md §4, §4.1)."""
DOWNLOAD_LIMIT_WAIT = 60.0
"""Downloads are blocked for a minute after the eleventh in a minute (docs/zoho-crm-api.md §4)."""
MAX_DOWNLOAD_WAITS = 5
MAX_JOB_ATTEMPTS = 3
RUNNING_STATES = frozenset({"ADDED", "QUEUED", "IN PROGRESS"})
COMPLETED = "COMPLETED"
MULTISELECT_SEPARATOR = ";"
TAG_FIELD = "Tag"
TAG_SEPARATOR = ","
"""Between the tag names of a ``Tag`` cell. UNCONFIRMED (docs/zoho-crm-api.md §4.1): no source shows the cell;
``,`` is the separator of Zoho's own list of tag names (``actions/add_tags?tag_names=a,b``), so a name cannot
hold it there either, and a module whose tags do hold it is not read by Bulk Read at all."""
TAGS_PATH = "/settings/tags"
TAGS_SCOPE = "ZohoCRM.settings.tags.READ"
USER_PARTS = ("first_name", "last_name", "email")
SPOOL_BYTES = 8 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
MAX_REFRESHES_PER_CALL = 2

USER_LOOKUP_TYPES = frozenset({"ownerlookup", "userlookup"})
SCALAR_JSON_TYPES = frozenset({"string", "integer", "double", "boolean"})
RECORDS_API_ONLY_TYPES = frozenset(
    {
        "multi_module_lookup",
        "fileupload",
        "imageupload",
        "territories",
        "event_reminder",
        "ALARM",
        "RRULE",
        "multireminder",
        "consent_lookup",
    }
)
"""Arrays or objects with parts a CSV cell does not carry and no API maps back (docs/zoho-crm-api.md §3.3):
a file's or image's name, size and download id, a territory list, a reminder's or recurrence's parts, a
consent record. Subforms and multi-select and multi-user lookups are not listed: list reads leave them out
of a window's fields (they are child tables, ``client.LIST_UNSUPPORTED_TYPES``), and their ``jsonarray``
type refuses them here anyway. Nor is ``layout``: the CSV's id and ``/settings/layouts`` rebuild it."""
LAYOUT_TYPE = "layout"
LAYOUTS_PATH = "/settings/layouts"
LAYOUTS_SCOPE = "ZohoCRM.settings.layouts.READ"
"""Covered by ``ZohoCRM.settings.ALL``, one of the default scopes (docs/zoho-crm-api.md §4.1)."""
ARRAYS_DESPITE_METADATA = frozenset({"Product_Details", "Pricing_Details"})
"""Arrays of objects although their metadata says text (docs/zoho-crm-api.md §3.3, §7.11): a CSV cell would
hold the names only, and no API maps a line item's name back to its object. ``Tag`` is the same kind of array,
but the tags API maps its names back to ``{"name", "id"}`` (``TAG_SEPARATOR``)."""
UNAVAILABLE_CODES = frozenset(
    {
        "MODULE_NOT_AVAILABLE",
        "FIELD_NOT_AVAILABLE",
        "OAUTH_SCOPE_MISMATCH",
        "NO_PERMISSION",
        "NOT_SUPPORTED",
        "FEATURE_NOT_ENABLED",
        "FEATURE_NOT_SUPPORTED",
    }
)
"""Refusals of a job's creation after which the records API may still read the window."""
TAGS_UNAVAILABLE_CODES = UNAVAILABLE_CODES | {"INVALID_MODULE"}
"""Refusals of ``/settings/tags`` after which the records API may still read ``Tag`` (``INVALID_MODULE``: the
module has no tags API, docs/zoho-crm-api.md §4.1)."""
LAYOUTS_UNAVAILABLE_CODES = TAGS_UNAVAILABLE_CODES | {
    "INVALID_DATA",
    "REQUIRED_PARAM_MISSING",
    "INVALID_URL_PATTERN",
}
"""Refusals of ``/settings/layouts`` after which another route reads ``Layout`` (docs/zoho-crm-api.md
§4.1)."""
NAME_FIELDS: Mapping[str, str] = {
    "Leads": "Full_Name",
    "Contacts": "Full_Name",
    "Accounts": "Account_Name",
    "Deals": "Deal_Name",
    "Campaigns": "Campaign_Name",
    "Products": "Product_Name",
    "Vendors": "Vendor_Name",
    "Price_Books": "Price_Book_Name",
    "Quotes": "Subject",
    "Sales_Orders": "Subject",
    "Purchase_Orders": "Subject",
    "Invoices": "Subject",
    "Cases": "Subject",
    "Solutions": "Solution_Title",
    "Tasks": "Subject",
    "Calls": "Subject",
    "Events": "Event_Title",
    "Notes": "Note_Title",
}
"""The field a lookup's ``name`` shows, per target module; custom modules name records by ``Name``."""
CUSTOM_NAME_FIELD = "Name"

_JSON_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_INTEGER = re.compile(r"-?\d+")
_CANONICAL_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")

Row = list[str]


class BulkUnavailable(ZohoAPIError):
    """Bulk Read cannot serve this read: read the window with the records API instead.

    ``fields`` names the fields at fault, when fields are the reason. Raised when a job is created (before any
    page for the first job); a caller falling back after pages were yielded reads them again, which the
    upserts downstream absorb.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        fields: Sequence[str] = (),
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.fields = tuple(fields)


class _DownloadLimited(Exception):
    """The download answered 429: Zoho blocks downloads for a minute (docs/zoho-crm-api.md §4)."""


# ------------------------------------------------------------------------------------------------ field plans


def _lookup_module(meta: Mapping[str, Any]) -> str | None:
    lookup = meta.get("lookup") or {}
    module = lookup.get("module") if isinstance(lookup, Mapping) else None
    name = module.get("api_name") if isinstance(module, Mapping) else None
    return str(name) if name else None


def _exportable(meta: Mapping[str, Any]) -> bool:
    """Whether a CSV cell (plus dot-notation columns) carries this field's records-API value exactly."""
    name = str(meta.get("api_name") or "")
    data_type = meta.get("data_type")
    json_type = meta.get("json_type")
    if not name or name.startswith("$") or name in ARRAYS_DESPITE_METADATA:
        return False
    if name == TAG_FIELD:
        return True  # whatever its metadata claims (§3.3): names in the cell, objects from the tags API
    if data_type in RECORDS_API_ONLY_TYPES:
        return False
    if data_type == LAYOUT_TYPE:
        return json_type == "jsonobject"  # the id in the cell, the name from /settings/layouts
    if data_type == "lookup":
        return json_type == "jsonobject" and _lookup_module(meta) is not None
    if data_type in USER_LOOKUP_TYPES:
        return json_type == "jsonobject"
    if data_type == "multiselectpicklist":
        return json_type == "jsonarray"
    # Rich text: the CSV carries the whole value, which the records API route also stores (it reads again what
    # the list cut, client/full_text.py), so the CSV stands for it (§4.1).
    return json_type in SCALAR_JSON_TYPES  # no json_type at all (§3.3 pitfall): do not guess


def bulk_exportable(fields_metadata: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """Split a module's fields (``/settings/fields`` dicts) into (Bulk Read can serve, records API only).

    A field is bulk-exportable when its records-API value can be rebuilt exactly from CSV cells: scalars by
    ``json_type``, multi-select picklists, lookups and user lookups (through dot-notation columns), ``Tag``
    (names in the cell, ``{"name", "id"}`` from the tags API) and ``Layout`` (the id in the cell, the name
    from the layouts API). File and image uploads, territories, reminders, consent lookups, multi-module
    lookups, the line items ``Product_Details`` and ``Pricing_Details`` and fields without a ``json_type``
    are not; a Bulk Read of the window reads them by another route (:mod:`zoho_dagster.client.bulk_join`),
    so none of them costs the module its Bulk Read. Rich text is exportable: the CSV's whole value is what
    the records API route stores too (docs/zoho-crm-api.md §4.1).
    """
    bulk: list[str] = []
    records_only: list[str] = []
    for meta in fields_metadata:
        name = str(meta.get("api_name") or "")
        if name:
            (bulk if _exportable(meta) else records_only).append(name)
    return bulk, records_only


@dataclass(frozen=True)
class _FieldPlan:
    """One requested field: its CSV columns and how their cells become the records-API value."""

    name: str
    kind: str  # lookup, user, tag, multiselect, datetime, integer, double, boolean, string
    columns: tuple[str, ...]


def _plan_field(meta: Mapping[str, Any], name_fields: Mapping[str, str]) -> _FieldPlan:
    name = str(meta["api_name"])
    data_type = meta.get("data_type")
    if name == TAG_FIELD:
        return _FieldPlan(name, "tag", (name,))
    if data_type == "lookup":
        target = _lookup_module(meta) or ""
        name_field = name_fields.get(target) or NAME_FIELDS.get(target) or CUSTOM_NAME_FIELD
        return _FieldPlan(name, "lookup", (name, f"{name}.{name_field}"))
    if data_type in USER_LOOKUP_TYPES:
        return _FieldPlan(name, "user", (name, *(f"{name}.{part}" for part in USER_PARTS)))
    if data_type == LAYOUT_TYPE:
        return _FieldPlan(name, "layout", (name,))
    if data_type == "multiselectpicklist":
        return _FieldPlan(name, "multiselect", (name,))
    if data_type == "datetime":
        return _FieldPlan(name, "datetime", (name,))
    return _FieldPlan(name, str(meta.get("json_type")), (name,))


class _BadCell(ValueError):
    """A CSV cell that is not what its field's type promises."""


class _Unresolved:
    """The value of a cell the client cannot turn into the records API's value (a layout id that
    ``/settings/layouts`` does not list): never guessed; the field is left out of the record, for another
    route to read (``BulkReader(partial=True)``), or the read fails."""

    def __repr__(self) -> str:
        return "UNRESOLVED"


UNRESOLVED = _Unresolved()


def _text(cell: str) -> str | None:
    return cell if cell else None


def _datetime(cell: str) -> str | None:
    """The cell as the records API renders a date-time: ISO-8601, whole seconds, numeric offset (§5).

    Strict reading (§4.1): the CSV carries the very string the records API renders, so a canonical value is
    passed through untouched (its offset included); anything else must at least parse with an offset.
    """
    if not cell or _CANONICAL_DATETIME.fullmatch(cell):
        return cell or None
    try:
        parse_datetime(cell)  # refuses a value without an offset
        parsed = datetime.fromisoformat(cell.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _BadCell(cell) from None
    return parsed.replace(microsecond=0).isoformat(timespec="seconds")


def _integer(cell: str) -> int | None:
    if not cell:
        return None
    if not _INTEGER.fullmatch(cell):
        raise _BadCell(cell)
    return int(cell)


def _double(cell: str) -> int | float | None:
    """The number a JSON parser makes of the same text: ``850000`` an int, ``850000.0`` a float (§4.1)."""
    if not cell:
        return None
    if not _JSON_NUMBER.fullmatch(cell):
        raise _BadCell(cell)
    value: int | float = json.loads(cell)
    return value


def _boolean(cell: str) -> bool | None:
    if not cell:
        return None
    lowered = cell.lower()
    if lowered not in ("true", "false"):
        raise _BadCell(cell)
    return lowered == "true"


def _multiselect(cell: str) -> list[str]:
    return cell.split(MULTISELECT_SEPARATOR) if cell else []


_SCALARS: dict[str, Callable[[str], Any]] = {
    "string": _text,
    "datetime": _datetime,
    "integer": _integer,
    "double": _double,
    "boolean": _boolean,
    "multiselect": _multiselect,
}


def _tags_by_name(module: str, tags: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """``/settings/tags`` entries by name, each as a record's ``Tag`` holds it: ``{"name", "id"}``, in order.

    The tags API adds ``color_code``, times and users; a record's tag has only ``name`` and ``id`` (docs/
    zoho-crm-api.md §5; whether Zoho also puts ``color_code`` there is UNCONFIRMED), so only those are kept.
    Names a ``Tag`` cell could not tell apart (one holding ``TAG_SEPARATOR``, two tags of one name; Zoho keeps
    names unique per module) make ``Tag`` unavailable, before any job is created.
    """
    by_name: dict[str, dict[str, str]] = {}
    clashing: list[str] = []
    for tag in tags:
        name, tag_id = tag.get("name"), tag.get("id")
        if not isinstance(name, str) or not name or tag_id in (None, ""):
            raise ZohoAPIError(f"{module}: /settings/tags lists a tag without a name or an id: {tag!r}")
        if TAG_SEPARATOR in name or name in by_name:
            clashing.append(name)
            continue
        by_name[name] = {"name": name, "id": str(tag_id)}
    if clashing:
        raise BulkUnavailable(
            f"{module}: a Bulk Read Tag cell joins tag names with {TAG_SEPARATOR!r}, which cannot tell apart "
            f"the tags {sorted(set(clashing))}; read Tag with the records API.",
            code="FIELD_NOT_AVAILABLE",
            fields=[TAG_FIELD],
        )
    return by_name


class _TagMap:
    """A module's tags by name, to turn a ``Tag`` cell back into the records API's list of objects (§4.1).

    ``reread`` reads ``/settings/tags`` again, once at most, when a cell names a tag the map lacks: one
    created between the map's read and the job's snapshot. A name still unknown then is an error, not a guess.
    """

    def __init__(
        self,
        module: str,
        tags: Sequence[Mapping[str, Any]],
        reread: Callable[[], Sequence[Mapping[str, Any]]] | None,
    ) -> None:
        self.module = module
        self.by_name = _tags_by_name(module, tags)
        self._reread = reread

    def objects(self, cell: str) -> list[dict[str, str]]:
        """The records API's ``Tag`` of a cell: ``[]`` when empty (an untagged record's ``Tag``, §5)."""
        if not cell:
            return []
        return [dict(self._find(name)) for name in cell.split(TAG_SEPARATOR)]  # fresh dicts: no aliasing

    def _find(self, name: str) -> dict[str, str]:
        tag = self.by_name.get(name)
        if tag is None and self._reread is not None:
            reread, self._reread = self._reread, None
            self.by_name = _tags_by_name(self.module, reread())
            tag = self.by_name.get(name)
        if tag is None:
            raise ZohoAPIError(
                f"{self.module}: Bulk Read gave a record the tag {name!r}, which /settings/tags does not "
                "list even when read again (renamed or deleted since the job); read the window with the "
                "records API."
            )
        return tag


class LayoutMap:
    """A module's layouts by id, to turn a ``Layout`` cell (the id) into the records API's ``{"name", "id"}``.

    Strictest reading (docs/zoho-crm-api.md §4.1): a cell holding an id the layouts list lacks (a layout made
    after the list was read) is ``UNRESOLVED``, never a made-up name; so is a listed layout without a name.
    """

    def __init__(self, layouts: Sequence[Mapping[str, Any]]) -> None:
        self.names: dict[str, str] = {}
        for layout in layouts:
            layout_id, name = layout.get("id"), layout.get("name")
            if layout_id not in (None, "") and isinstance(name, str) and name:
                self.names[str(layout_id)] = name

    def value(self, cell: str) -> dict[str, str] | _Unresolved | None:
        if not cell:
            return None
        name = self.names.get(cell)
        return UNRESOLVED if name is None else {"name": name, "id": cell}


def read_layouts(http: ZohoHttp, module: str, fields: Sequence[str] = ("Layout",)) -> list[Mapping[str, Any]]:
    """``GET /settings/layouts?module=…`` (one call); ``BulkUnavailable`` naming ``fields`` when refused.

    Scope ``ZohoCRM.settings.layouts.READ`` (or ``ZohoCRM.settings.ALL``); 204 means no layouts.
    """
    try:
        answer = http.get(
            LAYOUTS_PATH, Need(LAYOUTS_SCOPE, f"the layouts of {module}"), params={"module": module}
        )
    except ZohoAPIError as error:
        if isinstance(error, ZohoCreditsExhausted) or error.code not in LAYOUTS_UNAVAILABLE_CODES:
            raise
        raise BulkUnavailable(
            f"{module}: the layouts that name a Bulk Read Layout cell's id cannot be read ({error.code}): "
            f"{error}; read {', '.join(fields)} by another route.",
            code=error.code,
            status=error.status,
            fields=fields,
        ) from None
    layouts = (answer.body or {}).get("layouts") or []
    if not isinstance(layouts, list) or not all(isinstance(layout, Mapping) for layout in layouts):
        raise ZohoAPIError(f"{module}: /settings/layouts answered no list of layouts")
    return layouts


def _compile(
    plan: _FieldPlan,
    index: Mapping[str, int],
    tags: _TagMap | None = None,
    layouts: LayoutMap | None = None,
) -> Callable[[Row], Any]:
    """A function from a CSV row to the field's records-API value, the header's column positions bound."""
    positions = [index[column] for column in plan.columns]
    if plan.kind == "tag":
        if tags is None:
            raise ValueError("a Tag column needs the module's tags")
        (at_tags,) = positions
        return lambda row: tags.objects(row[at_tags])
    if plan.kind == "layout":
        if layouts is None:
            raise ValueError("a Layout column needs the module's layouts")
        (at_layout,) = positions
        return lambda row: layouts.value(row[at_layout])
    if plan.kind == "lookup":
        at_id, at_name = positions

        def lookup(row: Row) -> dict[str, Any] | None:
            rid = row[at_id]
            return {"name": row[at_name] or None, "id": rid} if rid else None

        return lookup
    if plan.kind == "user":
        at_id, at_first, at_last, at_email = positions

        def user(row: Row) -> dict[str, Any] | None:
            uid = row[at_id]
            if not uid:
                return None
            # UNCONFIRMED (§4.1): the records API's user name is "first last", as Zoho's samples show.
            name = " ".join(part for part in (row[at_first], row[at_last]) if part)
            return {"name": name or None, "id": uid, "email": row[at_email] or None}

        return user
    convert = _SCALARS[plan.kind]
    (at,) = positions
    return lambda row: convert(row[at])


# ------------------------------------------------------------------------------------------------------- HTTP


class _BulkCalls:
    """Bulk Read calls with ``ZohoHttp``'s manners: its limiter, token provider (one refresh on
    ``INVALID_TOKEN``), retry policy for transient failures and its ``stats``."""

    def __init__(self, http: ZohoHttp, need: Need, sleep: Callable[[float], None]) -> None:
        self.http = http
        self.need = need
        self.sleep = sleep

    def json(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST/GET a JSON endpoint under ``/crm/bulk/v6``; the parsed answer."""
        result = self._call(method, path, body, None)
        assert isinstance(result, dict)
        return result

    def download(self, target: str, sink: IO[bytes]) -> None:
        """Stream a result into ``sink``; ``_DownloadLimited`` on 429, ``ZohoAPIError`` (404) when gone."""
        self._call("GET", target, None, sink)

    def _url(self, target: str, token: AccessToken) -> str:
        if target.startswith(("http://", "https://")):
            return target
        base = self.http.api_domain_override or token.api_domain or self.http.default_api_domain
        return base.rstrip("/") + target

    def _call(
        self, method: str, target: str, body: Mapping[str, Any] | None, sink: IO[bytes] | None
    ) -> dict[str, Any] | None:
        policy = self.http.policy
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(method, target, body, sink)
            except ZohoTransientError as error:
                if attempt > policy.max_retries:
                    raise
                log.debug("Retrying %s %s after %s (attempt %d).", method, target, error, attempt)
                self.sleep(policy.backoff(attempt, error.retry_after))

    def _attempt(
        self, method: str, target: str, body: Mapping[str, Any] | None, sink: IO[bytes] | None
    ) -> dict[str, Any] | None:
        token = self.http.provider.token()
        response = self._send(method, target, body, sink, token)
        refreshes = 0
        while response.status_code == 401 and refreshes < MAX_REFRESHES_PER_CALL:
            if error_fields(response)[0] != "INVALID_TOKEN":
                break
            self.http.stats.add(calls=1, credits=0)
            refreshes += 1
            log.info("Zoho rejected the access token (INVALID_TOKEN); refreshing it.")
            token = self.http.provider.token(rejected=token.value)
            response = self._send(method, target, body, sink, token)
        return self._interpret(method, target, response, sink)

    def _send(
        self,
        method: str,
        target: str,
        body: Mapping[str, Any] | None,
        sink: IO[bytes] | None,
        token: AccessToken,
    ) -> requests.Response:
        headers = {"Authorization": f"Zoho-oauthtoken {token.value}"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"  # without it Zoho answers 415 (§4)
            data = json.dumps(body).encode()
        with self.http.limiter.slot():
            try:
                response = self.http.session.request(
                    method,
                    self._url(target, token),
                    data=data,
                    headers=headers,
                    timeout=self.http.policy.timeout,
                    stream=sink is not None,
                )
                if sink is not None and response.status_code == 200:
                    sink.seek(0)
                    sink.truncate()
                    for chunk in response.iter_content(CHUNK_BYTES):
                        sink.write(chunk)  # a cut-off body raises here (Content-Length is enforced)
                else:
                    _ = response.content
            except TRANSPORT_ERRORS as exc:
                self.http.stats.add(calls=1, credits=0)
                raise ZohoTransientError(
                    f"{method} {target} failed in transit ({type(exc).__name__}: {redact(exc)})"
                ) from None
        return response

    def _interpret(
        self, method: str, target: str, response: requests.Response, sink: IO[bytes] | None
    ) -> dict[str, Any] | None:
        status = response.status_code
        if status < 300:
            self.http.stats.add(calls=1, credits=BULK_CALL_COST)
            if sink is not None:
                return None
            try:
                body = response.json()
            except ValueError:
                raise ZohoTransientError(
                    f"{method} {target} returned a truncated body", status=status
                ) from None
            if not isinstance(body, dict):
                raise ZohoAPIError(f"{method} {target} returned JSON that is not an object", status=status)
            return body
        self.http.stats.add(calls=1, credits=0)
        code, message, details = error_fields(response)
        message = redact(message)
        if status == 429:
            if CREDITS_MESSAGE.search(message):
                raise ZohoCreditsExhausted(
                    f"Zoho's API credits for this org are exhausted ({message or code}); the run stops here "
                    "instead of retrying: wait for the rolling 24-hour window to free credits.",
                    code=code,
                    status=status,
                )
            if sink is not None:
                raise _DownloadLimited(message or str(code))
            raise ZohoTransientError(
                f"{method} {target} was rate-limited (429 {code}: {message})", code=code, status=status
            )
        if status >= 500:
            raise ZohoTransientError(
                f"{method} {target} failed on Zoho's side ({status} {code}: {message})",
                code=code,
                status=status,
            )
        text = f"{method} {target} failed: {status} {code}: {message}"
        if details:
            text += f" {redact(json.dumps(details, sort_keys=True))}"
        if code == "OAUTH_SCOPE_MISMATCH":
            scopes = f"ZohoCRM.bulk.read and {self.need.scope}"
            raise ZohoPermissionError(
                f"The Zoho token lacks a scope Bulk Read needs for {self.need.what} ({code}): {scopes}.",
                code=code,
                status=status,
                missing=scopes,
            )
        raise ZohoAPIError(text, code=code, status=status, details=details)


# ----------------------------------------------------------------------------------------------------- reader


def _ceil_second(value: datetime) -> datetime:
    whole = value.replace(microsecond=0)
    return whole if whole == value else whole + timedelta(seconds=1)


class BulkReader:
    """Pages of the records with ``start <= Modified_Time < end``, read by Bulk Read,
    exactly as the records API has them.

    ``fields`` is the list ``WindowReader`` would get; every record holds those fields, ``Modified_Time`` and
    ``id``, with the records API's values. ``fields_metadata`` is the module's ``/settings/fields`` list (read
    when not given); ``name_fields`` adds or overrides lookup target modules' name fields (``NAME_FIELDS``).
    ``tags_metadata`` is the module's ``/settings/tags`` list, needed only when ``Tag`` is among the fields
    (read then, with one call, when not given; read again at most once if the CSV names a tag it lacks);
    ``layouts_metadata`` likewise the ``/settings/layouts`` list, needed only for a ``layout`` field (read
    then when not given). A layout id the list lacks fails the read, or with ``partial`` leaves that field
    out of that record, for the caller to read by another route (:mod:`zoho_dagster.client.bulk_join`).
    ``sleep`` is every wait (polls, download limit, retries), so tests can drive the clock.
    ``rows_read`` counts CSV rows parsed so far and ``jobs`` the job ids created, both for observers.

    Iterating runs every step; a caller that reads other things while a job runs takes the steps one by
    one: :meth:`prepare`, :meth:`submit`, :meth:`wait`, :meth:`result_pages`.
    """

    def __init__(
        self,
        http: ZohoHttp,
        module: str,
        fields: Sequence[str],
        start: datetime,
        end: datetime,
        need: Need,
        *,
        fields_metadata: Sequence[Mapping[str, Any]] | None = None,
        name_fields: Mapping[str, str] | None = None,
        tags_metadata: Sequence[Mapping[str, Any]] | None = None,
        layouts_metadata: Sequence[Mapping[str, Any]] | None = None,
        partial: bool = False,
        page_size: int = PAGE_SIZE,
        poll_first: float = 1.0,
        poll_max: float = 30.0,
        job_timeout: float = 6 * 3600.0,
        download_wait: float = DOWNLOAD_LIMIT_WAIT,
        max_download_waits: int = MAX_DOWNLOAD_WAITS,
        max_job_attempts: int = MAX_JOB_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be positive")
        self.http = http
        self.module = module
        self.fields = list(fields)
        self.start, self.end = as_utc(start), as_utc(end)
        self.need = need
        self.fields_metadata = fields_metadata
        self.name_fields = dict(name_fields or {})
        self.tags_metadata = tags_metadata
        self._tags: _TagMap | None = None
        self.layouts_metadata = layouts_metadata
        self._layouts: LayoutMap | None = None
        self.partial = partial
        self._field_plan: list[_FieldPlan] | None = None
        self._columns: list[str] = []
        self.page_size = page_size
        self.poll_first = poll_first
        self.poll_max = poll_max
        self.job_timeout = job_timeout
        self.download_wait = download_wait
        self.max_download_waits = max_download_waits
        self.max_job_attempts = max_job_attempts
        self.sleep = sleep
        self.calls = _BulkCalls(http, need, sleep)
        self.rows_read = 0
        self.jobs: list[str] = []

    # --- plan ----------------------------------------------------------------------------------------------

    def _metadata(self) -> Sequence[Mapping[str, Any]]:
        if self.fields_metadata is not None:
            return self.fields_metadata
        answer = self.http.get(
            "/settings/fields",
            Need("ZohoCRM.settings.fields.READ", f"the fields metadata of {self.module}"),
            params={"module": self.module},
        )
        return list((answer.body or {}).get("fields") or [])

    def _read_tags(self) -> list[Mapping[str, Any]]:
        """``GET /settings/tags?module=…`` (one call, counted like every other); 204 means no tags."""
        try:
            answer = self.http.get(
                TAGS_PATH, Need(TAGS_SCOPE, f"the tags of {self.module}"), params={"module": self.module}
            )
        except ZohoAPIError as error:
            if error.code in TAGS_UNAVAILABLE_CODES:
                raise BulkUnavailable(
                    f"{self.module}: the tags that turn a Bulk Read Tag cell into the records API's objects "
                    f"cannot be read ({error.code}): {error}; read Tag with the records API.",
                    code=error.code,
                    status=error.status,
                    fields=[TAG_FIELD],
                ) from None
            raise
        tags = (answer.body or {}).get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(tag, Mapping) for tag in tags):
            raise ZohoAPIError(f"{self.module}: /settings/tags answered no list of tags")
        return tags

    def _plan(self) -> list[_FieldPlan]:
        """The requested fields' CSV columns; ``BulkUnavailable`` names the fields Bulk Read cannot serve.

        With ``Tag`` among them the module's tags are read here, before any job, so that tags a cell could
        not tell apart send the caller to the records API without a job spent.
        """
        by_name = {str(meta.get("api_name")): meta for meta in self._metadata()}
        wanted = [name for name in dict.fromkeys([CURSOR_FIELD, *self.fields]) if name != "id"]
        refused = [name for name in wanted if name not in by_name or not _exportable(by_name[name])]
        if refused:
            raise BulkUnavailable(
                f"Bulk Read cannot export {', '.join(refused)} of {self.module} as the records API renders "
                "them; read these fields with the records API.",
                code="FIELD_NOT_AVAILABLE",
                fields=refused,
            )
        layout_fields = [name for name in wanted if by_name[name].get("data_type") == LAYOUT_TYPE]
        if layout_fields and self._layouts is None:
            if self.layouts_metadata is None:
                self.layouts_metadata = read_layouts(self.http, self.module, layout_fields)
            self._layouts = LayoutMap(self.layouts_metadata)
        if TAG_FIELD in wanted and self._tags is None:
            if self.tags_metadata is None:  # kept: a caller may hand it to its next reader
                self.tags_metadata = self._read_tags()
            self._tags = _TagMap(self.module, self.tags_metadata, self._read_tags)
        return [_plan_field(by_name[name], self.name_fields) for name in wanted]

    # --- iteration -----------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[list[Record]]:
        if not self.prepare():
            return
        page = 1
        while True:
            job_id, result = self.wait(self.submit(page), page)
            result = yield from self.result_pages(job_id, result, page)
            if not result.get("more_records"):
                return
            page += 1

    def prepare(self) -> bool:
        """Plan the columns (reading the tags and layouts when needed); ``False`` if the window holds no whole
        second, so no job is needed. ``BulkUnavailable`` names the fields Bulk Read cannot serve."""
        first, last = _ceil_second(self.start), _ceil_second(self.end) - timedelta(seconds=1)
        if first > last:
            return False
        if self._field_plan is None:
            plan = self._plan()
            self._columns = list(dict.fromkeys(column for field in plan for column in field.columns))
            self._field_plan = plan
        return True

    def submit(self, page: int = 1) -> str:
        """Create page ``page``'s job (after :meth:`prepare`); its id. ``BulkUnavailable`` when refused."""
        if self._field_plan is None and not self.prepare():
            raise ValueError("an empty window needs no Bulk Read job")
        first, last = _ceil_second(self.start), _ceil_second(self.end) - timedelta(seconds=1)
        return self._create(self._columns, first, last, page)

    def wait(self, job_id: str, page: int = 1) -> tuple[str, dict[str, Any]]:
        """The job's id and ``result`` once it completed; a job that fails or vanishes is created again."""
        for attempt in range(1, self.max_job_attempts + 1):
            result = self._wait(job_id)
            if result is not None:
                return job_id, result
            if attempt < self.max_job_attempts:
                job_id = self.submit(page)
        raise ZohoAPIError(
            f"{self.module}: Bulk Read page {page} did not complete in {self.max_job_attempts} jobs; read "
            "the window with the records API."
        )

    def result_pages(
        self, job_id: str, result: dict[str, Any], page: int = 1
    ) -> Generator[list[Record], None, dict[str, Any]]:
        """Download a completed job's result and yield its records in pages; returns the result read (a job
        whose result is gone, 404, is created again: its result replaces ``result``)."""
        for attempt in range(1, self.max_job_attempts + 1):
            count = int(result.get("count") or 0)
            if not count:
                return result  # nothing to download (and no download spent from the ten a minute)
            sink: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (closed below)
            if self._download(job_id, result, sink):
                with sink:
                    yield from self._pages(self._field_plan or [], sink, count)
                return result
            sink.close()
            log.warning(
                "%s: the result of Bulk Read job %s is gone (attempt %d of %d); creating the job again.",
                self.module,
                job_id,
                attempt,
                self.max_job_attempts,
            )
            if attempt < self.max_job_attempts:
                job_id, result = self.wait(self.submit(page), page)
        raise ZohoAPIError(
            f"{self.module}: Bulk Read page {page} did not complete in {self.max_job_attempts} jobs; read "
            "the window with the records API."
        )

    def _create(self, columns: list[str], first: datetime, last: datetime, page: int) -> str:
        query = {
            "module": {"api_name": self.module},
            "fields": columns,
            "criteria": {
                "group_operator": "and",
                "group": [
                    {
                        "field": {"api_name": CURSOR_FIELD},
                        "comparator": "between",
                        "value": [header_datetime(first), header_datetime(last)],
                    }
                ],
            },
            "page": page,
        }
        try:
            body = self.calls.json("POST", BULK_READ_PATH, {"query": query})
        except ZohoAPIError as error:
            if error.code in UNAVAILABLE_CODES:
                fields = [str(error.details.get("api_name"))] if error.code == "FIELD_NOT_AVAILABLE" else []
                raise BulkUnavailable(
                    f"Bulk Read refused {self.module} ({error.code}): {error}; read it with the records API.",
                    code=error.code,
                    status=error.status,
                    fields=fields,
                ) from None
            raise
        try:
            job_id = str(body["data"][0]["details"]["id"])
        except (KeyError, IndexError, TypeError):
            raise ZohoAPIError(f"{self.module}: Bulk Read's create answer holds no job id") from None
        self.jobs.append(job_id)
        log.info("%s: Bulk Read job %s created for page %d.", self.module, job_id, page)
        return job_id

    def _wait(self, job_id: str) -> dict[str, Any] | None:
        """The job's ``result`` once COMPLETED; ``None`` if it failed, vanished or outran ``job_timeout``."""
        delay, waited = self.poll_first, 0.0
        while waited <= self.job_timeout:
            self.sleep(delay)
            waited += delay
            delay = min(delay * 1.5, self.poll_max)
            try:
                body = self.calls.json("GET", f"{BULK_READ_PATH}/{job_id}")
            except ZohoAPIError as error:
                if error.status == 404:
                    log.warning("%s: Bulk Read job %s vanished (%s).", self.module, job_id, error.code)
                    return None
                raise
            job = self._job_detail(body)
            state = str(job.get("state") or "")
            if state == COMPLETED:
                result = job.get("result")
                if not isinstance(result, dict):
                    raise ZohoAPIError(f"{self.module}: Bulk Read job {job_id} completed without a result")
                log.info(
                    "%s: Bulk Read job %s completed: %s records.", self.module, job_id, result.get("count")
                )
                return result
            if state not in RUNNING_STATES:
                # A failure state exists; its spelling is UNCONFIRMED (§4): anything unknown is a failure.
                log.warning("%s: Bulk Read job %s ended in state %r.", self.module, job_id, state)
                return None
        log.warning("%s: Bulk Read job %s did not complete in %.0f s.", self.module, job_id, self.job_timeout)
        return None

    def _job_detail(self, body: dict[str, Any]) -> dict[str, Any]:
        """The job of a status answer; a test may wrap this to play a state Zoho seldom shows."""
        data = body.get("data")
        if not isinstance(data, list) or not data or not isinstance(data[0], dict):
            raise ZohoAPIError(f"{self.module}: Bulk Read's status answer holds no job")
        return dict(data[0])

    def _download(self, job_id: str, result: dict[str, Any], sink: IO[bytes]) -> bool:
        """Download into ``sink``; ``False`` when the result is gone (404), so the job is created again."""
        target = str(result.get("download_url") or f"{BULK_READ_PATH}/{job_id}/result")
        waits = bad_files = 0
        while True:
            try:
                self.calls.download(target, sink)
            except _DownloadLimited as limited:
                waits += 1
                if waits > self.max_download_waits:
                    raise ZohoAPIError(
                        f"{self.module}: Bulk Read downloads stayed blocked after {self.max_download_waits} "
                        f"waits of {self.download_wait:.0f} s ({limited}).",
                        code="TOO_MANY_REQUESTS",
                        status=429,
                    ) from None
                log.info(
                    "%s: Bulk Read downloads are limited to ten a minute (%s); waiting %.0f s.",
                    self.module,
                    limited,
                    self.download_wait,
                )
                self.sleep(self.download_wait)
                continue
            except ZohoAPIError as error:
                if error.status == 404:
                    return False
                raise
            sink.seek(0)
            if zipfile.is_zipfile(sink):
                return True
            bad_files += 1  # a 200 that is no ZIP: fetch it again, a few times at most
            if bad_files > self.http.policy.max_retries:
                raise ZohoAPIError(f"{self.module}: Bulk Read job {job_id}'s result is not a ZIP file")

    def _pages(self, plan: list[_FieldPlan], sink: IO[bytes], expected: int) -> Iterator[list[Record]]:
        """Parse the ZIP's CSV row by row and yield records in pages of ``page_size``."""
        sink.seek(0)
        with zipfile.ZipFile(sink) as archive:
            members = [name for name in archive.namelist() if name.lower().endswith(".csv")]
            if len(members) != 1:
                raise ZohoAPIError(f"{self.module}: a Bulk Read result should hold one CSV, not {members}")
            with archive.open(members[0]) as raw, io.TextIOWrapper(raw, "utf-8-sig", newline="") as text:
                rows = csv.reader(text)
                header = next(rows, None) or []
                index = {name: position for position, name in enumerate(header)}
                missing = [c for c in ("id", *(c for f in plan for c in f.columns)) if c not in index]
                if missing:
                    raise ZohoAPIError(f"{self.module}: the Bulk Read CSV lacks the columns {missing}")
                converters = [
                    (field.name, field.kind, _compile(field, index, self._tags, self._layouts))
                    for field in plan
                ]
                at_id = index["id"]
                count = 0
                page: list[Record] = []
                for row in rows:
                    if not row:
                        continue
                    count += 1
                    self.rows_read += 1
                    if len(row) != len(header):
                        raise ZohoAPIError(
                            f"{self.module}: Bulk Read CSV row {count} has {len(row)} cells for "
                            f"{len(header)} columns"
                        )
                    record = self._record(row, at_id, converters)
                    if self.start <= parse_datetime(str(record[CURSOR_FIELD])) < self.end:
                        page.append(record)
                    if len(page) >= self.page_size:
                        yield page
                        page = []
                if page:
                    yield page
        if count != expected:
            raise ZohoAPIError(
                f"{self.module}: the Bulk Read CSV held {count} rows where the job reported {expected}"
            )

    def _record(
        self, row: Row, at_id: int, converters: list[tuple[str, str, Callable[[Row], Any]]]
    ) -> Record:
        record: Record = {}
        for name, kind, convert in converters:
            try:
                value = convert(row)
            except _BadCell as bad:
                raise ZohoAPIError(
                    f"{self.module}: Bulk Read gave {name} of record {row[at_id]} the value {str(bad)!r}, "
                    f"which is no {kind}"
                ) from None
            if value is UNRESOLVED:
                if self.partial:
                    continue  # left out: the caller reads it by another route (never a guess)
                raise ZohoAPIError(
                    f"{self.module}: Bulk Read gave {name} of record {row[at_id]} a {kind} id that "
                    f"/settings/{kind}s does not list; read {name} by another route."
                )
            record[name] = value
        record["id"] = row[at_id]
        return record
