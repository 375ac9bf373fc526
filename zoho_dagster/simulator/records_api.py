"""`GET /crm/v6/{Module}` with Zoho's pagination rules (docs/zoho-crm-api.md §2), single records, count and
deleted."""

from __future__ import annotations

import re
from itertools import islice
from typing import Any

from .clock import parse_time
from .context import Request
from .errors import ApiError, EmptyResponse, invalid_module
from .schema import CHILD_TYPES, MULTI_CURRENCY_FIELDS, RICH_TEXT_LIMIT, ModuleSpec, module_spec
from .store import SORT_FIELDS
from .visibility import DEFAULT, EVERYTHING, request_filter

MAX_FIELDS = 50
MAX_PER_PAGE = 200
DISCRETE_LIMIT = 2000
MAX_IDS = 100


def resolve_module(req: Request, name: str) -> ModuleSpec:
    spec = module_spec(name)
    if spec is None:
        raise invalid_module()
    req.require_module_read(spec)
    return spec


def requested_fields(req: Request, allowed: set[str]) -> list[str]:
    """The ``fields`` parameter: required, at most 50, each ``id`` or in ``allowed`` (docs/zoho-crm-api.md
    §2.1, §2.6); shared by the records, subform-module and related-list endpoints."""
    raw = req.params.get("fields")
    if raw is None or not raw.strip():
        raise ApiError(
            400,
            "REQUIRED_PARAM_MISSING",
            "One of the expected parameter is missing",
            {"param_name": "fields"},
        )
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if len(names) > MAX_FIELDS:
        raise ApiError(
            400, "LIMIT_EXCEEDED", "Fields limit exceeded", {"param_name": "fields", "limit": MAX_FIELDS}
        )
    for name in names:
        # UNCONFIRMED whether Zoho ignores unknown field names; strictest plausible: reject them.
        if name != "id" and name not in allowed:
            raise ApiError(400, "INVALID_DATA", "invalid data", {"api_name": name})
    return names


def discrete_page(req: Request, per_page: int) -> tuple[int, int]:
    """``page`` and how many records it skips, refusing pages past the first 2,000 records
    (docs/zoho-crm-api.md §2.2); shared by the records, subform-module and related-list endpoints."""
    page = req.int_param("page", 1)
    if page * per_page > DISCRETE_LIMIT:
        raise ApiError(
            400,
            "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
            "You can only get the first 2000 records without using page_token param",
            {"limit": DISCRETE_LIMIT},
        )
    return page, (page - 1) * per_page


FIELDS_DOLLAR_NAMES = frozenset({"$approval_state"})
"""The `$` key `fields` may name (docs/zoho-crm-api.md §2.1: naming it returns the approval state). Strictest
plausible (UNCONFIRMED): any other `$` name is refused like an unknown field; list rows carry every `$` key of
the record anyway (`_row`)."""


def present_fields(req: Request, spec: ModuleSpec) -> set[str]:
    """The module's fields as the org has them now: the multi-currency pair is gone while multi-currency is
    off (docs/zoho-crm-api.md §3.10)."""
    names = set(spec.by_name)
    if spec.has_currency and not req.org.mc_status:
        names -= set(MULTI_CURRENCY_FIELDS)
    return names


def _fields(req: Request, spec: ModuleSpec, single: bool = False) -> list[str]:
    names = requested_fields(req, present_fields(req, spec) | FIELDS_DOLLAR_NAMES)
    for name in names:
        f = spec.by_name.get(name)
        if not single and f is not None and f.data_type in CHILD_TYPES:
            # Only a single-record read carries these (docs/zoho-crm-api.md §2.5); strictest plausible for a
            # list: refused like an unknown field.
            raise ApiError(400, "INVALID_DATA", "invalid data", {"api_name": name})
    return names


def _dollar_keys(spec: ModuleSpec) -> tuple[str, ...]:
    from .datagen import system_keys

    return tuple(system_keys(spec))


def _row(
    spec: ModuleSpec, full: dict[str, Any], fields: list[str], dollar: tuple[str, ...]
) -> dict[str, Any]:
    """One record of a list (or ``ids=``) answer: the requested fields, ``id`` and every ``$`` key of the
    record whether ``fields`` names them or not (Zoho's list samples fetched with ``fields`` carry them,
    docs/zoho-crm-api.md §5, §10). Rich text is cut to 500 characters (§2.5); an unused field, named,
    is null (UNCONFIRMED)."""
    row: dict[str, Any] = {}
    rich = spec.rich_fields
    for name in fields:
        if name in full:
            value = full[name]
            if name in rich and isinstance(value, str):
                value = value[:RICH_TEXT_LIMIT]
            row[name] = value
        elif name in spec.unused_fields:
            row[name] = None
    row["id"] = full["id"]
    for key in dollar:
        if key in full:
            row[key] = full[key]
    return row


