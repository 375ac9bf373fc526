"""The Zoho connection (docs/design.md §1, a contract) turned into validated settings, or one clear sentence.

Variables mirror Sling's ``zoho-crm`` connection: ``ZOHO_CRM_CLIENT_ID``, ``..._CLIENT_SECRET``, ``..._SOID``,
``..._REFRESH_TOKEN``, ``..._REGION``, ``..._ACCOUNTS_URL``, ``..._API_DOMAIN``, ``..._ANCHOR_DATE``,
``ZOHO_DAGSTER_DATABASE_URL``, or the whole connection in ``ZOHO_CRM`` (YAML or JSON: ``{type: api, spec:
zoho-crm, secrets: {...}, inputs: {anchor_date}}``). A single variable wins over the same key in ``ZOHO_CRM``,
so one value can be overridden without rewriting the connection.

Reading and validating are apart: :func:`read_environment` collects raw values with where each came from,
and :func:`validate_settings` checks them. :class:`~zoho_dagster.resource.ZohoCRMResource` validates its own
fields through the same :func:`validate_settings`, so both paths give the same sentences.

Missing credentials are *not* an error here: Dagster must load its definitions on a machine without secrets.
They fail at the first step that needs them, through :meth:`ZohoSettings.credentials`.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import yaml

from zoho_dagster import environment
from zoho_dagster.client import (
    DEFAULT_SCOPES,
    MAX_EDITION_CONCURRENCY,
    REGIONS,
    Credentials,
    ZohoConfigError,
    hosts,
    mask,
    register_secret,
)

CONNECTION = "ZOHO_CRM"
DATABASE_URL = environment.DATABASE_URL_VARIABLE
ANCHOR_DATE = "ZOHO_CRM_ANCHOR_DATE"
SCOPES = "ZOHO_CRM_SCOPES"
# setting name → its own variable; the same names are the keys of ZOHO_CRM's ``secrets``.
SECRET_VARIABLES: dict[str, str] = {
    "client_id": "ZOHO_CRM_CLIENT_ID",
    "client_secret": "ZOHO_CRM_CLIENT_SECRET",
    "soid": "ZOHO_CRM_SOID",
    "refresh_token": "ZOHO_CRM_REFRESH_TOKEN",
    "region": "ZOHO_CRM_REGION",
    "accounts_url": "ZOHO_CRM_ACCOUNTS_URL",
    "api_domain": "ZOHO_CRM_API_DOMAIN",
}
# setting name → variable of the tuning knobs (how fast, how the window is read); not part of a connection.
TUNING_VARIABLES: dict[str, str] = {
    "max_concurrency": "ZOHO_CRM_MAX_CONCURRENCY",
    "requests_per_second": "ZOHO_CRM_REQUESTS_PER_SECOND",
    "bulk_threshold": "ZOHO_CRM_BULK_THRESHOLD",
}
DEFAULT_BULK_THRESHOLD = 100_000
"""Windows holding more records than this are read with Bulk Read (docs/design.md §3)."""
VARIABLES: tuple[str, ...] = (
    *SECRET_VARIABLES.values(),
    *TUNING_VARIABLES.values(),
    ANCHOR_DATE,
    SCOPES,
    DATABASE_URL,
    CONNECTION,
)
_SOID = re.compile(r"^ZohoCRM\.[A-Za-z0-9_-]+$")
_CONNECTION_EXAMPLE = (
    '{type: api, spec: zoho-crm, secrets: {client_id: ..., client_secret: ..., soid: "ZohoCRM.<org_id>"}}'
)


@dataclass(frozen=True)
class ZohoSettings:
    """Validated configuration. Secrets are kept out of the repr; ``sources`` says where each value came from.
    """

    client_id: str | None
    client_secret: str | None = field(repr=False)
    soid: str | None
    refresh_token: str | None = field(repr=False)
    region: str
    accounts_url: str
    api_domain: str | None
    anchor_date: date
    database_url: str | None = field(repr=False)
    scopes: str = DEFAULT_SCOPES
    max_concurrency: int | None = None
    requests_per_second: float | None = None
    bulk_threshold: int = DEFAULT_BULK_THRESHOLD
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        return (
            f"ZohoSettings(client_id={self.client_id!r}, client_secret={mask(self.client_secret)}, soid="
            f"{self.soid!r}, refresh_token={mask(self.refresh_token)}, region={self.region!r}, accounts_url="
            f"{self.accounts_url!r}, api_domain={self.api_domain!r}, anchor_date="
            f"{self.anchor_date.isoformat()}, database_url={mask(self.database_url)})"
        )

    @property
    def has_credentials(self) -> bool:
        return bool(self.client_id and self.client_secret and (self.soid or self.refresh_token))

    def credentials(self) -> Credentials:
        """The OAuth credentials, or a ``ZohoConfigError`` naming the missing variable and the fix."""
        if not self.client_id:
            raise ZohoConfigError(
                "ZOHO_CRM_CLIENT_ID is not set; set ZOHO_CRM_CLIENT_ID, ZOHO_CRM_CLIENT_SECRET and "
                "ZOHO_CRM_SOID (or ZOHO_CRM_REFRESH_TOKEN), or ZOHO_CRM to a connection like "
                f"{_CONNECTION_EXAMPLE}."
            )
        if not self.client_secret:
            raise ZohoConfigError(
                "ZOHO_CRM_CLIENT_SECRET is not set; set it to the secret of the Self Client "
                f"{self.client_id} (Zoho API console > Self Client > Client Secret)."
            )
        if not self.soid and not self.refresh_token:
            raise ZohoConfigError(
                "Neither ZOHO_CRM_SOID nor ZOHO_CRM_REFRESH_TOKEN is set; set ZOHO_CRM_SOID to "
                "ZohoCRM.<org_id> (client-credentials grant) or ZOHO_CRM_REFRESH_TOKEN (refresh-token "
                "grant)."
            )
        return Credentials(
            client_id=self.client_id,
            client_secret=self.client_secret,
            accounts_url=self.accounts_url,
            region=self.region,
            soid=self.soid,
            refresh_token=self.refresh_token,
            scopes=self.scopes,
        )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_connection(raw: str) -> tuple[dict[str, str], dict[str, str]]:
    """``ZOHO_CRM`` (YAML or JSON) → ``(secrets, inputs)``; errors never quote the text (it holds secrets)."""
    try:
        document = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" near line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ZohoConfigError(
            f"ZOHO_CRM is not valid YAML or JSON{where}; set it to a connection like {_CONNECTION_EXAMPLE}."
        ) from None
    if not isinstance(document, dict):
        raise ZohoConfigError(
            f"ZOHO_CRM must be a mapping; set it to a connection like {_CONNECTION_EXAMPLE}."
        )
    kind, spec = _text(document.get("type")), _text(document.get("spec"))
    if kind not in (None, "api") or spec not in (None, "zoho-crm"):
        raise ZohoConfigError(
            f"ZOHO_CRM has type {kind!r} and spec {spec!r}; set type: api and spec: zoho-crm (a connection "
            f"like {_CONNECTION_EXAMPLE})."
        )
    secrets, inputs = document.get("secrets") or {}, document.get("inputs") or {}
    if not isinstance(secrets, dict) or not isinstance(inputs, dict):
        raise ZohoConfigError(
            "ZOHO_CRM's secrets and inputs must be mappings; set it to a connection like "
            f"{_CONNECTION_EXAMPLE}."
        )
    unknown = sorted(set(map(str, secrets)) - set(SECRET_VARIABLES))
    if unknown:
        raise ZohoConfigError(
            f"ZOHO_CRM has unknown secrets key(s) {', '.join(unknown)}; use only "
            f"{', '.join(SECRET_VARIABLES)}."
        )
    unknown = sorted(set(map(str, inputs)) - {"anchor_date"})
    if unknown:
        raise ZohoConfigError(
            f"ZOHO_CRM has unknown inputs key(s) {', '.join(unknown)}; use only anchor_date."
        )
    values = {str(k): t for k, v in secrets.items() if (t := _text(v)) is not None}
    input_values = {str(k): t for k, v in inputs.items() if (t := _text(v)) is not None}
    return values, input_values


def _check_url(value: str | None, label: str, example: str) -> str | None:
    if value is not None and not re.match(r"^https?://[^/\s]+", value):
        raise ZohoConfigError(f"{label} must be an http(s) URL such as {example}; got {value!r}.")
    return value.rstrip("/") if value else None


def _number(
    raw: "RawSettings",
    name: str,
    kind: type[int] | type[float],
    lowest: float,
    highest: float | None,
    default: Any = None,
) -> Any:
    """``raw``'s ``name`` as a number within ``[lowest, highest]``, or a sentence naming its source."""
    text = raw.values.get(name)
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < lowest or (highest is not None and value > highest):
        bound = f"between {lowest:g} and {highest:g}" if highest is not None else f"at least {lowest:g}"
        what = "a whole number" if kind is int else "a number"
        raise ZohoConfigError(f"{raw.sources[name]} is {text!r}; set it to {what} {bound}.")
    return value


