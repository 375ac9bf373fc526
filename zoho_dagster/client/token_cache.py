"""Where access tokens are kept between calls: a protocol, and the in-memory cache that is the default.

Zoho mints at most 10 access tokens per 10 minutes per client and keeps only 15 alive
(docs/zoho-crm-api.md §1.5), so a token must be shared by everything that calls for the same client and org.
Within one process the :class:`InMemoryTokenCache` does that. Across processes and hosts (twenty Dagster steps
at once) a shared store is needed: :class:`zoho_dagster.postgres.token_cache.PostgresTokenCache` implements
this protocol with a row per key under an advisory lock, and the resource injects it. The client itself knows
nothing of where the cache lives.

The protocol: ``read(key)`` is the lock-free fast path; ``locked(key)`` holds the key's lock (across processes
where the cache is shared) while the caller reads again, mints if needed and writes, so that exactly one
caller mints.
"""

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class StoredToken:
    """A token as read back: ``remaining`` seconds of validity by the cache's clock."""

    value: str = field(repr=False)
    api_domain: str
    lifetime: int
    remaining: float


class TokenSlot(Protocol):
    """One key's entry while its lock is held."""

    def read(self) -> StoredToken | None: ...

    def write(self, value: str, api_domain: str, lifetime: int) -> StoredToken: ...


class TokenCache(Protocol):
    """A store of access tokens by key; see the module docstring for the contract."""

    def read(self, key: str) -> StoredToken | None: ...

    def locked(self, key: str) -> AbstractContextManager[TokenSlot]: ...


def scope_set(scopes: str) -> str:
    """``scopes`` as a canonical set: comma-separated, trimmed, lower-cased, sorted, without duplicates.

    Zoho compares scope names case-insensitively, and the order in ``ZOHO_CRM_SCOPES`` means nothing, so
    ``"A,B"`` and ``"b, a"`` ask for the same token.
    """
    return ",".join(sorted({part.strip().lower() for part in scopes.split(",") if part.strip()}))


def cache_key(accounts_url: str, client_id: str, org: str, scopes: str = "") -> str:
    """The entry key: a hash of who mints for whom and for which scopes, so no store lists them in clear.

    The scopes are part of it because a token carries the scopes it was minted for: after a change of
    ``ZOHO_CRM_SCOPES`` the old token would still be found, and refused (or over-privileged), for an hour.
    """
    identity = f"{accounts_url}\n{client_id}\n{org}\n{scope_set(scopes)}"
    return hashlib.sha256(identity.encode()).hexdigest()


@dataclass
class _Entry:
    value: str = field(repr=False)
    api_domain: str
    lifetime: int
    expires_at: float

    def stored(self) -> StoredToken:
        return StoredToken(self.value, self.api_domain, self.lifetime, self.expires_at - time.monotonic())


@dataclass
class _MemorySlot:
    entries: dict[str, _Entry]
    key: str

    def read(self) -> StoredToken | None:
        entry = self.entries.get(self.key)
        return entry.stored() if entry is not None else None

    def write(self, value: str, api_domain: str, lifetime: int) -> StoredToken:
        self.entries[self.key] = _Entry(value, api_domain, lifetime, time.monotonic() + lifetime)
        return StoredToken(value, api_domain, lifetime, float(lifetime))


class InMemoryTokenCache:
    """Tokens shared by every client of this process (the default; see :data:`PROCESS_TOKEN_CACHE`)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def read(self, key: str) -> StoredToken | None:
        with self._guard:
            entry = self._entries.get(key)
        return entry.stored() if entry is not None else None

    @contextmanager
    def locked(self, key: str) -> Iterator[TokenSlot]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield _MemorySlot(self._entries, key)


PROCESS_TOKEN_CACHE = InMemoryTokenCache()
"""The cache a client uses when none is given: one per process, so its clients share one token per key."""
