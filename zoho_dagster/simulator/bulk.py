"""Bulk Read (docs/zoho-crm-api.md §4): create a job, watch it go ADDED → IN PROGRESS → COMPLETED, download a
zip holding one CSV.

The CSV follows the strict readings recorded in docs/zoho-crm-api.md §4.1: one header row of the requested
column names after an ``id`` column; a lookup or user column holds only the id and its other parts come as
dot-notation columns (``Account_Name.Account_Name``, ``Owner.last_name``); every other cell is the text of the
value the records API renders (same datetime string and offset, JSON number text, ``true``/``false``,
multi-select options joined by ``;``, ``Tag`` names joined by ``,`` in the record's order); an empty value is
an empty cell, whatever the type. A ``Layout`` cell holds the layout's id only and ``Layout.name`` is refused
(strictest plausible, UNCONFIRMED: no source shows a layout column or dot notation on it); a rich-text cell
holds the whole value, which the list API cuts to 500 characters (UNCONFIRMED, §2.5). Converted and
awaiting-approval records are left out unless the reading ``bulk_includes_hidden`` is on (§10).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .clock import parse_time
from .context import Request
from .errors import ApiError
from .schema import CHILD_TYPES, MULTI_CURRENCY_FIELDS, FieldSpec, ModuleSpec, module_spec
from .state import Org
from .visibility import DEFAULT, EVERYTHING

# 200,000 records per job page (docs/zoho-crm-api.md §4). The variable exists only so that tests can page
# through jobs without 200,001 records; Zoho's page size is fixed.
PER_PAGE = int(os.environ.get("ZOHO_SIMULATOR_BULK_PER_PAGE") or 200_000)
ADDED_FOR = 0.3  # seconds in ADDED
IN_PROGRESS_UNTIL = 1.0  # seconds after creation when the job is COMPLETED
# UNCONFIRMED how long Zoho keeps a result (docs/zoho-crm-api.md §4.1); strict: a day after completion, then
# the download answers 404 RESOURCE_NOT_FOUND while the job's status still says COMPLETED.
RESULT_LIFETIME = 86_400.0
# Dot notation on a user lookup reaches the user's fields as the Users API names them (docs/zoho-crm-api.md
# §3.4); the docs show `Owner.last_name`. Strict: only these, not `full_name` or `name`.
USER_PARTS = ("id", "first_name", "last_name", "email")
# UNCONFIRMED how a CSV cell carries a record's tags (docs/zoho-crm-api.md §4.1); strict: the names only, in
# the order of the record's `Tag` array, joined by ",", the separator of Zoho's own tag-name lists
# (`actions/add_tags?tag_names=a,b`). The ids are not in the cell: the tags API maps names back to them.
TAG_SEPARATOR = ","
COMPARATORS = (
    "equal",
    "not_equal",
    "greater_than",
    "greater_equal",
    "less_than",
    "less_equal",
    "between",
    "not_between",
)
_MILLISECONDS = re.compile(r"T\d\d:\d\d:\d\d[.,]\d")

Cell = Callable[[dict[str, Any], dict[str, Any]], str]
"""One CSV column: (rendered record, internal record) → the cell's text."""


@dataclass
class Job:
    id: str
    spec: ModuleSpec
    fields: list[str]
    criteria: list[tuple[str, list[float]]]
    page: int
    created: float
    user_index: int
    query: dict[str, Any]
    result: bytes | None = None
    count: int = 0
    more: bool = False

    def state(self, now: float) -> str:
        age = now - self.created
        return "ADDED" if age < ADDED_FOR else "IN PROGRESS" if age < IN_PROGRESS_UNTIL else "COMPLETED"

    def expired(self, now: float) -> bool:
        return now > self.created + IN_PROGRESS_UNTIL + RESULT_LIFETIME


def _require_bulk(req: Request, spec: ModuleSpec | None = None) -> None:
    req.require("ZohoCRM.bulk.read", "ZohoCRM.bulk.ALL")
    if spec is not None:
        # Reference §4 says bulk scope "and/or" module READ; the strictest reading requires both.
        req.require_module_read(spec)


def _criteria(node: dict[str, Any]) -> list[tuple[str, list[float]]]:
    """Flatten an `and` group of Modified_Time comparisons into (comparator, instants)."""
    if "group" in node:
        if node.get("group_operator", "and").lower() != "and":
            raise ApiError(400, "INVALID_CRITERIA", "only 'and' groups are supported by this simulator", {})
        out: list[tuple[str, list[float]]] = []
        for child in node["group"]:
            out.extend(_criteria(child))
        return out
    field = (node.get("field") or {}).get("api_name")
    comparator = node.get("comparator")
    if field != "Modified_Time" or comparator not in COMPARATORS:
        raise ApiError(400, "INVALID_CRITERIA", "invalid criteria", {"api_name": field})
    values = node.get("value")
    values = values if isinstance(values, list) else [values]
    # Date-time criteria take no milliseconds (docs/zoho-crm-api.md §4); strict: a value with them is refused.
    if any(_MILLISECONDS.search(str(v)) for v in values):
        raise ApiError(400, "INVALID_CRITERIA", "invalid criteria", {"api_name": field})
    parsed = [parse_time(str(v)) for v in values]
    if any(p is None for p in parsed) or len(parsed) != (2 if "between" in comparator else 1):
        raise ApiError(400, "INVALID_CRITERIA", "invalid criteria", {"api_name": field})
    return [(comparator, [p for p in parsed if p is not None])]


