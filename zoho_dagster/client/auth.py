"""OAuth: mint access tokens (client-credentials or refresh-token grant) and share them through a token cache.

Zoho answers token failures with HTTP 200 and an ``error`` key (docs/zoho-crm-api.md §1.6); each known error
becomes one sentence telling the user which variable to change. Secrets travel in the form body, never in the
URL, because URLs end up in requests' exception texts and urllib3's debug log; every sentence is redacted.
"""

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from zoho_dagster.client.errors import TRANSPORT_ERRORS, ZohoAuthError, ZohoConfigError
from zoho_dagster.client.policy import RetryPolicy
from zoho_dagster.client.redact import mask, redact, register_secret
from zoho_dagster.client.regions import other_regions
from zoho_dagster.client.token_cache import StoredToken, TokenCache, cache_key

log = logging.getLogger(__name__)

# The scopes Sling's zoho-crm connector requests, plus search (the count API) and bulk read. The
# client-credentials grant mints a token for exactly these (a client not allowed one answers invalid_scope);
# ZOHO_CRM_SCOPES overrides them.
DEFAULT_SCOPES = (
    "ZohoCRM.modules.ALL,ZohoCRM.settings.ALL,ZohoCRM.users.ALL,ZohoCRM.org.ALL,"
    "ZohoCRM.bulk.ALL,ZohoSearch.securesearch.READ,ZohoCRM.coql.READ"
)
REFRESH_MARGIN_SECONDS = 300.0


@dataclass(frozen=True)
class Credentials:
    """Who asks for tokens, and where. ``soid`` selects the client-credentials grant, else ``refresh_token``.
    """

    client_id: str
    client_secret: str = field(repr=False)
    accounts_url: str
    region: str = "US"
    soid: str | None = None
    refresh_token: str | None = field(default=None, repr=False)
    scopes: str = DEFAULT_SCOPES

    def __post_init__(self) -> None:
        register_secret(self.client_secret)
        register_secret(self.refresh_token)
        if not self.soid and not self.refresh_token:
            raise ZohoConfigError(
                "Neither ZOHO_CRM_SOID nor ZOHO_CRM_REFRESH_TOKEN is set; set ZOHO_CRM_SOID to "
                "ZohoCRM.<org_id> (client-credentials grant of a Self Client) or ZOHO_CRM_REFRESH_TOKEN."
            )

    @property
    def grant(self) -> str:
        return "client_credentials" if self.soid else "refresh_token"

    @property
    def token_scopes(self) -> str:
        """The scopes a minted token carries: those asked for by the client-credentials grant; a refresh
        token's own scopes otherwise (nothing to tell apart then)."""
        return self.scopes if self.soid else ""

    @property
    def org_key(self) -> str:
        """The org part of the cache key: the soid, or a hash of the refresh token (never the token itself).
        """
        if self.soid:
            return self.soid
        return "rt:" + hashlib.sha256((self.refresh_token or "").encode()).hexdigest()

    def __repr__(self) -> str:
        return (
            f"Credentials(client_id={self.client_id!r}, client_secret={mask(self.client_secret)}, "
            f"accounts_url={self.accounts_url!r}, region={self.region!r}, soid={self.soid!r}, refresh_token="
            f"{mask(self.refresh_token)}, grant={self.grant!r})"
        )


@dataclass(frozen=True)
class AccessToken:
    """A usable token, its API domain and when (monotonic clock) this process should stop using it."""

    value: str = field(repr=False)
    api_domain: str
    refresh_at: float

    @property
    def fresh(self) -> bool:
        return time.monotonic() < self.refresh_at


def refresh_margin(lifetime: float) -> float:
    """Refresh 5 minutes before expiry, or a tenth of the lifetime for short-lived (test) tokens."""
    return min(REFRESH_MARGIN_SECONDS, lifetime / 10)


