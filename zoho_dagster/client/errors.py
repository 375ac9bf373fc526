"""The client's exceptions: one small hierarchy so callers can tell *what to do* from the type alone.

- ``ZohoConfigError``: the configuration is wrong; a person must change a variable (the text names it).
- ``ZohoAuthError``: the accounts server refused to mint a token, or the API refused the token.
- ``ZohoPermissionError``: the token works but lacks a scope, a role or an edition feature (the text names
  it).
- ``ZohoCreditsExhausted``: the org's rolling 24-hour credit budget is spent; retrying only burns time.
- ``ZohoAPIError``: any other error answer, with Zoho's ``code`` and the HTTP ``status``.
- ``ZohoTransientError``: a failure worth retrying (429, 5xx, resets, truncated bodies, timeouts); it escapes
  only once the retries are exhausted.

Every message is built by this package from redacted parts, so no exception text carries a secret.
"""

import http.client
from collections.abc import Mapping
from typing import Any

import requests

TRANSPORT_ERRORS = (requests.RequestException, http.client.HTTPException, ConnectionError, TimeoutError)
"""What a request can raise before any answer arrives: retried as transient wherever a call is made."""


class ZohoError(Exception):
    """Base of every error this client raises."""


class ZohoConfigError(ZohoError, ValueError):
    """Bad or missing configuration: the message is one sentence naming the variable and the fix."""


class ZohoAuthError(ZohoError):
    """The token could not be obtained or was rejected."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class ZohoAPIError(ZohoError):
    """An error answer of the CRM API that is neither transient nor about permissions."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.details = dict(details or {})


class ZohoPermissionError(ZohoAPIError):
    """The token lacks a scope, the user a role, or the edition a feature; ``missing`` names what is needed.
    """

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None, missing: str | None = None
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.missing = missing


class ZohoCreditsExhausted(ZohoAPIError):
    """The org's daily API credits are used up: stop instead of retrying into the same wall."""


class ZohoTransientError(ZohoAPIError):
    """A retryable failure; ``retry_after`` is the server's requested wait in seconds, when it sent one."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after