def _match(criteria: list[tuple[str, list[float]]], t: float) -> bool:
    for comparator, v in criteria:
        ok = {
            "equal": t == v[0],
            "not_equal": t != v[0],
            "greater_than": t > v[0],
            "greater_equal": t >= v[0],
            "less_than": t < v[0],
            "less_equal": t <= v[0],
            "between": v[0] <= t <= v[-1],
            "not_between": not v[0] <= t <= v[-1],
        }[comparator]
        if not ok:
            return False
    return True


def _unavailable(name: str) -> ApiError:
    return ApiError(400, "FIELD_NOT_AVAILABLE", "The given field is not available", {"api_name": name})


def _cell_text(value: Any) -> str:
    """A rendered (records-API) value as CSV text; see the module docstring and docs/zoho-crm-api.md §4.1."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)  # the JSON number text: 42, 850000.0, 12.5
    if isinstance(value, dict):
        return str(value.get("id") or "")
    if isinstance(value, list):
        return ";".join(str(v.get("name", "")) if isinstance(v, dict) else str(v) for v in value)
    return str(value)


def _tag_cell(value: Any) -> str:
    """A record's ``Tag`` (``[{"name", "id"}, …]``) as its CSV cell: the names joined by ``TAG_SEPARATOR``."""
    tags = value if isinstance(value, list) else []
    return TAG_SEPARATOR.join(str(tag.get("name") or "") for tag in tags if isinstance(tag, dict))


def _column(org: Org, spec: ModuleSpec, name: str) -> Cell:
    """How to fill column ``name``; refuses names Zoho would not export with FIELD_NOT_AVAILABLE."""
    base, dot, part = name.partition(".")
    f = spec.by_name.get(base)
    if name == "id":
        return lambda full, _rec: str(full["id"])
    if f is None or "." in part or (dot and not part) or not _present(org, spec, f):
        raise _unavailable(name)  # unknown field; nested dots are not documented, so strict: refused
    if f.data_type in CHILD_TYPES:
        # UNCONFIRMED whether a parent's job exports subform or multi-lookup fields (docs/zoho-crm-api.md
        # §4.1); strictest plausible: they are not available.
        raise _unavailable(name)
    if not dot and base == "Tag":
        return lambda full, _rec: _tag_cell(full.get(base))
    if not dot:
        return lambda full, _rec: _cell_text(full.get(base))
    if f.data_type in ("ownerlookup", "userlookup"):
        return _user_part(org, base, name, part)
    if f.data_type == "lookup":
        return _lookup_part(org, f, name, part)
    raise _unavailable(name)  # dot notation on a field that is no lookup


def _present(org: Org, spec: ModuleSpec, f: FieldSpec) -> bool:
    """Whether a job may export ``f``: not an unused field (in no layout; strict, UNCONFIRMED) nor, while
    multi-currency is off, `Currency` or `Exchange_Rate` (docs/zoho-crm-api.md §3.10)."""
    if f.unused:
        return False
    return not (f.api_name in MULTI_CURRENCY_FIELDS and spec.has_currency and not org.mc_status)


def _user_part(org: Org, base: str, name: str, part: str) -> Cell:
    if part not in USER_PARTS:
        raise _unavailable(name)
    users = org.users

    def cell(_full: dict[str, Any], rec: dict[str, Any]) -> str:
        index = rec.get(base)
        return "" if not isinstance(index, int) else str(getattr(users[index], part) or "")

    return cell


def _lookup_part(org: Org, f: FieldSpec, name: str, part: str) -> Cell:
    target = module_spec(f.lookup)
    if target is None or (part != "id" and part not in target.by_name):
        raise _unavailable(name)
    store = org.store
    base = f.api_name

    def cell(full: dict[str, Any], _rec: dict[str, Any]) -> str:
        ref = full.get(base)
        if not isinstance(ref, dict):
            return ""
        if part in ("id", target.name_field):
            # The record's own lookup value, exactly as the records API renders it.
            return _cell_text(ref.get("name" if part == target.name_field else "id"))
        index = store.index_of(target.api_name, str(ref.get("id")))
        parent = store.rendered(target.api_name, index) if index is not None else None
        return _cell_text((parent or {}).get(part))

    return cell