def list_records(req: Request, name: str) -> tuple[int, Any]:
    spec = resolve_module(req, name)
    if spec.api_name == "Notes" and not req.admin:
        raise ApiError(403, "NOT_SUPPORTED", "This API is supported only for admin users.")
    fields = _fields(req, spec)
    per_page = req.int_param("per_page", MAX_PER_PAGE, MAX_PER_PAGE)
    if ("page" in req.params and "page_token" in req.params) or (
        "cvid" in req.params and "sort_by" in req.params
    ):
        raise ApiError(
            400,
            "AMBIGUITY_DURING_PROCESSING",
            "You cannot use both cvid and sort_by, and page and page_token",
            {"ambiguity_due_to": ["page", "page_token"] if "page" in req.params else ["cvid", "sort_by"]},
        )
    sort_by = req.params.get("sort_by", "id")
    if sort_by not in SORT_FIELDS:
        raise ApiError(400, "INVALID_DATA", "invalid data", {"param_name": "sort_by"})
    sort_order = req.params.get("sort_order", "desc")
    if sort_order not in ("asc", "desc"):
        raise ApiError(400, "INVALID_DATA", "invalid data", {"param_name": "sort_order"})
    since = req.modified_since()
    # converted=false and approved=true unless asked (docs/zoho-crm-api.md §2.1); bound to a page token like
    # every other parameter.
    flt = request_filter(req.params)
    store = req.org.store
    if "ids" in req.params:
        return _by_ids(req, spec, fields, sort_by, sort_order, since, flt)

    binding = tuple(sorted((k, v) for k, v in req.params.items() if k not in ("page", "page_token")))
    binding += (("If-Modified-Since", req.headers.get("if-modified-since", "")), ("module", spec.api_name))
    cap = req.sim.config.page_token_cap
    presented = req.params.get("page_token")
    after: tuple[int, int] | None = None
    page = 1
    if presented is not None:
        tok = req.sim.page_tokens.redeem(presented, req.org.org_id, req.user.id, binding, req.now)
        if tok.served >= cap:
            raise ApiError(
                400,
                "PAGINATION_LIMIT_EXCEEDED",
                f"You can only get up to first {cap} records using page_token param.",
                {"limit": cap},
            )
        after, served, skip = tok.after, tok.served, 0
        limit = min(per_page, cap - served)
    else:
        page, skip = discrete_page(req, per_page)
        served = skip
        limit = per_page
    stream = store.stream(spec.api_name, sort_by, sort_order == "desc", since, after, flt)
    items = list(islice(stream, skip, skip + limit + 1))
    more = len(items) > limit
    items = items[:limit]
    if not items:
        if since is not None and store.count(spec.api_name, since, flt) == 0:
            raise EmptyResponse(304)
        raise EmptyResponse(204)
    data = []
    dollar = _dollar_keys(spec)
    for _, index in items:
        full = store.rendered(spec.api_name, index)
        if full is None:
            continue
        data.append(_row(spec, full, fields, dollar))
    next_token = None
    if more:
        next_token = req.sim.page_tokens.issue(
            req.org.org_id, req.user.id, binding, items[-1][0], served + len(items), req.now
        )
    info = {
        "call": False,
        "per_page": per_page,
        "next_page_token": next_token.token if next_token else None,
        "count": len(data),
        # Token-paged responses still say page 1 in Zoho's own sample (docs/zoho-crm-api.md §2.3).
        "page": page,
        "previous_page_token": presented,
        "page_token_expiry": req.render_now(next_token.expires_at) if next_token else None,
        "sort_by": sort_by,
        "sort_order": sort_order,
        "email": False,
        "more_records": more,
    }
    return 200, {"data": data, "info": info}


def _by_ids(
    req: Request,
    spec: ModuleSpec,
    fields: list[str],
    sort_by: str,
    sort_order: str,
    since: float | None,
    flt: Any,
) -> tuple[int, Any]:
    """``ids=``: the named records, filtered like a list. Strictest plausible (UNCONFIRMED): the
    ``converted``/``approved`` defaults apply here too, so a converted lead named by id is left out unless
    ``converted=true|both``."""
    store = req.org.store
    dollar = _dollar_keys(spec)
    ids = [i.strip() for i in req.params["ids"].split(",") if i.strip()]
    if len(ids) > MAX_IDS:
        raise ApiError(400, "LIMIT_EXCEEDED", "ids limit exceeded", {"param_name": "ids", "limit": MAX_IDS})
    rows: list[tuple[tuple[int, int], dict[str, Any]]] = []
    for rid in dict.fromkeys(ids):
        index = store.index_of(spec.api_name, rid)
        if index is None:
            raise ApiError(400, "INVALID_DATA", "invalid data", {"param_name": "ids", "id": rid})
        rec = store.internal(spec.api_name, index)
        full = store.rendered(spec.api_name, index)
        if rec is None or full is None or (since is not None and int(rec["Modified_Time"]) < since):
            continue
        if not store.matches(spec.api_name, index, flt):
            continue
        key = store._record_key(rec, sort_by)
        rows.append((key, _row(spec, full, fields, dollar)))
    if not rows:
        raise EmptyResponse(304 if since is not None else 204)
    rows.sort(key=lambda r: r[0], reverse=sort_order == "desc")
    info = {
        "call": False,
        "per_page": len(rows),
        "next_page_token": None,
        "count": len(rows),
        "page": 1,
        "previous_page_token": None,
        "page_token_expiry": None,
        "sort_by": sort_by,
        "sort_order": sort_order,
        "email": False,
        "more_records": False,
    }
    return 200, {"data": [r for _, r in rows], "info": info}