def _anchor(value: str | None, label: str, today: date) -> date:
    if value is None:
        try:
            return today.replace(year=today.year - 1)
        except ValueError:  # 29 February
            return today - timedelta(days=365)
    try:
        parsed = date.fromisoformat(value)
        if not re.match(r"^\d{4}-\d{2}-\d{2}$", value):
            raise ValueError(value)
    except ValueError:
        raise ZohoConfigError(
            f"{label} is {value!r}; set it to a date in the form YYYY-MM-DD, e.g. 2024-01-31."
        ) from None
    if parsed > today:
        raise ZohoConfigError(
            f"{label} is {value}, which is in the future; set it to a past date (YYYY-MM-DD)."
        )
    return parsed


@dataclass
class RawSettings:
    """Values as given, before validation: setting name → text, and setting name → where it came from.

    Names are those of :data:`SECRET_VARIABLES` plus ``anchor_date``, ``scopes`` and ``database_url``; the
    source labels are what error sentences cite (a variable, a connection key or a resource field).
    """

    values: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def set(self, name: str, value: Any, source: str) -> None:
        """Record ``value`` (ignored when empty) for ``name`` as coming from ``source``; later calls win."""
        text = _text(value)
        if text is not None:
            self.values[name], self.sources[name] = text, source

    def add_connection(self, raw: str, label: str) -> None:
        """Every key of a Sling-style connection (the ``ZOHO_CRM`` variable or the resource's field)."""
        secrets, inputs = parse_connection(raw)
        for name, value in secrets.items():
            self.set(name, value, f"{label} (secrets.{name})")
        if "anchor_date" in inputs:
            self.set("anchor_date", inputs["anchor_date"], f"{label} (inputs.anchor_date)")