def create(req: Request) -> tuple[int, Any]:
    req.require("ZohoCRM.bulk.read", "ZohoCRM.bulk.ALL")
    if "application/json" not in req.headers.get("content-type", ""):
        raise ApiError(415, "MEDIA_TYPE_NOT_SUPPORTED", "The Content-Type given is not supported", {})
    try:
        body = json.loads(req.body or b"{}")
        query = body["query"]
        name = query["module"]["api_name"]
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "INVALID_DATA", "invalid data", {"api_name": "query"}) from None
    spec = module_spec(str(name))
    if spec is None:
        raise ApiError(400, "INVALID_DATA", "invalid data", {"api_name": "module"})
    if spec.api_name == "Notes":
        raise ApiError(
            400, "MODULE_NOT_AVAILABLE", "Bulk read is not available for this module", {"api_name": "module"}
        )
    _require_bulk(req, spec)
    fields = [str(f) for f in query.get("fields") or []] or [
        f.api_name for f in spec.fields if f.data_type not in CHILD_TYPES and _present(req.org, spec, f)
    ]
    for f in fields:
        _column(req.org, spec, f)  # refuses what cannot be exported, at creation like Zoho
    criteria = _criteria(query["criteria"]) if query.get("criteria") else []
    page = query.get("page", 1)
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise ApiError(400, "INVALID_DATA", "invalid data", {"api_name": "page"})
    job = Job(
        str(int(req.org.store.gen.prefix) * 10**12 + 97 * 10**10 + secrets.randbelow(10**9)),
        spec,
        fields,
        criteria,
        page,
        req.now,
        req.token.client.user_index,
        query,
    )
    req.org.bulk_jobs[job.id] = job
    user = req.user
    details = {
        "id": job.id,
        "operation": "read",
        "state": "ADDED",
        "created_by": {"id": user.id, "name": user.full_name},
        "created_time": req.render_now(job.created),
    }
    return 201, {
        "data": [
            {
                "status": "success",
                "code": "ADDED_SUCCESSFULLY",
                "message": "Added successfully.",
                "details": details,
            }
        ],
        "info": {},
    }


def _job(req: Request, job_id: str) -> Job:
    _require_bulk(req)
    job = req.org.bulk_jobs.get(job_id)
    if job is None:
        raise ApiError(404, "RESOURCE_NOT_FOUND", "The requested resource doesn't exist.", {})
    return job


def _build(req: Request, job: Job) -> None:
    """Materialise the CSV once the job completes (the record set as of completion)."""
    if job.result is not None:
        return
    store = req.org.store
    name = job.spec.api_name
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = ["id", *[f for f in dict.fromkeys(job.fields) if f != "id"]]
    cells = [_column(req.org, job.spec, c) for c in columns]
    writer.writerow(columns)
    skip = (job.page - 1) * PER_PAGE
    written = seen = 0
    # UNCONFIRMED whether a job exports converted and awaiting-approval records (docs/zoho-crm-api.md §10);
    # strictest plausible: it leaves them out, as the list API's defaults do (reading bulk_includes_hidden).
    flt = EVERYTHING if req.sim.readings.bulk_includes_hidden else DEFAULT
    for _, index in store.stream(name, "id", False, None, None, flt):
        # The criteria are decided on the time alone: generating every record of a million-record module for
        # each job made a Bulk Read of it take longer than the client waits.
        modified = store.modified_time(name, index)
        if modified is None or not _match(job.criteria, modified):
            continue
        seen += 1
        if seen <= skip:
            continue
        if written == PER_PAGE:
            job.more = True
            break
        rec = store.internal(name, index)
        if rec is None:
            continue
        full = store.rendered(name, index) or {}
        writer.writerow([cell(full, rec) for cell in cells])
        written += 1
    job.count = written
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{job.id}.csv", out.getvalue().encode("utf-8"))
    job.result = buf.getvalue()


def status(req: Request, job_id: str) -> tuple[int, Any]:
    job = _job(req, job_id)
    state = job.state(req.now)
    user = req.org.users[job.user_index]
    row: dict[str, Any] = {
        "id": job.id,
        "operation": "read",
        "state": state,
        "query": {"module": {"id": str(job.spec.number), "api_name": job.spec.api_name}, "page": job.page},
        "created_by": {"id": user.id, "name": user.full_name},
        "created_time": req.render_now(job.created),
        "file_type": "csv",
    }
    if state == "COMPLETED":
        _build(req, job)
        row["result"] = {
            "page": job.page,
            "per_page": PER_PAGE,
            "count": job.count,
            "download_url": f"/crm/bulk/v6/read/{job.id}/result",
            "more_records": job.more,
        }
    return 200, {"data": [row]}


def result(req: Request, job_id: str) -> tuple[int, bytes]:
    job = _job(req, job_id)
    req.org.limits.download(req.now)
    # UNCONFIRMED: downloading before completion, or after the result expired; the strictest plausible answer
    # is "not found" (docs/zoho-crm-api.md §4, §4.1).
    if job.state(req.now) != "COMPLETED" or job.expired(req.now):
        raise ApiError(404, "RESOURCE_NOT_FOUND", "The requested resource doesn't exist.", {})
    _build(req, job)
    assert job.result is not None
    return 200, job.result
