"""One authenticated read (a GET, or a POST that reads: COQL) against the CRM API with Zoho's manners:
pacing, retries, refresh, clear errors.

Every attempt goes through the process-wide limiter, is counted in the caller's ``CallStats``, and ends in
exactly one of: a parsed answer, ``None`` for "no rows" (204/304), a retry (429, 5xx, resets, truncated
bodies, timeouts; exponential backoff with jitter via tenacity, ``Retry-After`` honoured), a single token
refresh on 401 ``INVALID_TOKEN``, or a typed error whose text names the fix. Exception texts are built here
from redacted parts and the original exception is never chained, because requests' texts quote URLs.
"""

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import requests
import tenacity

from zoho_dagster.client.auth import TokenProvider
from zoho_dagster.client.errors import (
    TRANSPORT_ERRORS,
    ZohoAPIError,
    ZohoAuthError,
    ZohoCreditsExhausted,
    ZohoPermissionError,
    ZohoTransientError,
)
from zoho_dagster.client.limiter import RateLimiter
from zoho_dagster.client.policy import RetryPolicy
from zoho_dagster.client.redact import redact
from zoho_dagster.client.stats import CallStats

log = logging.getLogger(__name__)

API_PREFIX = "/crm/v6"
NO_ROWS = (204, 304)
# A token that fails right after a refresh is refreshed once more (an expiry can coincide with a refresh);
# beyond that the token is wrong for this API domain and retrying would only burn Zoho's token budget.
MAX_REFRESHES_PER_CALL = 2
CREDITS_MESSAGE = re.compile(r"24[\s-]*hour|credit|daily", re.IGNORECASE)


@dataclass(frozen=True)
class Need:
    """What a call needs, to name it when Zoho refuses: the OAuth scope and a human name of the resource."""

    scope: str
    what: str


@dataclass(frozen=True)
class _Call:
    """One request as the retry loop repeats it: method, path, what it needs, and what Zoho charges."""

    method: str
    path: str
    need: Need
    params: Mapping[str, Any]
    headers: Mapping[str, str]
    body: dict[str, Any] | None
    cost: int
    heavy: bool


@dataclass(frozen=True)
class Answer:
    """A parsed JSON answer (``body``) or ``None`` for 204/304, with its status."""

    status: int
    body: dict[str, Any] | None


def error_fields(response: requests.Response) -> tuple[str | None, str, dict[str, Any]]:
    """Zoho's ``code``, ``message`` and ``details`` from an error answer (OAuth bodies say ``error``)."""
    try:
        body = response.json()
    except ValueError:
        return None, "", {}
    if isinstance(body, dict):
        details = body.get("details") if isinstance(body.get("details"), dict) else {}
        message = body.get("message") or body.get("error_info") or ""
        code = body.get("code") if isinstance(body.get("code"), str) else body.get("error")
        return (str(code) if code is not None else None), str(message), details or {}
    return None, "", {}