def read_environment(environ: Mapping[str, str] | None = None) -> RawSettings:
    """The raw settings of ``environ`` (default ``os.environ``): a single variable wins over ``ZOHO_CRM``."""
    env = os.environ if environ is None else environ
    raw = RawSettings()
    if _text(env.get(CONNECTION)):
        raw.add_connection(str(env[CONNECTION]), CONNECTION)
    for name, variable in SECRET_VARIABLES.items():
        raw.set(name, env.get(variable), variable)
    for name, variable in TUNING_VARIABLES.items():
        raw.set(name, env.get(variable), variable)
    raw.set("anchor_date", env.get(ANCHOR_DATE), ANCHOR_DATE)
    raw.set("scopes", env.get(SCOPES), SCOPES)
    raw.set("database_url", environment.database_url(env), DATABASE_URL)
    return raw


def validate_settings(raw: RawSettings, today: date | None = None) -> ZohoSettings:
    """Validated settings from ``raw``; a bad value raises ``ZohoConfigError`` naming its source."""
    today = today or date.today()
    values, sources = raw.values, raw.sources
    for name in ("client_secret", "refresh_token"):
        register_secret(values.get(name))
    region_code = values.get("region")
    if region_code is None and values.get("accounts_url"):
        # an explicit accounts server of a known region names the region (for the messages that cite it)
        known = {r.accounts_url: code for code, r in REGIONS.items()}
        region_code = known.get(values["accounts_url"].rstrip("/"))
    region_hosts = hosts(region_code)
    accounts_url = _check_url(
        values.get("accounts_url"), sources.get("accounts_url", ""), "https://accounts.zoho.eu"
    )
    api_domain = _check_url(
        values.get("api_domain"), sources.get("api_domain", ""), "https://www.zohoapis.eu"
    )
    soid = values.get("soid")
    if soid is not None and not _SOID.match(soid):
        hint = f"ZohoCRM.{soid}" if soid.isdigit() else "ZohoCRM.<org_id>"
        raise ZohoConfigError(
            f"{sources['soid']} is {soid!r}; set it to the form ZohoCRM.<org_id>, e.g. {hint}."
        )
    database_url = values.get("database_url")
    if database_url is not None and not re.match(r"^postgres(ql)?(\+\w+)?://", database_url):
        raise ZohoConfigError(
            f"{sources['database_url']} must be a PostgreSQL URL (postgresql://user:password@host:5432/db); "
            f"it starts with {database_url.split(':', 1)[0]!r}."
        )
    return ZohoSettings(
        client_id=values.get("client_id"),
        client_secret=values.get("client_secret"),
        soid=soid,
        refresh_token=values.get("refresh_token"),
        region=region_hosts.code,
        accounts_url=accounts_url or region_hosts.accounts_url,
        api_domain=api_domain,
        anchor_date=_anchor(values.get("anchor_date"), sources.get("anchor_date", ANCHOR_DATE), today),
        database_url=database_url,
        scopes=values.get("scopes") or DEFAULT_SCOPES,
        max_concurrency=_number(raw, "max_concurrency", int, 1, MAX_EDITION_CONCURRENCY),
        requests_per_second=_number(raw, "requests_per_second", float, 0.001, None),
        bulk_threshold=_number(raw, "bulk_threshold", int, 0, None, DEFAULT_BULK_THRESHOLD),
        sources=dict(sources),
    )


def load_settings(environ: Mapping[str, str] | None = None, today: date | None = None) -> ZohoSettings:
    """Validated settings from ``environ`` (default ``os.environ``); bad values raise ``ZohoConfigError``."""
    return validate_settings(read_environment(environ), today)
