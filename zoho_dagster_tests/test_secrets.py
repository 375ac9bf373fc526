"""Secrets: never echoed, never logged, never in Dagster's event log; tokens cached per scope set, sealed with
AES-GCM (docs/design.md §3, "Tokens" and "Secrets").

The end-to-end test runs real Dagster runs against the simulator along the success path and the failure
paths a user meets (a bad accounts URL, a wrong SOID, a secret pasted into the wrong variable, an unreachable
host, a permission error) and greps everything a person or a log shipper could read: Python's logs, the
console, every event of the run (failures, their causes and stacks, metadata) for the client secret, the
refresh token and the access token.
"""

import base64
import logging
import socket
import uuid
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from dagster._serdes import serialize_value

from zoho_dagster.client import ZohoConfigError
from zoho_dagster.client.token_cache import cache_key
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.postgres.io_manager import PostgresIOManager
from zoho_dagster.postgres.token_cache import PostgresTokenCache
from zoho_dagster.resource import ZohoCRMResource
from zoho_dagster.settings import load_settings
from zoho_dagster.streams import stream
from zoho_dagster_tests.client.conftest import ClientFactory, org_client
from zoho_dagster_tests.postgres.sync_helpers import FAST, assets_by_name, today, use_simulator

TODAY = date(2026, 3, 15)
PASTED_INTO = [
    "ZOHO_CRM_SOID",
    "ZOHO_CRM_ACCOUNTS_URL",
    "ZOHO_CRM_API_DOMAIN",
    "ZOHO_CRM_REGION",
    "ZOHO_CRM_ANCHOR_DATE",
    "ZOHO_CRM_MAX_CONCURRENCY",
    "ZOHO_DAGSTER_DATABASE_URL",
]


def _tokens_table(database_url: str) -> list[dict[str, Any]]:
    with make_engine(database_url).connect() as connection:
        rows = connection.execute(sa.text("SELECT * FROM zoho_dagster.oauth_tokens ORDER BY minted_at"))
        return [dict(row._mapping) for row in rows]


# --- settings never print a secret back -------------------------------------------------------------------


@pytest.mark.parametrize("variable", PASTED_INTO)
@pytest.mark.parametrize("secret_variable", ["ZOHO_CRM_CLIENT_SECRET", "ZOHO_CRM_REFRESH_TOKEN"])
def test_a_secret_pasted_into_another_variable_is_never_printed_back(
    variable: str, secret_variable: str
) -> None:
    secret = "pasted-" + uuid.uuid4().hex
    with pytest.raises(ZohoConfigError) as caught:
        load_settings({secret_variable: secret, variable: secret}, today=TODAY)
    text = str(caught.value)
    assert variable in text and secret not in text


def test_a_secret_pasted_into_the_connection_is_never_printed_back() -> None:
    secret = "pasted-" + uuid.uuid4().hex
    connection = '{secrets: {client_secret: "' + secret + '", soid: "' + secret + '"}}'
    with pytest.raises(ZohoConfigError) as caught:
        load_settings({"ZOHO_CRM": connection}, today=TODAY)
    assert "soid" in str(caught.value) and secret not in str(caught.value)


@pytest.fixture
def make_client(simulator: Any, database_url: str) -> ClientFactory:
    """Clients of the simulator's primary org on this test's database (as in the client tests)."""

    def build(**options: Any) -> Any:
        return org_client(simulator.primary, database_url, **options)

    return build


# --- the token cache --------------------------------------------------------------------------------------


def test_the_cache_key_includes_the_scopes() -> None:
    who = ("https://accounts.zoho.com", "1000.A", "ZohoCRM.1")
    wide = cache_key(*who, "ZohoCRM.modules.ALL,ZohoCRM.settings.ALL")
    assert wide != cache_key(*who, "ZohoCRM.settings.ALL")
    assert wide == cache_key(*who, "ZohoCRM.settings.ALL, ZohoCRM.modules.ALL")  # the same set, reordered


def test_changing_the_scopes_mints_a_token_for_the_new_scopes(
    simulator: Any, make_client: ClientFactory
) -> None:
    make_client().list_modules()
    narrow = make_client(scopes="ZohoCRM.settings.ALL")
    narrow.list_modules()
    assert simulator.control.stats()["token_grants"] == 2  # not the old token with the old scopes
    make_client().list_modules()
    assert simulator.control.stats()["token_grants"] == 2  # each scope set keeps its own row


def _hkdf_key(*secrets: str | None) -> bytes:
    """The key of docs/design.md §3 "Tokens", derived here independently: HKDF-SHA256 over the secrets."""
    material = "\x00".join(secret or "" for secret in secrets).encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"zoho_dagster.token.v2").derive(
        material
    )


def test_tokens_are_sealed_with_aes_gcm(database_url: str) -> None:
    cache = PostgresTokenCache(database_url, "1000.A", "client-secret-one", None)
    with cache.locked("key-1") as row:
        row.write("1000.access.token.value", "https://www.zohoapis.com", 3600)
    [stored] = _tokens_table(database_url)
    assert "1000.access.token.value" not in str(stored)
    assert stored["sealed_token"].startswith("v2.")
    raw = base64.urlsafe_b64decode(stored["sealed_token"][3:])
    plain = AESGCM(_hkdf_key("1000.A", "client-secret-one", None)).decrypt(raw[:12], raw[12:], b"key-1")
    assert plain == b"1000.access.token.value"
    assert cache.read("key-1").value == "1000.access.token.value"


