"""``ZohoClient``: the one object the assets talk to (docs/contracts.md §2).

It only composes the rooms of this package — token provider, limiter, HTTP manners, window reader — and names
what each endpoint needs (its OAuth scope and credit cost), so that refusals can say which scope is missing.
Every method adds its calls and credits to ``client.stats``.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from zoho_dagster.client.auth import Credentials, TokenProvider
from zoho_dagster.client.errors import ZohoAPIError
from zoho_dagster.client.http import Answer, Need, ZohoHttp
from zoho_dagster.client.limiter import shared_limiter
from zoho_dagster.client.policy import RetryPolicy
from zoho_dagster.client.records import CURSOR_FIELD, PER_PAGE, Record, WindowReader
from zoho_dagster.client.redact import mask
from zoho_dagster.client.regions import hosts
from zoho_dagster.client.stats import CallStats
from zoho_dagster.client.timeutil import header_datetime
from zoho_dagster.client.token_cache import PROCESS_TOKEN_CACHE, TokenCache

PAGE_LIMIT_CODE = "DISCRETE_PAGINATION_LIMIT_EXCEEDED"
LIST_UNSUPPORTED_TYPES = frozenset({"subform", "multiselectlookup", "multiuserlookup"})
"""Field types Zoho leaves out of list responses (docs/zoho-crm-api.md §3.3, §7.8): asking for them only costs
field slots, and a table built from list reads has no values for them."""


def listable_fields(fields: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fields of ``fields`` (a module's metadata) that the records list API returns."""
    return [field for field in fields if field.get("data_type") not in LIST_UNSUPPORTED_TYPES]


