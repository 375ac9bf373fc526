"""Bulk Read (docs/zoho-crm-api.md §4): create a job, watch it go ADDED → IN PROGRESS → COMPLETED, download a
zip."""

from __future__ import annotations

import csv
import io
import json
import secrets
import zipfile
from dataclasses import dataclass
from typing import Any

from .clock import parse_time
from .context import Request
from .errors import ApiError
from .schema import ModuleSpec, module_spec

PER_PAGE = 200_000
ADDED_FOR = 0.3  # seconds in ADDED
IN_PROGRESS_UNTIL = 1.0  # seconds after creation when the job is COMPLETED
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


def _require_bulk(req: Request, spec: ModuleSpec | None = None) -> None:
    req.require("ZohoCRM.bulk.read", "ZohoCRM.bulk.ALL")
    if spec is not None:
        # Reference §4 says bulk scope "and/or" module READ; the strictest reading requires both.
        req.require_module_read(spec)


def _criteria(node: dict[str, Any]) -> list[tuple[str, list[float]]]:
    """Flatten an `and` group of Modified_Time/Created_Time comparisons into (comparator, instants)."""
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
    fields = [str(f) for f in query.get("fields") or []] or [f.api_name for f in spec.fields]
    for f in fields:
        if f not in spec.by_name and f != "id":
            raise ApiError(400, "FIELD_NOT_AVAILABLE", "The given field is not available", {"api_name": f})
    criteria = _criteria(query["criteria"]) if query.get("criteria") else []
    page = int(query.get("page", 1))
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
    writer = csv.writer(out)
    columns = ["id", *[f for f in job.fields if f != "id"]]
    writer.writerow(columns)
    skip = (job.page - 1) * PER_PAGE
    written = seen = 0
    for _, index in store.stream(name, "id", False, None, None):
        rec = store.internal(name, index)
        if rec is None or not _match(job.criteria, float(rec["Modified_Time"])):
            continue
        seen += 1
        if seen <= skip:
            continue
        if written == PER_PAGE:
            job.more = True
            break
        full = store.rendered(name, index) or {}
        writer.writerow([_csv_value(full.get(c)) for c in columns])
        written += 1
    job.count = written
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{job.id}.csv", out.getvalue())
    job.result = buf.getvalue()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return str(value.get("id", ""))
    if isinstance(value, list):
        return ";".join(v.get("name", "") if isinstance(v, dict) else str(v) for v in value)
    return str(value)


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
    if job.state(req.now) != "COMPLETED":
        # UNCONFIRMED: downloading before completion; the strictest plausible answer is "not found".
        raise ApiError(404, "RESOURCE_NOT_FOUND", "The requested resource doesn't exist.", {})
    _build(req, job)
    assert job.result is not None
    return 200, job.result
