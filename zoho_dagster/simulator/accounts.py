"""Zoho Accounts: clients, grants and access tokens (docs/zoho-crm-api.md §1).

Failures are HTTP 200 with `{"error": …}`; the throttle (ten grants per ten minutes per client) is the one
400. Access tokens carry their DC, org, user and scopes; at most 15 stay active per client (the 16th
invalidates the oldest, docs/zoho-crm-api.md §1.5).
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

GRANTS_PER_WINDOW = 10
GRANT_WINDOW = 600.0
MAX_ACTIVE_TOKENS = 15
# Grant codes: "valid only for one minute in the redirection-based flow" (strictest of §1.2's figures).
CODE_LIFETIME = 60.0

ALL_SCOPES: tuple[str, ...] = (
    "ZohoCRM.modules.ALL",
    "ZohoCRM.settings.ALL",
    "ZohoCRM.users.ALL",
    "ZohoCRM.org.ALL",
    "ZohoCRM.bulk.ALL",
    "ZohoCRM.coql.READ",
    "ZohoSearch.securesearch.READ",
    "ZohoCRM.notifications.ALL",
)

THROTTLED: dict[str, str] = {
    "error_description": "You have made too many requests continuously. Please try again after some time.",
    "error": "Access Denied",
    "status": "failure",
}


@dataclass
class Client:
    """A connected app (self client) bound to one org and one user of it."""

    client_id: str
    client_secret: str
    region: str
    org_id: str
    user_index: int
    admin: bool
    scopes: tuple[str, ...]
    refresh_tokens: set[str] = field(default_factory=set)
    grants: deque[float] = field(default_factory=deque)
    active: deque[str] = field(default_factory=deque)


@dataclass
class AccessToken:
    token: str
    client: Client
    scopes: tuple[str, ...]
    expires_at: float


@dataclass
class GrantResult:
    status: int
    body: dict[str, Any]


class Accounts:
    """Every DC's accounts server: the clients, refresh tokens, codes and live access tokens."""

    def __init__(self, token_lifetime: int) -> None:
        self.token_lifetime = token_lifetime
        self.clients: dict[str, Client] = {}
        self.refresh: dict[str, Client] = {}
        self.codes: dict[str, tuple[Client, float]] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.grant_count = 0
        self._lock = threading.Lock()

    def add_client(
        self,
        region: str,
        org_id: str,
        user_index: int,
        admin: bool,
        scopes: tuple[str, ...],
        client_id: str | None = None,
        secret: str | None = None,
        refresh_token: str | None = None,
    ) -> tuple[Client, str]:
        client = Client(
            client_id or "1000." + secrets.token_hex(15).upper(),
            secret or secrets.token_hex(21),
            region,
            org_id,
            user_index,
            admin,
            tuple(scopes),
        )
        token = refresh_token or "1000." + secrets.token_hex(16) + "." + secrets.token_hex(16)
        with self._lock:
            self.clients[client.client_id] = client
            client.refresh_tokens.add(token)
            self.refresh[token] = client
        return client, token

    def issue_code(self, client: Client, now: float) -> str:
        code = "1000." + secrets.token_hex(16) + "." + secrets.token_hex(16)
        with self._lock:
            self.codes[code] = (client, now + CODE_LIFETIME)
        return code

    def revoke(self, token: str) -> bool:
        with self._lock:
            client = self.refresh.pop(token, None)
            if client is None:
                return False
            client.refresh_tokens.discard(token)
            # Access tokens minted from a revoked refresh token stop working (docs/zoho-crm-api.md §1.5).
            for tok in [t for t in self.tokens.values() if t.client is client]:
                self.tokens.pop(tok.token, None)
            return True

    def grant(
        self, region: str, params: dict[str, str], now: float, api_domain: str, org_soids: dict[str, str]
    ) -> GrantResult:
        """One `POST /oauth/v2/token` call; `org_soids` maps soid → org id."""
        client = self.clients.get(params.get("client_id", ""))
        if client is None or client.region != region:
            return GrantResult(200, {"error": "invalid_client"})
        if params.get("client_secret") != client.client_secret:
            return GrantResult(200, {"error": "invalid_client_secret"})
        grant_type = params.get("grant_type", "")
        refresh_token: str | None = None
        scopes = client.scopes
        with self._lock:
            if grant_type == "refresh_token":
                if self.refresh.get(params.get("refresh_token", "")) is not client:
                    return GrantResult(200, {"error": "invalid_code"})
            elif grant_type == "authorization_code":
                entry = self.codes.pop(params.get("code", ""), None)  # one-time use
                if entry is None or entry[0] is not client or entry[1] < now:
                    return GrantResult(200, {"error": "invalid_code"})
            elif grant_type == "client_credentials":
                soid = params.get("soid")
                if not soid:
                    return GrantResult(200, {"error": "missing_org_info"})
                if org_soids.get(soid) != client.org_id:
                    # UNCONFIRMED: the error for a soid of another org; strictest plausible is to refuse.
                    return GrantResult(200, {"error": "invalid_client"})
                requested = [s.strip() for s in params.get("scope", "").split(",") if s.strip()]
                if requested:
                    lowered = {s.lower() for s in client.scopes}
                    if any(s.lower() not in lowered for s in requested):
                        return GrantResult(200, {"error": "invalid_scope"})
                    scopes = tuple(requested)
            else:
                return GrantResult(200, {"error": "unsupported_grant_type"})
            while client.grants and client.grants[0] <= now - GRANT_WINDOW:
                client.grants.popleft()
            if len(client.grants) >= GRANTS_PER_WINDOW:
                return GrantResult(400, dict(THROTTLED))
            client.grants.append(now)
            if grant_type == "authorization_code":
                refresh_token = "1000." + secrets.token_hex(16) + "." + secrets.token_hex(16)
                client.refresh_tokens.add(refresh_token)
                self.refresh[refresh_token] = client
            token = "1000." + secrets.token_hex(16) + "." + secrets.token_hex(16)
            self.tokens[token] = AccessToken(token, client, scopes, now + self.token_lifetime)
            client.active.append(token)
            while len(client.active) > MAX_ACTIVE_TOKENS:
                self.tokens.pop(client.active.popleft(), None)
            self.grant_count += 1
        body: dict[str, Any] = {"access_token": token}
        if refresh_token:
            body["refresh_token"] = refresh_token
        body.update(
            {
                "scope": " ".join(scopes),
                "api_domain": api_domain,
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
            }
        )
        return GrantResult(200, body)

    def lookup(self, token: str, now: float) -> AccessToken | None:
        found = self.tokens.get(token)
        if found is None or found.expires_at <= now:
            return None
        return found

    def expire(self, token: str) -> None:
        with self._lock:
            self.tokens.pop(token, None)


def has_scope(granted: tuple[str, ...], *alternatives: str) -> bool:
    """True if any alternative is granted; Zoho scope names compare case-insensitively."""
    lowered = {s.lower() for s in granted}
    return any(a.lower() in lowered for a in alternatives)
