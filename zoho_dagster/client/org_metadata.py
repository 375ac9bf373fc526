"""The org's settings beyond modules and fields: roles, profiles and currencies (one call each).

Why a module of its own: these endpoints feed only the metadata tables (``zoho_crm.roles``,
``zoho_crm.profiles``, ``zoho_crm.currencies``), refreshed with the ``modules`` stream; the client proper
keeps to what record streams need. Each function takes a :class:`~zoho_dagster.client.client.ZohoClient`,
so its calls and credits land in ``client.stats`` like every other call.

Currencies exist only in orgs with multi-currency on (``mc_status`` in ``/org``). Asked without it, Zoho's
answer is not documented; the simulator (and this module) take the strictest plausible one, a 400
``FEATURE_NOT_ENABLED`` (UNCONFIRMED, docs/zoho-crm-api.md §6.5 lists the code), which means "no currencies"
here, never a failure: a single-currency org has an empty ``zoho_crm.currencies``.
"""

from typing import Any

from zoho_dagster.client.client import ZohoClient
from zoho_dagster.client.errors import ZohoPermissionError
from zoho_dagster.client.http import Need

FEATURE_OFF_CODES = frozenset({"FEATURE_NOT_ENABLED", "FEATURE_NOT_SUPPORTED"})


def _listed(client: ZohoClient, path: str, root: str, need: Need) -> list[dict[str, Any]]:
    """The ``root`` list of one GET (settings lists are not paged); empty on 204."""
    answer = client.http.get(path, need)
    return [dict(row) for row in (answer.body or {}).get(root) or [] if isinstance(row, dict)]


def roles(client: ZohoClient) -> list[dict[str, Any]]:
    """Every role of the org (``GET /settings/roles``), as Zoho describes it."""
    return _listed(client, "/settings/roles", "roles", Need("ZohoCRM.settings.roles.READ", "the roles"))


def profiles(client: ZohoClient) -> list[dict[str, Any]]:
    """Every profile of the org (``GET /settings/profiles``), as Zoho describes it."""
    return _listed(
        client, "/settings/profiles", "profiles", Need("ZohoCRM.settings.profiles.READ", "the profiles")
    )


def multi_currency(org: dict[str, Any]) -> bool:
    """Whether ``org`` (the ``/org`` answer) has multi-currency on."""
    return org.get("mc_status") is True


def currencies(client: ZohoClient, org: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The org's currencies (``GET /org/currencies``), or ``[]`` when multi-currency is off.

    ``org`` (the ``/org`` answer, when the caller has it) saves the call: with ``mc_status`` false nothing is
    asked. An org whose ``/org`` says on but whose currencies endpoint answers ``FEATURE_NOT_ENABLED`` (the
    edition lost the feature) also has none.
    """
    if org is not None and not multi_currency(org):
        return []
    try:
        return _listed(
            client,
            "/org/currencies",
            "currencies",
            Need("ZohoCRM.settings.currencies.READ", "the currencies"),
        )
    except ZohoPermissionError as error:
        if error.code in FEATURE_OFF_CODES:
            return []
        raise