class TokenMinter:
    """One POST to the accounts server's token endpoint, with Zoho's failures turned into clear sentences."""

    def __init__(self, credentials: Credentials, policy: RetryPolicy, session: requests.Session) -> None:
        self.credentials = credentials
        self.policy = policy
        self.session = session

    def _form(self) -> dict[str, str]:
        c = self.credentials
        form = {"client_id": c.client_id, "client_secret": c.client_secret, "grant_type": c.grant}
        if c.soid:
            form.update(scope=c.scopes, soid=c.soid)
        else:
            form["refresh_token"] = c.refresh_token or ""
        return form

    def _where(self) -> str:
        return f"the accounts server for {self.credentials.region} ({self.credentials.accounts_url})"

    def _token_url(self) -> str:
        return f"{self.credentials.accounts_url}/oauth/v2/token"

    def _not_found(self) -> ZohoAuthError:
        """A 404 from the token endpoint: the URL is wrong, not the credentials (a path pasted into it)."""
        return ZohoAuthError(
            redact(
                f"{self._where()} answered 404 at {self._token_url()}: there is no token endpoint there; set "
                "ZOHO_CRM_ACCOUNTS_URL to the accounts server alone (scheme://host, e.g. "
                "https://accounts.zoho.eu), or unset it to use ZOHO_CRM_REGION's."
            ),
            code="HTTP 404",
        )

    def _post(self) -> tuple[requests.Response, dict[str, Any]]:
        """The token answer as JSON; resets, 429, 5xx and cut-off bodies are retried with backoff."""
        last = "could not be reached"
        for attempt in range(1, self.policy.max_retries + 2):
            try:
                response = self.session.post(
                    self._token_url(), data=self._form(), timeout=self.policy.timeout
                )
                _ = response.content
            except TRANSPORT_ERRORS as exc:
                last = f"could not be reached ({type(exc).__name__}: {redact(exc)})"
            else:
                if response.status_code == 404:
                    raise self._not_found()
                if response.status_code != 429 and response.status_code < 500:
                    try:
                        body = response.json()
                    except ValueError:
                        body = None
                    if isinstance(body, dict):
                        return response, body
                    last = f"sent an unreadable answer (HTTP {response.status_code})"
                else:
                    last = f"kept failing (HTTP {response.status_code})"
            if attempt <= self.policy.max_retries:
                time.sleep(self.policy.backoff(attempt))
        raise ZohoAuthError(
            redact(
                f"{self._where()} {last} while minting an access token; check ZOHO_CRM_ACCOUNTS_URL / "
                "ZOHO_CRM_REGION and the network."
            )
        )

    def mint(self) -> tuple[str, str | None, int]:
        """``(access_token, api_domain or None, lifetime seconds)``; waits out the token throttle a few times.
        """
        for attempt in range(self.policy.token_throttle_retries + 1):
            response, body = self._post()
            if body.get("access_token"):
                token = str(body["access_token"])
                register_secret(token)
                lifetime = int(body.get("expires_in") or 3600)
                # legacy: expires_in was in milliseconds (docs/zoho-crm-api.md §1.5)
                if "expires_in_sec" in body:
                    lifetime = int(body["expires_in_sec"])
                log.info(
                    "Minted a Zoho access token at %s (valid %d s).", self.credentials.accounts_url, lifetime
                )
                return token, body.get("api_domain"), lifetime
            error = str(body.get("error") or f"HTTP {response.status_code}")
            if error == "Access Denied" and attempt < self.policy.token_throttle_retries:
                log.warning("Zoho throttled token requests; waiting %.1f s.", self.policy.token_throttle_wait)
                time.sleep(self.policy.token_throttle_wait)
                continue
            raise self._explain(error)
        raise AssertionError("unreachable")

    def _knows_the_client(self) -> bool:
        """Whether this accounts server knows the client, asked by one more token call without the soid.

        Zoho answers ``invalid_client`` both to a client of another data centre and (in the simulator, the
        exact error being UNCONFIRMED) to a soid of another org or of none (docs/zoho-crm-api.md §1.4, §1.6).
        Without a soid a known client gets ``missing_org_info`` instead, which tells the two apart: the SOID
        is then the culprit, not the region. Asked only after a refusal, so it costs nothing when all is well.
        """
        form = {key: value for key, value in self._form().items() if key != "soid"}
        try:
            response = self.session.post(self._token_url(), data=form, timeout=self.policy.timeout)
            body = response.json()
        except (*TRANSPORT_ERRORS, ValueError):
            return False
        return isinstance(body, dict) and body.get("error") == "missing_org_info"

    def _invalid_client(self) -> str:
        c, where = self.credentials, self._where()
        if c.soid and self._knows_the_client():
            return (
                f"{where} knows client {c.client_id} but refused ZOHO_CRM_SOID {c.soid} (invalid_client): "
                "no org has that id, or it is another org than the client's; set ZOHO_CRM_SOID to "
                "ZohoCRM.<org_id> with the org ID of the client's own org (Zoho CRM > Setup > Company "
                "Details > Org ID)."
            )
        others = ", ".join(other_regions(c.region))
        return (
            f"{where} answered invalid_client: the client ID is unknown there; is the org in another "
            f"data centre? set ZOHO_CRM_REGION ({others}) or ZOHO_CRM_ACCOUNTS_URL."
        )

    def _explain(self, error: str) -> ZohoAuthError:
        c, where = self.credentials, self._where()
        if error == "invalid_client":
            text = self._invalid_client()
        elif error == "invalid_client_secret":
            text = (
                f"{where} answered invalid_client_secret: the secret does not belong to client {c.client_id}"
                "; set ZOHO_CRM_CLIENT_SECRET to the secret shown with that client in the Zoho API console."
            )
        elif error == "invalid_code":
            text = (
                f"{where} answered invalid_code: the refresh token is wrong or revoked; generate a new one "
                "(or use the client-credentials grant with ZOHO_CRM_SOID) and set ZOHO_CRM_REFRESH_TOKEN."
            )
        elif error == "missing_org_info":
            text = (
                f"{where} answered missing_org_info: the client-credentials grant needs the org; set "
                "ZOHO_CRM_SOID to ZohoCRM.<org_id> (e.g. ZohoCRM.12345678, the org ID from Setup > Company "
                "Details)."
            )
        elif error == "invalid_scope":
            text = (
                f"{where} answered invalid_scope: the client may not request the scopes {c.scopes}; set "
                "ZOHO_CRM_SCOPES to the comma-separated scopes the Self Client was given."
            )
        elif error == "Access Denied":
            text = (
                f"{where} throttled token requests (Access Denied: Zoho allows 10 tokens per 10 minutes); "
                "wait a few minutes, and let every process share the token cache (same "
                "ZOHO_DAGSTER_DATABASE_URL)."
            )
        else:
            text = (
                f"{where} refused to mint an access token ({redact(error)}); check the ZOHO_CRM_* "
                "credentials."
            )
        return ZohoAuthError(redact(text), code=error)


