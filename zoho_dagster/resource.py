"""``ZohoCRMResource``: the Dagster face of the client, configured from docs/design.md §1's variables.

Secrets are ``dg.EnvVar`` references (:meth:`ZohoCRMResource.from_env`), so Dagster shows variable names,
never values, and ``Definitions`` load on a machine where no secret is set. The resource validates its own
fields with :func:`zoho_dagster.settings.validate_settings` (the code that validates the environment), so a
missing or bad value fails at the first step with the same one sentence naming the variable and the fix.

The resource is also where the layers meet: it builds the client (which knows nothing of databases) and
injects the Postgres token cache, so every process and host shares one access token.
"""

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from zoho_dagster.client import MAX_EDITION_CONCURRENCY, ClientConfig, RetryPolicy, ZohoClient, mask
from zoho_dagster.postgres.database import resolve_database_url
from zoho_dagster.postgres.token_cache import PostgresTokenCache
from zoho_dagster.settings import (
    CONNECTION,
    DATABASE_URL,
    SCOPES,
    SECRET_VARIABLES,
    TUNING_VARIABLES,
    ZohoSettings,
    read_environment,
    validate_settings,
)

POOL = "zoho_crm_api"
"""The Dagster pool every stream asset, and every check that calls Zoho, runs in (dagster.yaml limits it)."""

RESOURCE_KEY = "zoho_crm"
"""The key of :class:`ZohoCRMResource` in the package's ``Definitions``."""
IO_MANAGER_KEY = "zoho_crm_io_manager"
"""The key of the package's :class:`~zoho_dagster.postgres.io_manager.PostgresIOManager`: its own, not
Dagster's default ``io_manager``, so that the package's definitions merge into a project that has its own IO
manager (each asset names the key it is written by)."""


def pool_limit(instance: dg.DagsterInstance, pool: str) -> int:
    """Steps of ``pool`` that may run at once on ``instance``: its slots, else the default limit, else 1."""
    try:
        slots = instance.event_log_storage.get_concurrency_info(pool).slot_count
    except Exception:  # storages without concurrency support (in-memory test instances)
        slots = 0
    if slots:
        return int(slots)
    default = instance.get_concurrency_config().pool_config.default_pool_limit
    return int(default) if default else 1

_SECRET_FIELDS = frozenset({"client_secret", "refresh_token", "connection", "database_url"})