def module_scope(module: str) -> str:
    """The narrowest OAuth scope that reads ``module``'s records, e.g. ``ZohoCRM.modules.leads.READ``."""
    return f"ZohoCRM.modules.{module.lower()}.READ"


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs; built by ``ZohoCRMResource`` from settings, or directly in code.

    ``token_cache`` is where tokens are shared (default: in this process only); the resource injects a cache
    shared by every process through Postgres.
    """

    credentials: Credentials
    token_cache: TokenCache = field(default=PROCESS_TOKEN_CACHE, repr=False)
    api_domain: str | None = None
    requests_per_second: float = 5.0
    max_concurrency: int = 3
    policy: RetryPolicy = field(default_factory=RetryPolicy)


class ZohoClient:
    """Zoho CRM v6, read-only: metadata, records by ``Modified_Time`` window, users, deletions, counts."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        credentials = config.credentials
        region_hosts = hosts(credentials.region, credentials.accounts_url, config.api_domain)
        self.stats = CallStats()
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, config.max_concurrency))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.tokens = TokenProvider(credentials, config.token_cache, config.policy, self.session)
        self.limiter = shared_limiter(
            (credentials.accounts_url, credentials.client_id, credentials.org_key),
            config.requests_per_second,
            config.max_concurrency,
        )
        self.http = ZohoHttp(
            self.tokens,
            self.limiter,
            config.policy,
            self.session,
            self.stats,
            api_domain_override=config.api_domain,
            default_api_domain=region_hosts.api_domain,
        )

    def __repr__(self) -> str:
        c = self.config.credentials
        return (
            f"ZohoClient(region={c.region!r}, accounts_url={c.accounts_url!r}, client_id={c.client_id!r}, "
            f"client_secret={mask(c.client_secret)}, grant={c.grant!r})"
        )

    def close(self) -> None:
        """Release the HTTP connections."""
        self.session.close()

    def __enter__(self) -> "ZohoClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------------- metadata

    def list_modules(self) -> list[dict[str, Any]]:
        """Every module of the org as Zoho describes it (``/settings/modules``)."""
        answer = self.http.get(
            "/settings/modules", Need("ZohoCRM.settings.modules.READ", "the modules metadata")
        )
        return list((answer.body or {}).get("modules") or [])

    def list_fields(self, module: str) -> list[dict[str, Any]]:
        """The fields metadata of ``module`` (``/settings/fields?module=``); empty when Zoho answers 204."""
        answer = self.http.get(
            "/settings/fields",
            Need("ZohoCRM.settings.fields.READ", f"the fields metadata of {module}"),
            params={"module": module},
        )
        return list((answer.body or {}).get("fields") or [])

    def count(self, module: str, modified_since: datetime | None = None) -> int:
        """Zoho's record count of ``module`` (refreshed by Zoho with a few minutes' delay).

        ``modified_since`` counts only records with ``Modified_Time >= modified_since``: the synced history
        starts at the anchor date, so a count of the whole module could never match the table.
        """
        params: dict[str, str] = {}
        if modified_since is not None:
            params["criteria"] = f"(Modified_Time:greater_equal:{header_datetime(modified_since)})"
        answer = self.http.get(
            f"/{module}/actions/count",
            Need("ZohoSearch.securesearch.READ", f"the record count of {module}"),
            params=params,
        )
        return int((answer.body or {}).get("count") or 0)

    # ------------------------------------------------------------------------------------------------ records

    def iter_records(
        self, module: str, start: datetime, end: datetime, fields: Sequence[str]
    ) -> Iterator[list[Record]]:
        """Pages of records with ``start <= Modified_Time < end``, each holding ``fields`` + ``id``, lazily.

        Complete whatever the field count (passes of ≤50 joined on ``id``) or window size (split in time past
        the page-token cap). Naive datetimes are taken as UTC.
        """
        reader = WindowReader(
            self.http,
            module,
            fields,
            start,
            end,
            Need(module_scope(module), f"the {module} records"),
            parallelism=self.config.max_concurrency,
        )
        return iter(reader)

    def changed_since(self, module: str, since: datetime) -> bool:
        """Whether any record of ``module`` was modified at or after ``since``: one call, 304/204 mean no."""
        answer = self.http.get(
            f"/{module}",
            Need(module_scope(module), f"the {module} records"),
            params={"fields": CURSOR_FIELD, "per_page": 1},
            headers={"If-Modified-Since": header_datetime(since)},
        )
        return bool(answer.body and answer.body.get("data"))

    def iter_deleted(self, module: str, since: datetime | None = None) -> Iterator[list[dict[str, Any]]]:
        """Pages of ``/{module}/deleted?type=all`` entries (recycle bin and permanent), newer than ``since``.
        """
        headers = {"If-Modified-Since": header_datetime(since)} if since is not None else {}
        return self._paged(
            f"/{module}/deleted",
            "data",
            Need(module_scope(module), f"the deleted {module} records"),
            {"type": "all"},
            headers,
        )

    def iter_users(self) -> Iterator[list[dict[str, Any]]]:
        """Pages of every user of the org (``/users?type=AllUsers``; root key ``users``)."""
        return self._paged(
            "/users", "users", Need("ZohoCRM.users.READ", "the users"), {"type": "AllUsers"}, {}
        )

    def _paged(
        self, path: str, root: str, need: Need, params: dict[str, Any], headers: dict[str, str]
    ) -> Iterator[list[dict[str, Any]]]:
        """Follow ``page`` until ``more_records`` is false (these endpoints have no page tokens)."""
        page = 1
        while True:
            try:
                answer: Answer = self.http.get(
                    path, need, params={**params, "page": page, "per_page": PER_PAGE}, headers=headers
                )
            except ZohoAPIError as error:
                if error.code == PAGE_LIMIT_CODE:
                    raise ZohoAPIError(
                        f"GET {path} has more than {(page - 1) * PER_PAGE} entries, the most Zoho pages "
                        "without a page token; read it more often (a later `since`) so each read stays "
                        "under the limit.",
                        code=error.code,
                        status=error.status,
                    ) from None
                raise
            body = answer.body or {}
            rows = list(body.get(root) or [])
            if rows:
                yield rows
            if not rows or not (body.get("info") or {}).get("more_records"):
                return
            page += 1