class TokenProvider:
    """Hands out a fresh token: from memory, else the shared cache, else minted under the cache key's lock."""

    def __init__(
        self, credentials: Credentials, cache: TokenCache, policy: RetryPolicy, session: requests.Session
    ) -> None:
        self.credentials = credentials
        self.minter = TokenMinter(credentials, policy, session)
        self.store = cache
        self.key = cache_key(
            credentials.accounts_url, credentials.client_id, credentials.org_key, credentials.token_scopes
        )
        self._lock = threading.Lock()
        self._current: AccessToken | None = None

    def _usable(self, value: str, api_domain: str, lifetime: int, remaining: float) -> AccessToken | None:
        if remaining <= refresh_margin(lifetime):
            return None
        return AccessToken(value, api_domain, time.monotonic() + remaining - refresh_margin(lifetime))

    def _adopt(self, stored: StoredToken | None, rejected: str | None) -> AccessToken | None:
        """Take a stored token as ours when it is not the rejected one and still fresh enough."""
        if stored is None or stored.value == rejected:
            return None
        usable = self._usable(stored.value, stored.api_domain, stored.lifetime, stored.remaining)
        if usable is not None:
            register_secret(usable.value)
            self._current = usable
        return usable

    def token(self, rejected: str | None = None) -> AccessToken:
        """A token fresh for at least the refresh margin and different from ``rejected`` (a 401'd token)."""
        with self._lock:
            current = self._current
            if current is not None and current.fresh and current.value != rejected:
                return current
            adopted = self._adopt(self.store.read(self.key), rejected)
            if adopted is not None:
                return adopted
            with self.store.locked(self.key) as row:
                # another process may have minted while we waited for the lock
                adopted = self._adopt(row.read(), rejected)
                if adopted is not None:
                    return adopted
                value, api_domain, lifetime = self.minter.mint()
                row.write(value, api_domain or "", lifetime)
                self._current = AccessToken(
                    value, api_domain or "", time.monotonic() + lifetime - refresh_margin(lifetime)
                )
                return self._current