def get_record(req: Request, name: str, record_id: str) -> tuple[int, Any]:
    """`GET /crm/v6/{Module}/{id}`: every field; `fields` optional (docs/zoho-crm-api.md §2.1). Rich text
    comes whole (§2.5).

    Converted and awaiting-approval records: strictest plausible (UNCONFIRMED, §10), the list API's
    ``converted``/``approved`` defaults apply here too (Zoho's SDK6 ``GetRecordParam`` has both parameters; a
    third-party client reports a 204 for a converted lead read without ``converted=true``). The reading
    ``single_record_includes_hidden`` returns the record whatever its state."""
    spec = resolve_module(req, name)
    flt = request_filter(req.params)
    store = req.org.store
    index = store.index_of(spec.api_name, record_id)
    full = store.rendered(spec.api_name, index) if index is not None else None
    if full is None or index is None:
        raise EmptyResponse(204)
    if not req.sim.readings.single_record_includes_hidden and not store.matches(spec.api_name, index, flt):
        raise EmptyResponse(204)
    # Subform and multi-lookup arrays, with `$has_more` per array (docs/zoho-crm-api.md §2.5).
    full = {**full, **store.child_arrays(spec, index, full)}
    if "fields" in req.params:
        names = _fields(req, spec, single=True)
        full = {
            **{f: full[f] for f in names if f in full},
            **{f: None for f in names if f in spec.unused_fields},
            "id": full["id"],
        }
    arrays = [f.api_name for f in spec.child_fields if f.api_name in full]
    if arrays:
        full["$has_more"] = {name: False for name in arrays}
    return 200, {"data": [full]}


def count(req: Request, name: str) -> tuple[int, Any]:
    """`/{Module}/actions/count` needs ZohoSearch.securesearch.READ and module read (docs/zoho-crm-api.md
    §3.5)."""
    spec = resolve_module(req, name)
    req.require("ZohoSearch.securesearch.READ", "ZohoSearch.securesearch.ALL")
    criteria = req.params.get("criteria")
    since = None if criteria is None else _modified_since_criteria(criteria)
    # UNCONFIRMED whether the count includes converted and awaiting-approval records (docs/zoho-crm-api.md
    # §10); strictest plausible: it counts what the list API shows by default (reading count_includes_hidden).
    flt = EVERYTHING if req.sim.readings.count_includes_hidden else DEFAULT
    return 200, {"count": req.org.store.count(spec.api_name, since, flt)}


_MODIFIED_SINCE = re.compile(r"^\(Modified_Time:greater_equal:(?P<value>[^()]+)\)$")


def _modified_since_criteria(criteria: str) -> float:
    """The instant of ``(Modified_Time:greater_equal:<ISO-8601>)``: the one criterion the sync counts with.

    Zoho's count API takes search criteria (docs/zoho-crm-api.md §3.5, §3.7). Strictest plausible: any other
    criterion is refused with INVALID_QUERY instead of being ignored, so a client cannot rely on a filter
    this simulator would not apply.
    """
    match = _MODIFIED_SINCE.match(criteria.strip())
    since = parse_time(match.group("value")) if match else None
    if since is None:
        raise ApiError(400, "INVALID_QUERY", "invalid query formed", {"param_name": "criteria"})
    return since


def deleted(req: Request, name: str) -> tuple[int, Any]:
    spec = resolve_module(req, name)
    kind = req.params.get("type", "all")
    if kind not in ("all", "recycle", "permanent"):
        raise ApiError(
            400,
            "PATTERN_NOT_MATCHED",
            "Please check whether the input values are correct",
            {"param_name": "type"},
        )
    per_page = req.int_param("per_page", MAX_PER_PAGE, MAX_PER_PAGE)
    page = req.int_param("page", 1)
    since = req.modified_since()
    entries = req.org.store.deleted_entries(spec.api_name, kind, since)
    chunk = entries[(page - 1) * per_page : page * per_page]
    if not chunk:
        raise EmptyResponse(304 if since is not None and not entries else 204)
    users = req.org.users

    def ref(n: int | None) -> dict[str, str] | None:
        return None if n is None else {"name": users[n].full_name, "id": users[n].id}

    data = [
        {
            "deleted_by": ref(d.deleted_by),
            "id": d.id,
            "display_name": d.display_name,
            "type": d.type,
            "created_by": ref(d.created_by),
            "deleted_time": req.render_now(d.deleted_time),
        }
        for d in chunk
    ]
    info = {
        "per_page": per_page,
        "count": len(data),
        "page": page,
        "more_records": page * per_page < len(entries),
    }
    return 200, {"data": data, "info": info}
