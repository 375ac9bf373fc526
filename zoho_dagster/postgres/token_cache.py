"""The shared access-token cache: one row per (accounts server, client, org, scopes) in Postgres.

Zoho mints at most 10 access tokens per 10 minutes per refresh token/client and keeps only 15 alive
(docs/zoho-crm-api.md §1.5): twenty parallel Dagster steps each minting their own would trip the throttle.
So every process and host reads the token from ``zoho_dagster.oauth_tokens``, and the one that finds it
missing or stale mints a new one while holding a transaction-scoped advisory lock on the row's key: the
others wait on the lock and then find the fresh token. This is the client's ``TokenCache`` protocol
(:mod:`zoho_dagster.client.token_cache`), injected by the resource; the client never imports this module.

Rows are keyed by a SHA-256 of the identity (no client id, org or scope in clear) and the token is sealed
with AES-256-GCM (``cryptography``), under a key derived with HKDF-SHA256 (no salt, info
``zoho_dagster.token.v2``) from the client's secrets (client id, client secret, refresh token, joined by NUL),
the row's key being the associated data: ``v2.`` + base64url(12-byte nonce + ciphertext + tag). A dump of the
table, a log of its rows or a colleague with read access to the database sees no usable token; a row sealed
under other secrets (a rotated secret), moved to another key or altered reads as absent, and a fresh token
replaces it. Rows of the former sealer (``v1.``, a hand-made HMAC keystream) read as absent too and are
replaced the same way: the table keeps its layout.
"""

import base64
import binascii
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from zoho_dagster.client.token_cache import StoredToken
from zoho_dagster.postgres.engine import make_engine

SCHEMA = "zoho_dagster"
TABLE = "oauth_tokens"
_SCHEMA_LOCK_KEY = 0x7A6F686F5F746B  # an arbitrary constant: serialises the CREATE ... IF NOT EXISTS below
_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.{TABLE} (
        cache_key text PRIMARY KEY,
        sealed_token text NOT NULL,
        api_domain text NOT NULL,
        lifetime_seconds integer NOT NULL,
        expires_at timestamptz NOT NULL,
        minted_at timestamptz NOT NULL DEFAULT now()
    )""",
)


_PREFIX = "v2."
_KDF_INFO = b"zoho_dagster.token.v2"
_NONCE_BYTES = 12


class Sealer:
    """Authenticated encryption of a token with a key only holders of the client's secrets can derive.

    AES-GCM from ``cryptography`` rather than a construction of our own: the format is in the module
    docstring; the cache key is bound as associated data so a sealed value opens only in its own row.
    """

    def __init__(self, *secrets: str | None) -> None:
        material = "\x00".join(secret or "" for secret in secrets).encode()
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KDF_INFO).derive(material)
        self._aead = AESGCM(key)

    def seal(self, token: str, key: str) -> str:
        """``token`` sealed for the row ``key``."""
        nonce = os.urandom(_NONCE_BYTES)
        cipher = self._aead.encrypt(nonce, token.encode(), key.encode())
        return _PREFIX + base64.urlsafe_b64encode(nonce + cipher).decode()

    def unseal(self, sealed: str, key: str) -> str | None:
        """The token, or ``None`` when the row was sealed with other secrets, for another key, altered, or
        written by the former sealer (``v1.``)."""
        if not sealed.startswith(_PREFIX):
            return None
        try:
            raw = base64.urlsafe_b64decode(sealed[len(_PREFIX) :].encode())
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], key.encode())
        except (InvalidTag, ValueError, binascii.Error):
            return None
        return plain.decode()


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.sha256(b"lock:" + key.encode()).digest()[:8], "big", signed=True)


_ready: set[str] = set()
_ready_lock = threading.Lock()


class PostgresTokenCache:
    """The token rows of one database, sealed with a key derived from ``secrets`` (the client's secrets)."""

    def __init__(self, database_url: str, *secrets: str | None) -> None:
        self._engine = make_engine(database_url)
        self._url_key = hashlib.sha256(database_url.encode()).hexdigest()
        self._sealer = Sealer(*secrets)

    def ensure_schema(self) -> None:
        """Create the schema and table once per process and database (serialised across processes)."""
        with _ready_lock:
            if self._url_key in _ready:
                return
            with self._engine.begin() as connection:
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_KEY})
                for statement in _DDL:
                    connection.execute(sa.text(statement))
            _ready.add(self._url_key)

    def _read(self, connection: sa.Connection, key: str) -> StoredToken | None:
        row = connection.execute(
            sa.text(
                "SELECT sealed_token, api_domain, lifetime_seconds, EXTRACT(EPOCH FROM (expires_at - "
                f"clock_timestamp()))::float8 AS remaining FROM {SCHEMA}.{TABLE} WHERE cache_key = :key"
            ),
            {"key": key},
        ).one_or_none()
        if row is None:
            return None
        value = self._sealer.unseal(row.sealed_token, key)
        if value is None:
            return None
        return StoredToken(value, row.api_domain, int(row.lifetime_seconds), float(row.remaining))

    def read(self, key: str) -> StoredToken | None:
        """The cached token without taking the lock (the fast path of every process)."""
        self.ensure_schema()
        with self._engine.connect() as connection:
            return self._read(connection, key)

    @contextmanager
    def locked(self, key: str) -> Iterator["LockedRow"]:
        """A transaction holding the advisory lock of ``key``: read, mint and write without a race."""
        self.ensure_schema()
        with self._engine.begin() as connection:
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_id(key)})
            yield LockedRow(self, connection, key)


@dataclass
class LockedRow:
    """The row of one key inside the locked transaction."""

    store: PostgresTokenCache
    connection: sa.Connection
    key: str

    def read(self) -> StoredToken | None:
        return self.store._read(self.connection, self.key)

    def write(self, value: str, api_domain: str, lifetime: int) -> StoredToken:
        self.connection.execute(
            sa.text(
                f"INSERT INTO {SCHEMA}.{TABLE} AS t (cache_key, sealed_token, api_domain, lifetime_seconds, "
                "expires_at, minted_at) VALUES (:key, :sealed, :domain, :lifetime, clock_timestamp() + "
                "make_interval(secs => :lifetime), clock_timestamp()) ON CONFLICT (cache_key) DO UPDATE "
                "SET sealed_token = EXCLUDED.sealed_token, api_domain = EXCLUDED.api_domain, "
                "lifetime_seconds = EXCLUDED.lifetime_seconds, expires_at = EXCLUDED.expires_at, minted_at "
                "= EXCLUDED.minted_at"
            ),
            {
                "key": self.key,
                "sealed": self.store._sealer.seal(value, self.key),
                "domain": api_domain,
                "lifetime": lifetime,
            },
        )
        return StoredToken(value, api_domain, lifetime, float(lifetime))
