"""`GET /crm/v6/{subform or linking module}` (every row of every live parent, with its parent) and the deals'
`Stage_History` related list (docs/zoho-crm-api.md §7.8, §3.9)."""

from __future__ import annotations

from itertools import islice
from typing import Any

from .children import STAGE_HISTORY_FIELDS
from .context import Request
from .errors import ApiError, EmptyResponse, invalid_module
from .records_api import MAX_PER_PAGE, discrete_page, requested_fields, resolve_module
from .schema import CHILD_MODULES_BY_NAME, ModuleSpec


def list_rows(req: Request, name: str) -> tuple[int, Any]:
    """Rows in id order (default descending, like records), page_token or page paging, 200 a page.

    Strict readings (UNCONFIRMED, docs/zoho-crm-api.md §7.8): sorting only by `id`; no `If-Modified-Since`
    (a subform row has no Modified_Time of its own), refused rather than ignored.
    """
    spec = CHILD_MODULES_BY_NAME.get(name)
    if spec is None:
        raise invalid_module()
    req.require_module_read(spec)
    fields = requested_fields(req, {f.api_name for f in spec.fields})
    per_page = req.int_param("per_page", MAX_PER_PAGE, MAX_PER_PAGE)
    if "page" in req.params and "page_token" in req.params:
        raise ApiError(
            400,
            "AMBIGUITY_DURING_PROCESSING",
            "You cannot use both cvid and sort_by, and page and page_token",
            {"ambiguity_due_to": ["page", "page_token"]},
        )
    if req.params.get("sort_by", "id") != "id":
        raise ApiError(400, "INVALID_DATA", "invalid data", {"param_name": "sort_by"})
    sort_order = req.params.get("sort_order", "desc")
    if sort_order not in ("asc", "desc"):
        raise ApiError(400, "INVALID_DATA", "invalid data", {"param_name": "sort_order"})
    if "if-modified-since" in req.headers:
        raise ApiError(400, "INVALID_DATA", "invalid data", {"header_name": "If-Modified-Since"})
    binding = tuple(sorted((k, v) for k, v in req.params.items() if k not in ("page", "page_token")))
    binding += (("module", spec.api_name),)
    presented = req.params.get("page_token")
    after: int | None = None
    page = 1
    if presented is not None:
        tok = req.sim.page_tokens.redeem(presented, req.org.org_id, req.user.id, binding, req.now)
        after, served, skip = tok.after[0], tok.served, 0
    else:
        page, skip = discrete_page(req, per_page)
        served = skip
    store = req.org.store
    stream = store.children.stream(spec, sort_order == "desc", after)
    items = list(islice(stream, skip, skip + per_page + 1))
    more = len(items) > per_page
    items = items[:per_page]
    if not items:
        raise EmptyResponse(204)
    data = []
    parents: dict[int, dict[str, Any] | None] = {}
    for _, index, row in items:
        if index not in parents:
            parents[index] = store.rendered(spec.parent, index)
        parent = parents[index]
        if parent is None:
            continue
        full = store.children.render_row(spec, parent, row)
        data.append({**{f: full[f] for f in fields if f in full}, "id": full["id"]})
    next_token = None
    if more:
        last = items[-1][0]
        next_token = req.sim.page_tokens.issue(
            req.org.org_id, req.user.id, binding, (last, last), served + len(items), req.now
        )
    info = {
        "call": False,
        "per_page": per_page,
        "next_page_token": next_token.token if next_token else None,
        "count": len(data),
        "page": page,
        "previous_page_token": presented,
        "page_token_expiry": req.render_now(next_token.expires_at) if next_token else None,
        "sort_by": "id",
        "sort_order": sort_order,
        "email": False,
        "more_records": more,
    }
    return 200, {"data": data, "info": info}


def related(req: Request, name: str, record_id: str, related_list: str) -> tuple[int, Any]:
    """`GET /crm/v6/Deals/{id}/Stage_History?fields=…`: the deal's stage changes, newest first, paged with
    `page`/`per_page` (≤ 200), like the other related lists (docs/zoho-crm-api.md §3.9)."""
    spec: ModuleSpec = resolve_module(req, name)
    if spec.api_name != "Deals" or related_list != "Stage_History":
        # Only this related list is simulated; strict: any other is an unknown related list.
        raise ApiError(
            400, "INVALID_DATA", "the related list given seems to be invalid", {"api_name": related_list}
        )
    fields = requested_fields(req, set(STAGE_HISTORY_FIELDS))
    per_page = req.int_param("per_page", MAX_PER_PAGE, MAX_PER_PAGE)
    page, skip = discrete_page(req, per_page)
    store = req.org.store
    index = store.index_of("Deals", record_id)
    deal = store.rendered("Deals", index) if index is not None else None
    if index is None or deal is None:
        raise ApiError(400, "INVALID_DATA", "the related id given seems to be invalid", {"id": record_id})
    rows = list(reversed(store.children.stage_history(index)))
    chunk = rows[skip : skip + per_page]
    if not chunk:
        raise EmptyResponse(204)
    offset = store.owner_offset("Deals", index)
    data = []
    for row in chunk:
        full = store.children.render_history(deal, row, offset)
        data.append({**{f: full[f] for f in fields if f in full}, "id": full["id"]})
    info = {
        "per_page": per_page,
        "count": len(data),
        "page": page,
        "more_records": page * per_page < len(rows),
    }
    return 200, {"data": data, "info": info}