class ZohoCRMResource(dg.ConfigurableResource):
    """A Zoho CRM org to read from; ``get_client()`` gives a ``ZohoClient`` with its own call statistics."""

    client_id: str | None = Field(default=None, description="OAuth client ID of a Zoho Self Client.")
    client_secret: str | None = Field(default=None, description="OAuth client secret (use dg.EnvVar).")
    soid: str | None = Field(
        default=None, description="ZohoCRM.<org_id>: selects the client-credentials grant for that org."
    )
    refresh_token: str | None = Field(
        default=None,
        description="Refresh token: the alternative to soid (refresh-token grant; use dg.EnvVar).",
    )
    region: str = Field(default="US", description="Zoho data centre: US, EU, IN, AU, JP, CN, CA or SA.")
    accounts_url: str | None = Field(
        default=None,
        description="Accounts server override, e.g. https://accounts.zoho.eu (default: region's).",
    )
    api_domain: str | None = Field(
        default=None, description="API domain override (default: the api_domain of the token answer)."
    )
    connection: str | None = Field(
        default=None,
        description="A whole Sling-style ZOHO_CRM connection (YAML/JSON); single fields above win over it.",
    )
    scopes: str | None = Field(
        default=None, description="Comma-separated OAuth scopes for the client-credentials grant."
    )
    database_url: str | None = Field(
        default=None,
        description="Postgres holding the shared token cache; unset: ZOHO_DAGSTER_DATABASE_URL or embedded.",
    )
    requests_per_second: float | None = Field(
        default=None,
        gt=0,
        description="Optional cap on request starts per second, per process (ZOHO_CRM_REQUESTS_PER_SECOND); "
        "unset: no cap, Zoho limits concurrency rather than rate.",
    )
    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=MAX_EDITION_CONCURRENCY,
        description="Requests in flight per process (ZOHO_CRM_MAX_CONCURRENCY); unset: the org's edition "
        "concurrency divided by the zoho_crm_api pool's limit (README, 'Speed and manners').",
    )
    bulk_threshold: int | None = Field(
        default=None,
        ge=0,
        description="Windows of more records are read with Bulk Read (ZOHO_CRM_BULK_THRESHOLD); 0: never.",
    )
    coql_passes: bool | None = Field(
        default=None,
        description="Read the fields beyond a records API pass with COQL where their type allows "
        "(ZOHO_CRM_COQL_PASSES; default true).",
    )
    whole_rich_text: bool | None = Field(
        default=None,
        description="Read rich text the list API cut at 500 characters again whole, one credit per such "
        "record (ZOHO_CRM_WHOLE_RICH_TEXT; default true; false keeps the cut value).",
    )
    max_retries: int = Field(default=6, ge=0, description="Retries of 429/5xx/resets/truncations per call.")
    backoff_base_seconds: float = Field(
        default=0.5, gt=0, description="First retry wait; doubles per retry, with jitter."
    )
    backoff_max_seconds: float = Field(default=30.0, gt=0, description="Longest wait between two retries.")
    _concurrency_share: int = PrivateAttr(default=1)
    token_throttle_wait_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Wait after Zoho's token throttle (Access Denied) before asking again.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "ZohoCRMResource":
        """The resource with a ``dg.EnvVar`` for every docs/design.md §1 variable that is set (others left
        unset).
        """
        env = os.environ if environ is None else environ
        fields: dict[str, object] = {}
        for name, variable in SECRET_VARIABLES.items():
            if env.get(variable, "").strip():
                fields[name] = dg.EnvVar(variable)
        for name, variable in (
            ("connection", CONNECTION),
            ("scopes", SCOPES),
            ("database_url", DATABASE_URL),
        ):
            if env.get(variable, "").strip():
                fields[name] = dg.EnvVar(variable)
        fields.update(overrides)
        return cls(**fields)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Pydantic's repr, with secrets masked (a resource is printed in logs and errors)."""
        for name, value in super().__repr_args__():
            yield name, (mask(value) if name in _SECRET_FIELDS and isinstance(value, str) else value)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Learn how many runs may call Zoho at once (the pool's limit) to size this process's share."""
        if context.instance is not None:
            self._concurrency_share = pool_limit(context.instance, POOL)

    def settings(self) -> ZohoSettings:
        """The environment, overlaid with the fields set here, validated (same sentences, citing the source).

        The environment is read even when fields are set, so run config that sets only a tuning field
        (``resources.zoho_crm.config: {max_concurrency: 10}``) keeps the credentials from ``ZOHO_CRM_*``.
        """
        raw = read_environment()
        if self.connection is not None:
            raw.add_connection(self.connection, f"{CONNECTION} (resource field connection)")
        fields = (
            *SECRET_VARIABLES.items(),
            *TUNING_VARIABLES.items(),
            ("scopes", SCOPES),
            ("database_url", DATABASE_URL),
        )
        for name, variable in fields:
            value = getattr(self, name)
            if name == "region" and str(value).strip().upper() == "US":
                continue  # US is also the default: let the connection or the accounts URL name the region
            raw.set(name, value, f"{variable} (resource field {name})")
        return validate_settings(raw)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_retries=self.max_retries,
            backoff_base=self.backoff_base_seconds,
            backoff_max=self.backoff_max_seconds,
            retry_after_max=max(self.backoff_max_seconds, 1.0) * 4,
            token_throttle_wait=self.token_throttle_wait_seconds,
        )

    def get_client(self, announce: Callable[[str], object] | None = None) -> ZohoClient:
        """A new client (fresh ``stats``) sharing this process's limiter and the Postgres token cache.

        ``announce`` (e.g. ``context.log.info``) hears that the embedded Postgres was started, if it was.
        """
        settings = self.settings()
        credentials = settings.credentials()
        token_cache = PostgresTokenCache(
            resolve_database_url(settings.database_url, announce),
            credentials.client_id,
            credentials.client_secret,
            credentials.refresh_token,
        )
        return ZohoClient(
            ClientConfig(
                credentials=credentials,
                token_cache=token_cache,
                api_domain=settings.api_domain,
                requests_per_second=settings.requests_per_second,
                max_concurrency=settings.max_concurrency,
                concurrency_share=self._concurrency_share,
                bulk_threshold=settings.bulk_threshold,
                coql_passes=settings.coql_passes,
                whole_rich_text=settings.whole_rich_text,
                policy=self.retry_policy(),
            )
        )