def decode_json(response: requests.Response) -> Any:
    """The answer's JSON. orjson first: a page of 200 Leads decodes in under half the standard library's time,
    on the workers' threads that share the GIL with the COPY into Postgres. What orjson refuses (``NaN``
    literals, a body that is not UTF-8, a cut-off body) goes to requests' decoder, which keeps its meaning
    (a ``ValueError`` for a truncated body, as before)."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class ZohoHttp:
    """Authenticated, paced, retried reads on the API domain of one org."""

    def __init__(
        self,
        provider: TokenProvider,
        limiter: RateLimiter,
        policy: RetryPolicy,
        session: requests.Session,
        stats: CallStats,
        api_domain_override: str | None,
        default_api_domain: str,
    ) -> None:
        self.provider = provider
        self.limiter = limiter
        self.policy = policy
        self.session = session
        self.stats = stats
        self.api_domain_override = api_domain_override
        self.default_api_domain = default_api_domain

    def _base(self, token_domain: str) -> str:
        return (self.api_domain_override or token_domain or self.default_api_domain).rstrip("/")

    def get(
        self,
        path: str,
        need: Need,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        cost: int = 1,
    ) -> Answer:
        """GET ``/crm/v6{path}``, retried as the policy says; raises a typed ``ZohoError`` otherwise."""
        call = _Call(
            "GET", path, need, params or {}, headers or {}, None, cost, heavy="sort_by" in (params or {})
        )
        return self._retrying(call)

    def post_json(
        self, path: str, need: Need, body: Mapping[str, Any], cost: int = 1, heavy: bool = False
    ) -> Answer:
        """POST ``body`` as JSON to ``/crm/v6{path}`` for a *read* (COQL, docs/zoho-crm-api.md §3.8), with
        the same manners as :meth:`get`: retrying is safe because the call changes nothing.

        ``heavy`` takes a sub-concurrency slot of the limiter (COQL is a heavy call, §6.3); ``cost`` is the
        credits Zoho charges for it (COQL: 1, 2 or 3 by LIMIT).
        """
        return self._retrying(_Call("POST", path, need, {}, {}, dict(body), cost, heavy))

    def _retrying(self, call: "_Call") -> Answer:
        state = {"refreshes": 0}

        def wait(retry_state: tenacity.RetryCallState) -> float:
            error = retry_state.outcome.exception() if retry_state.outcome else None
            retry_after = getattr(error, "retry_after", None)
            return self.policy.backoff(retry_state.attempt_number, retry_after)

        def before_sleep(retry_state: tenacity.RetryCallState) -> None:
            error = retry_state.outcome.exception() if retry_state.outcome else None
            log.debug(
                "Retrying %s %s after %s (attempt %d).",
                call.method,
                call.path,
                error,
                retry_state.attempt_number,
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(ZohoTransientError),
            stop=tenacity.stop_after_attempt(self.policy.max_retries + 1),
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(self._attempt, call, state)

    def _send(self, call: "_Call", token_value: str, base: str) -> requests.Response:
        headers = {**call.headers, "Authorization": f"Zoho-oauthtoken {token_value}"}
        with self.limiter.slot(heavy=call.heavy):
            try:
                response = self.session.request(
                    call.method,
                    base + API_PREFIX + call.path,
                    params=call.params,
                    json=call.body,
                    headers=headers,
                    timeout=self.policy.timeout,
                )
                _ = response.content  # read the whole body inside the retry: truncation surfaces here
            except TRANSPORT_ERRORS as exc:
                self.stats.add(calls=1, credits=0)
                raise ZohoTransientError(
                    redact(
                        f"{call.method} {call.path} at {base} failed in transit ({type(exc).__name__}: "
                        f"{exc}); check ZOHO_CRM_API_DOMAIN (or ZOHO_CRM_REGION, whose API domain is used "
                        "when it is unset) and the network."
                    )
                ) from None
        return response

    def _attempt(self, call: "_Call", state: dict[str, int]) -> Answer:
        token = self.provider.token()
        response = self._send(call, token.value, self._base(token.api_domain))
        while response.status_code == 401 and state["refreshes"] < MAX_REFRESHES_PER_CALL:
            code, _, _ = error_fields(response)
            if code != "INVALID_TOKEN":
                break
            self.stats.add(calls=1, credits=0)
            state["refreshes"] += 1
            log.info("Zoho rejected the access token (INVALID_TOKEN); refreshing it.")
            token = self.provider.token(rejected=token.value)
            response = self._send(call, token.value, self._base(token.api_domain))
        return self._interpret(call, response)

    def _interpret(self, call: "_Call", response: requests.Response) -> Answer:
        status = response.status_code
        cost, name = call.cost, f"{call.method} {call.path}"
        if status in NO_ROWS:
            self.stats.add(calls=1, credits=cost)
            return Answer(status, None)
        if status < 300:
            try:
                body = decode_json(response)
            except ValueError:  # a 200 with a cut-off body: the connection dropped mid-answer
                self.stats.add(calls=1, credits=cost)
                raise ZohoTransientError(f"{name} returned a truncated body", status=status) from None
            self.stats.add(calls=1, credits=cost)
            if not isinstance(body, dict):
                raise ZohoAPIError(f"{name} returned JSON that is not an object", status=status)
            return Answer(status, body)
        self.stats.add(calls=1, credits=0)
        code, message, details = error_fields(response)
        message = redact(message)
        if status == 429:
            if CREDITS_MESSAGE.search(message):
                raise ZohoCreditsExhausted(
                    f"Zoho's API credits for this org are exhausted ({message or code}); the run stops here "
                    "instead of retrying: wait for the rolling 24-hour window to free credits, or buy "
                    "add-on credits.",
                    code=code,
                    status=status,
                )
            raise ZohoTransientError(
                f"{name} was rate-limited (429 {code}: {message})",
                code=code,
                status=status,
                retry_after=_retry_after(response),
            )
        if status >= 500:
            raise ZohoTransientError(
                f"{name} failed on Zoho's side ({status} {code}: {message})",
                code=code,
                status=status,
                retry_after=_retry_after(response),
            )
        raise self._refusal(name, call.need, status, code, message, details)

    def _refusal(
        self, name: str, need: Need, status: int, code: str | None, message: str, details: dict[str, Any]
    ) -> ZohoAPIError:
        if code == "OAUTH_SCOPE_MISMATCH":
            return ZohoPermissionError(
                f"The Zoho token lacks the scope {need.scope} needed to read {need.what} "
                f"(OAUTH_SCOPE_MISMATCH); add {need.scope} (or ZohoCRM.modules.ALL / ZohoCRM.settings.ALL) "
                "to the client's scopes.",
                code=code,
                status=status,
                missing=need.scope,
            )
        if code == "NOT_SUPPORTED":
            return ZohoPermissionError(
                f"Zoho refused to list {need.what} (NOT_SUPPORTED: {message}); Zoho serves them to admin "
                "users only, so use a client of a user with the Administrator profile.",
                code=code,
                status=status,
                missing="Administrator profile",
            )
        if code == "NO_PERMISSION":
            return ZohoPermissionError(
                f"The Zoho user behind the token may not read {need.what} (NO_PERMISSION: {message}); give "
                "the user's profile read permission on it, or use an admin user's client.",
                code=code,
                status=status,
                missing=f"read permission on {need.what}",
            )
        if code in ("FEATURE_NOT_ENABLED", "FEATURE_NOT_SUPPORTED"):
            return ZohoPermissionError(
                f"The org's Zoho edition does not offer {need.what} ({code}: {message}); upgrade the "
                "edition or leave this stream out.",
                code=code,
                status=status,
                missing=f"an edition with {need.what}",
            )
        if status == 401:
            return ZohoAuthError(
                f"Zoho rejected the access token for {need.what} ({code}: {message}) even after a refresh; "
                "check that ZOHO_CRM_API_DOMAIN matches the region of ZOHO_CRM_ACCOUNTS_URL / "
                "ZOHO_CRM_REGION.",
                code=code,
            )
        text = f"{name} failed: {status} {code}: {message}"
        if details:
            text += f" {redact(json.dumps(details, sort_keys=True))}"
        return ZohoAPIError(text, code=code, status=status, details=details)
