"""Users (docs/zoho-crm-api.md §3.4), modules metadata (§3.2) and fields metadata (§3.3)."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from .context import Request
from .datagen import DAY
from .errors import ApiError, EmptyResponse
from .schema import (
    CHILD_MODULES,
    CHILD_OF_FIELD,
    LAYOUT_NAMES,
    MODULES,
    FieldSpec,
    ModuleSpec,
    any_module_spec,
    field_id,
    layout_id,
    module_row_id,
    module_spec,
)
from .state import Org

USER_TYPES = (
    "AllUsers",
    "ActiveUsers",
    "DeactiveUsers",
    "ConfirmedUsers",
    "NotConfirmedUsers",
    "DeletedUsers",
    "ActiveConfirmedUsers",
    "AdminUsers",
    "ActiveConfirmedAdmins",
    "CurrentUser",
)
NON_API_MODULES = (("Home", "Home"), ("Feeds", "Feeds"), ("Documents", "Documents"))


def users(req: Request) -> tuple[int, Any]:
    req.require("ZohoCRM.users.READ", "ZohoCRM.users.ALL")
    kind = req.params.get("type", "AllUsers")
    if kind not in USER_TYPES:
        raise ApiError(400, "INVALID_DATA", "invalid data", {"param_name": "type"})
    per_page = req.int_param("per_page", 200, 200)
    page = req.int_param("page", 1)
    since = req.modified_since()
    everyone = req.org.users
    admins = [u for u in everyone if u.admin]
    chosen = {
        "AdminUsers": admins,
        "ActiveConfirmedAdmins": admins,
        "CurrentUser": [req.user],
        "DeactiveUsers": [],
        "NotConfirmedUsers": [],
        "DeletedUsers": [],
    }.get(kind, everyone)
    if since is not None:
        chosen = [u for u in chosen if u.created_time >= since]
        if not chosen:
            raise EmptyResponse(304)
    chunk = chosen[(page - 1) * per_page : page * per_page]
    if not chunk:
        raise EmptyResponse(204)
    admin = everyone[0]
    rows = []
    for u in chunk:
        created = req.render_now(u.created_time)
        rows.append(
            {
                "id": u.id,
                "zuid": str(int(u.id) % 10**9),
                "full_name": u.full_name,
                "first_name": u.first_name,
                "last_name": u.last_name,
                "email": u.email,
                "status": "active",
                "confirm": True,
                "role": {
                    "name": "CEO" if u.admin else "Manager",
                    "id": str(int(admin.id) + (7 if u.admin else 13)),
                },
                "profile": {
                    "name": "Administrator" if u.admin else "Standard",
                    "id": str(int(admin.id) + (9 if u.admin else 11)),
                },
                "time_zone": u.time_zone,
                "locale": "en_US",
                "country_locale": "en_US",
                "language": "en_US",
                "date_format": "MM-dd-yyyy",
                "time_format": "hh:mm a",
                "created_time": created,
                "created_by": {"name": admin.full_name, "id": admin.id},
                "Modified_Time": created,
                "Modified_By": {"name": admin.full_name, "id": admin.id},
                "Reporting_To": None,
                "type__s": "Regular User",
                "Isonline": False,
                "offset": u.offset * 60_000,
            }
        )
    info = {
        "per_page": per_page,
        "count": len(rows),
        "page": page,
        "more_records": page * per_page < len(chosen),
    }
    return 200, {"users": rows, "info": info}


def _module_row(org: Org, spec: ModuleSpec) -> dict[str, Any]:
    prefix = int(org.store.gen.prefix)
    display_field = None
    if not spec.parent:
        # The record's name field (docs/zoho-crm-api.md §3.2); subform and linking modules have none.
        position = [f.api_name for f in spec.fields].index(spec.name_field)
        display_field = {"api_name": spec.name_field, "id": field_id(prefix, spec, position)}
    parent = module_spec(spec.parent) if spec.parent else None
    return {
        "api_name": spec.api_name,
        "module_name": spec.plural,
        "plural_label": spec.plural,
        "singular_label": spec.singular,
        "api_supported": True,
        "generated_type": spec.generated_type,
        "id": module_row_id(prefix, spec),
        "visibility": 1,
        "status": "visible",
        "viewable": True,
        "creatable": True,
        "editable": True,
        "deletable": True,
        "convertable": spec.api_name == "Leads",
        "show_as_tab": not spec.parent,
        "modified_time": None,
        "profiles": [{"name": "Administrator", "id": str(int(org.users[0].id) + 9)}],
        "parent_module": {}
        if parent is None
        else {"api_name": parent.api_name, "id": module_row_id(prefix, parent)},
        "recycle_bin_on_delete": not spec.parent,
        "display_field": display_field,
    }


def modules(req: Request, name: str | None = None) -> tuple[int, Any]:
    req.require(
        "ZohoCRM.settings.ALL",
        "ZohoCRM.settings.READ",
        "ZohoCRM.settings.modules.READ",
        "ZohoCRM.settings.modules.ALL",
    )
    if name is not None:
        spec = any_module_spec(name)
        if spec is None:
            raise ApiError(
                400, "INVALID_MODULE", "the module name given seems to be invalid", {"resource_path_index": 0}
            )
        return 200, {"modules": [_module_row(req.org, spec)]}
    return 200, {"modules": module_rows(req.org)}


def module_rows(org: Org) -> list[dict[str, Any]]:
    """Every module of ``org`` as ``/settings/modules`` lists it (also the ``modules`` stream's truth)."""
    rows = [_module_row(org, spec) for spec in (*MODULES, *CHILD_MODULES)]
    for number, (api_name, label) in enumerate(NON_API_MODULES):
        rows.append(
            {
                **_module_row(org, MODULES[0]),
                "api_name": api_name,
                "module_name": label,
                "plural_label": label,
                "singular_label": label,
                "api_supported": False,
                "convertable": False,
                "display_field": None,
                "id": str(int(org.store.gen.prefix) * 10**12 + 900 + number),
            }
        )
    return rows


def _field_row(req: Request, spec: ModuleSpec, number: int, f: FieldSpec) -> dict[str, Any]:
    base = int(req.org.store.gen.prefix) * 10**12 + spec.number * 10**8
    length = {
        "text": 255,
        "textarea": 32000,
        "email": 100,
        "phone": 30,
        "website": 255,
        "integer": 9,
        "bigint": 18,
        "currency": 16,
        "double": 16,
        "decimal": 16,
        "percent": 5,
    }.get(f.data_type, 120)
    if f.rich_text:
        length = 50000  # a rich-text field holds up to 50,000 characters (docs/zoho-crm-api.md §2.5)
    pick = [
        {
            "display_value": v,
            "actual_value": v,
            "id": str(base + 50_000 + number * 100 + k),
            "sequence_number": k + 1,
            "type": "used",
        }
        for k, v in enumerate(f.picklist)
    ]
    if f.data_type == "picklist":
        pick.insert(
            0,
            {
                "display_value": "-None-",
                "actual_value": "-None-",
                "id": str(base + 49_999),
                "sequence_number": 0,
                "type": "used",
            },
        )
    lookup: dict[str, Any] = {}
    prefix = int(req.org.store.gen.prefix)
    if f.data_type == "lookup":
        target = any_module_spec(f.lookup)
        assert target is not None
        lookup = {
            # The target's id is its id in /settings/modules (and in a Parent_Id's `module`), §3.2, §3.3.
            "module": {"api_name": target.api_name, "id": module_row_id(prefix, target)},
            "display_label": f.lookup,
            "api_name": f.api_name,
            "id": str(base + 60_000 + number),
        }
    return {
        "api_name": f.api_name,
        "data_type": f.data_type,
        "json_type": f.json_type,
        "length": length,
        "decimal_place": 2 if f.data_type in ("currency", "double", "decimal", "percent") else None,
        "system_mandatory": f.api_name in ("Last_Name", spec.name_field) and not f.read_only,
        "read_only": f.read_only,
        "field_read_only": f.read_only,
        "visible": True,
        "view_type": {
            "view": True,
            "edit": not f.read_only,
            "create": not f.read_only,
            "quick_create": False,
        },
        "field_label": f.label,
        "display_label": f.label,
        "custom_field": f.custom,
        "virtual_field": False,
        "id": field_id(prefix, spec, number),
        "pick_list_values": pick,
        "lookup": lookup,
        "auto_number": {"prefix": "LN-", "suffix": "", "start_number": 1}
        if f.data_type == "autonumber"
        else {},
        "formula": {"return_type": f.return_type, "expression": f.expression}
        if f.data_type == "formula"
        else {},
        "rollup_summary": {
            "return_type": f.return_type,
            "related_list": {"api_name": "Deals"},
            "function": "SUM",
        }
        if f.data_type == "rollup_summary"
        else {},
        "currency": {"rounding_option": "normal", "precision": 2} if f.data_type == "currency" else {},
        # Multi-line fields say which kind they are: small, large or rich_text (OAS v8 `fields.json`
        # `textarea.type`; §3.3); only rich text is HTML and cut to 500 characters in lists (§2.5).
        **(
            {"textarea": {"type": "rich_text" if f.rich_text else "large"}}
            if f.data_type == "textarea"
            else {}
        ),
        "crypt": None,
        "history_tracking": None,
        "multiselectlookup": _linking(prefix, spec, f) if f.data_type == "multiselectlookup" else {},
        **({"multiuserlookup": _linking(prefix, spec, f)} if f.data_type == "multiuserlookup" else {}),
        "associated_module": {"api_name": f.lookup, "id": module_row_id(prefix, _spec(f.lookup))}
        if f.data_type == "subform"
        else None,
        "ui_type": 1,
        "display_type": -1,
        "profiles": [
            {
                "permission_type": "read_write",
                "name": "Administrator",
                "id": str(int(req.org.users[0].id) + 9),
            }
        ],
    }


def fields(req: Request) -> tuple[int, Any]:
    req.require(
        "ZohoCRM.settings.ALL",
        "ZohoCRM.settings.READ",
        "ZohoCRM.settings.fields.READ",
        "ZohoCRM.settings.fields.ALL",
    )
    name = req.params.get("module")
    if not name:
        raise ApiError(
            400,
            "REQUIRED_PARAM_MISSING",
            "One of the expected parameter is missing",
            {"param_name": "module"},
        )
    spec = any_module_spec(name)
    if spec is None:
        raise ApiError(
            400, "INVALID_MODULE", "the module name given seems to be invalid", {"param_name": "module"}
        )
    # `type`: by default the fields in use; `unused` the fields removed from every layout; `all` both (Zoho's
    # field-meta pages v2.1 to v6). UNCONFIRMED in v6 whether `used` (OAS v8's third value) is accepted;
    # strict: any other value is refused.
    kind = req.params.get("type")
    if kind is not None and kind not in ("all", "unused"):
        raise ApiError(400, "INVALID_DATA", "invalid data", {"param_name": "type"})
    from .records_api import present_fields

    present = present_fields(req, spec)
    drift = req.org.store.computed.drifted(spec.api_name)
    rows = []
    for n, f in enumerate(spec.fields):
        if f.api_name not in present or (f.unused if kind is None else kind == "unused" and not f.unused):
            continue
        if f.api_name in drift:
            f = dataclasses.replace(f, data_type=drift[f.api_name], picklist=())  # type drift (§3.3)
        rows.append(_field_row(req, spec, n, f))
    if not rows:
        raise EmptyResponse(204)  # e.g. type=unused on a module without unused fields ([OAS8] fields.json)
    return 200, {"fields": rows}


LAYOUT_SCOPES = ("ZohoCRM.settings.ALL", "ZohoCRM.settings.layouts.ALL", "ZohoCRM.settings.layouts.READ")
"""The scopes Zoho's layouts-meta pages (v2 to v7) and OAS v8 `layouts.json` name; strict: not
`ZohoCRM.settings.READ`."""


def layout_rows(org: Org, spec: ModuleSpec, render: Any) -> list[dict[str, Any]]:
    """The module's two layouts as `/settings/layouts` gives them (keys of SDK6 `layouts/layouts.py` and OAS
    v8 `layouts.json`); each section lists the fields it shows (an unused field is in none)."""
    prefix = int(org.store.gen.prefix)
    admin = org.users[0]
    by = {"name": admin.full_name, "id": admin.id}
    shown = [
        {"api_name": f.api_name, "id": field_id(prefix, spec, n)}
        for n, f in enumerate(spec.fields)
        if not f.unused and (f.api_name not in ("Currency", "Exchange_Rate") or org.mc_status)
    ]
    rows = []
    for k, name in enumerate(LAYOUT_NAMES):
        when = render(org.store.gen.now0 - (500 - 40 * k) * DAY)
        rows.append(
            {
                "id": layout_id(prefix, spec, k),
                "name": name,
                "display_label": name,
                "api_name": name,
                "status": "active",
                "visible": True,
                "source": "crm",
                "generated_type": "default" if k == 0 else "custom",
                "display_type": -1,
                "show_business_card": False,
                "has_more_profiles": False,
                "created_time": when,
                "modified_time": when,
                "created_by": by,
                "modified_by": by,
                "created_for": None,
                "convert_mapping": _convert_mapping(org, spec),
                "profiles": [{"name": "Administrator", "id": str(int(admin.id) + 9), "default": k == 0}],
                "sections": [
                    {
                        "display_label": f"{spec.singular} Information",
                        "api_name": f"{spec.singular.replace(' ', '_')}_Information",
                        "name": f"{spec.singular} Information",
                        "sequence_number": 1,
                        "column_count": 2,
                        "fields": shown,
                    }
                ],
                "actions_allowed": {
                    "edit": True,
                    "rename": True,
                    "clone": True,
                    "downgrade": k != 0,
                    "delete": k != 0,
                    "deactivate": k != 0,
                    "set_layout_permissions": True,
                },
            }
        )
    return rows


def _convert_mapping(org: Org, spec: ModuleSpec) -> dict[str, Any] | None:
    """Which layouts a converted lead's records take (Leads only)."""
    if spec.api_name != "Leads":
        return None
    prefix = int(org.store.gen.prefix)
    return {
        target: {"name": LAYOUT_NAMES[0], "id": layout_id(prefix, _spec(target), 0)}
        for target in ("Contacts", "Accounts", "Deals")
    }


def layouts(req: Request) -> tuple[int, Any]:
    """`GET /crm/v6/settings/layouts?module=…` → `{"layouts": […]}` (docs/zoho-crm-api.md §3.11)."""
    req.require(*LAYOUT_SCOPES)
    name = req.params.get("module")
    if not name:
        raise ApiError(
            400,
            "REQUIRED_PARAM_MISSING",
            "One of the expected parameter is missing",
            {"param_name": "module"},
        )
    spec = module_spec(name)
    if spec is None:
        raise ApiError(
            400, "INVALID_MODULE", "the module name given seems to be invalid", {"param_name": "module"}
        )
    if not spec.has_layouts:
        # Notes has no layouts; strict (UNCONFIRMED): refused, as the tags API refuses a module without tags.
        raise ApiError(400, "INVALID_MODULE", "the given module is not supported for this api", {})
    return 200, {"layouts": layout_rows(req.org, spec, req.render_now)}


def _spec(name: str) -> ModuleSpec:
    spec = any_module_spec(name)
    assert spec is not None, name
    return spec


def _linking(prefix: int, spec: ModuleSpec, f: FieldSpec) -> dict[str, Any]:
    """The `multiselectlookup` / `multiuserlookup` object of a parent field: the linking module, its field
    pointing back at the parent and its field pointing at the connected module (docs/zoho-crm-api.md §3.3)."""
    child = CHILD_OF_FIELD[(spec.api_name, f.api_name)]
    names = [g.api_name for g in child.fields]
    connected = module_spec(child.connected_module)
    connected_id = module_row_id(prefix, connected) if connected is not None else str(prefix * 10**12 + 99)
    return {
        "linking_details": {
            "module": {"api_name": child.api_name, "id": module_row_id(prefix, child)},
            "lookup_field": {
                "api_name": child.link_field,
                "id": field_id(prefix, child, names.index(child.link_field)),
            },
            "connected_lookup_field": {
                "api_name": child.connected_field,
                "id": field_id(prefix, child, names.index(child.connected_field)),
            },
        },
        "connected_details": {"module": {"api_name": child.connected_module, "id": connected_id}},
    }


# `license_details.paid_type` by edition. Zoho's own values are only partly known (docs/zoho-crm-api.md
# §6.3: "zohooneenterprise" is one seen in the wild); UNCONFIRMED, so the simulator uses the plain edition
# names in lower case, and the Free edition reports `paid: false` with no paid type, the strictest case for a
# client that must fall back to the lowest concurrency.
PAID_TYPES = {
    "Free": None,
    "Standard": "standard",
    "Professional": "professional",
    "Enterprise": "enterprise",
    "Ultimate": "ultimate",
}


def org(req: Request) -> tuple[int, Any]:
    """`GET /crm/v6/org`: the organisation, with the edition in `license_details` (docs §6.3)."""
    req.require("ZohoCRM.org.READ", "ZohoCRM.org.ALL")
    edition = req.org.limits.edition
    paid_type = PAID_TYPES.get(edition)
    admin = req.org.users[0]
    row = {
        "id": req.org.org_id,
        "company_name": f"Simulated org {req.org.org_id}",
        "primary_email": admin.email,
        "time_zone": admin.time_zone,
        "currency": "US Dollar",
        "currency_symbol": "$",
        "iso_code": "USD",
        "mc_status": req.org.mc_status,
        "country_code": req.org.region,
        "license_details": {
            "paid": paid_type is not None,
            "paid_type": paid_type,
            "trial_type": None,
            "trial_expiry": None,
            "paid_expiry": None,
            "users_license_purchased": len(req.org.users),
        },
    }
    return 200, {"org": [row]}


# --- tags (docs/zoho-crm-api.md §4.1) -----------------------------------------------------------------------
# The colours Zoho's create-tag page allows; a tag created without one has `color_code: null`.
TAG_COLOURS = ("#F17574", "#F48435", "#E7A826", "#A8C026", "#63C57E", "#1DB9B4", "#57B1FD", "#879BFC")
# Tags a module may hold, by edition (Zoho's get-tag-list page, v8); Free is not listed, so UNCONFIRMED: the
# smallest, Standard's.
TAGS_ALLOWED = {"Free": 20, "Standard": 20, "Professional": 60, "Enterprise": 100, "Ultimate": 200}
# The v6 tag pages list the record modules, Notes excepted; the strict reading refuses Notes.
TAGS_UNSUPPORTED = frozenset({"Notes"})


class _EveryDraw(random.Random):
    """Draws that are all 0.0: the record generator's tag value then holds every tag it can give."""

    def random(self) -> float:
        return 0.0


def _module_tags(org: Org, spec: ModuleSpec) -> list[dict[str, Any]]:
    """The module's tags as ``{"id", "name", "created" (epoch seconds), "colour", "by" (a user)}``.

    First the tags the record generator gives (its own list, so ids and names are the records' ``Tag``), then
    those found only on records the control plane wrote. Generated names are unique per module, as in Zoho; a
    control-plane write that reuses a name with another id shows both, as an org breaking the rule would.
    """
    field = spec.by_name.get("Tag")
    if field is None:
        return []
    gen = org.store.gen
    admin = org.users[0]
    found: dict[str, dict[str, Any]] = {}
    for k, tag in enumerate(gen._value(spec, field, _EveryDraw(), 0, {}) or []):  # the generator's own list
        colour = None if k % 4 == 3 else TAG_COLOURS[k % len(TAG_COLOURS)]  # one in four has no colour
        created = gen.now0 - 400 * DAY + k * DAY
        found[str(tag["id"])] = {"name": str(tag["name"]), "created": created, "colour": colour, "by": admin}
    for rec in list(org.store.modules[spec.api_name].live.values()):
        for tag in rec.get("Tag") or []:
            if isinstance(tag, dict) and tag.get("id") and str(tag["id"]) not in found:
                name = str(tag.get("name"))
                found[str(tag["id"])] = {"name": name, "created": gen.now0, "colour": None, "by": admin}
    return [{"id": tag_id, **tag} for tag_id, tag in found.items()]


def tags(req: Request) -> tuple[int, Any]:
    """`GET /crm/v6/settings/tags?module=…`: the module's tags (Zoho's get-tag-list page; OAS v8 `getTags`).

    Scope `ZohoCRM.settings.ALL` or `ZohoCRM.settings.tags.{ALL,READ}`; not `ZohoCRM.settings.READ`, which
    the tag pages do not name (strict). No paging: a module holds at most a few hundred tags.
    """
    req.require("ZohoCRM.settings.ALL", "ZohoCRM.settings.tags.ALL", "ZohoCRM.settings.tags.READ")
    name = req.params.get("module")
    if not name:
        raise ApiError(
            400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param": "module"}
        )
    spec = module_spec(name)
    if spec is None:
        raise ApiError(400, "INVALID_MODULE", "the module name given seems to be invalid", {})
    if spec.api_name in TAGS_UNSUPPORTED:
        raise ApiError(400, "INVALID_MODULE", "the given module is not supported for this api", {})
    mine = req.params.get("my_tags", "false")
    if mine not in ("true", "false"):
        raise ApiError(400, "INVALID_DATA", "invalid data", {"param_name": "my_tags"})
    rows = []
    for tag in _module_tags(req.org, spec):
        if mine == "true" and tag["by"].id != req.user.id:
            continue
        when = req.render_now(tag["created"])
        by = {"name": tag["by"].full_name, "id": tag["by"].id}
        rows.append(
            {
                "created_time": when,
                "modified_time": when,
                "name": tag["name"],
                "modified_by": by,
                "id": tag["id"],
                "created_by": dict(by),
                "color_code": tag["colour"],
            }
        )
    allowed = TAGS_ALLOWED.get(req.org.limits.edition, TAGS_ALLOWED["Standard"])
    return 200, {"tags": rows, "info": {"count": len(rows), "allowed_count": allowed}}