def test_a_row_sealed_under_other_secrets_or_altered_reads_as_absent(database_url: str) -> None:
    cache = PostgresTokenCache(database_url, "1000.A", "client-secret-one", None)
    with cache.locked("key-1") as row:
        row.write("1000.access.token.value", "https://www.zohoapis.com", 3600)
    assert PostgresTokenCache(database_url, "1000.A", "client-secret-two", None).read("key-1") is None
    with make_engine(database_url).begin() as connection:
        connection.execute(sa.text("UPDATE zoho_dagster.oauth_tokens SET cache_key = 'key-2'"))
    assert cache.read("key-2") is None  # a row moved to another key does not open there


def test_an_old_row_is_ignored_and_replaced(
    simulator: Any, make_client: ClientFactory, database_url: str
) -> None:
    make_client().list_modules()
    with make_engine(database_url).begin() as connection:  # a row written by the HMAC-keystream sealer of old
        connection.execute(sa.text("UPDATE zoho_dagster.oauth_tokens SET sealed_token = 'v1.AAAA'"))
    make_client().list_modules()
    assert simulator.control.stats()["token_grants"] == 2
    assert [row["sealed_token"][:3] for row in _tokens_table(database_url)] == ["v2."]


# --- nothing leaks, whatever happens ----------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _break(path: str, primary: dict[str, Any], others: dict[str, dict[str, Any]], monkeypatch: Any) -> None:
    """Set the environment up for one failure path (nothing for the success path)."""
    if path == "accounts URL with a path":
        monkeypatch.setenv("ZOHO_CRM_ACCOUNTS_URL", primary["accounts_url"] + "/oauth/v2/token")
    elif path == "secret pasted into the accounts URL":
        monkeypatch.setenv("ZOHO_CRM_ACCOUNTS_URL", primary["client_secret"])
    elif path == "secret pasted into the SOID":
        monkeypatch.setenv("ZOHO_CRM_SOID", primary["client_secret"])
    elif path == "wrong SOID":
        monkeypatch.setenv("ZOHO_CRM_SOID", others["EU"]["soid"])
    elif path == "unreachable host":
        monkeypatch.setenv("ZOHO_CRM_API_DOMAIN", f"http://127.0.0.1:{_closed_port()}")
    elif path == "permission error":
        monkeypatch.setenv("ZOHO_CRM_SCOPES", "ZohoCRM.settings.ALL,ZohoCRM.org.ALL")


def _access_tokens(database_url: str) -> list[str]:
    """Every access token the runs minted, unsealed from the shared cache with the org's secrets."""
    try:
        client = ZohoCRMResource.from_env().process_config_and_initialize().get_client()
    except ZohoConfigError:
        return []
    store = client.tokens.store
    store.ensure_schema()
    with make_engine(database_url).connect() as connection:
        keys = [
            row[0] for row in connection.execute(sa.text("SELECT cache_key FROM zoho_dagster.oauth_tokens"))
        ]
    return [stored.value for key in keys if (stored := store.read(key)) is not None]


@pytest.mark.parametrize(
    "path",
    [
        "success",
        "accounts URL with a path",
        "secret pasted into the accounts URL",
        "secret pasted into the SOID",
        "wrong SOID",
        "unreachable host",
        "permission error",
    ],
)
def test_no_secret_reaches_logs_events_metadata_or_errors(
    path: str,
    simulator: Any,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_simulator(monkeypatch, simulator, database_url)
    primary = simulator.primary
    monkeypatch.setenv("ZOHO_CRM_REFRESH_TOKEN", primary["refresh_token"])  # known to the process; SOID wins
    _break(path, primary, {org["region"]: org for org in simulator.connection["orgs"]}, monkeypatch)
    caplog.set_level(logging.DEBUG)
    leads = assets_by_name(today() - timedelta(days=3), [stream("leads")])["leads"]
    first, last = today() - timedelta(days=3), today()
    resource = ZohoCRMResource.from_env(
        requests_per_second=FAST, max_retries=0, backoff_base_seconds=0.01, backoff_max_seconds=0.02
    )
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [leads],
            instance=instance,
            resources={"zoho_crm": resource, "zoho_crm_io_manager": PostgresIOManager()},
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
            raise_on_error=False,
        )
        events = "\n".join(serialize_value(record) for record in instance.all_logs(result.run_id))
    assert result.success is (path == "success")
    if path == "success":
        assert result.asset_materializations_for_node("leads")
    console = capsys.readouterr()
    seen = "\n".join((caplog.text, console.out, console.err, events))
    assert "leads" in events  # the grep reads the real event log
    minted = _access_tokens(database_url)
    if path in ("success", "unreachable host", "permission error"):
        assert minted, "the run minted a token, so the grep must look for it"
    secrets = {
        "client secret": primary["client_secret"],
        "refresh token": primary["refresh_token"],
        **{f"access token {n}": token for n, token in enumerate(minted)},
    }
    leaked = [name for name, secret in secrets.items() if secret in seen]
    assert not leaked, f"{path}: {leaked} leaked"
