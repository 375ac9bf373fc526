"""Zoho's errors at the Dagster boundary: ``dg.Failure`` with metadata, or left for the retry policy.

The client raises one small hierarchy (:mod:`zoho_dagster.client.errors`) whose type says what to do.
Dagster understands two answers: a ``dg.Failure`` (shown with its metadata; ``allow_retries=False`` tells an
op retry policy that retrying is pointless) and any other exception (retried by the asset's ``RetryPolicy``
when one is set). So:

- configuration, authentication, permission and other API errors, and exhausted credits, become a
  ``dg.Failure`` that is never retried: a person must change something, or Zoho's daily credits must refill,
  and retrying would only spend time and credits against the same wall;
- transient errors (429, 5xx, resets, truncated bodies) that outlived the client's own retries are re-raised
  unchanged, so the asset's ``RetryPolicy`` (set by :func:`zoho_dagster.definitions.build_definitions`) runs
  the step again later; the run's transaction has rolled back, so a retry starts clean;
- a database that cannot be reached (:class:`~zoho_dagster.postgres.engine.DatabaseConnectionError`) is
  almost always a wrong ``ZOHO_DAGSTER_DATABASE_URL`` (port, name, user), and a database that is down also
  takes Dagster's own storage with it by default, so it too is a ``dg.Failure`` that is not retried.

Every description is redacted and starts with the sentence that names the cause and the fix; the original
exception stays the cause, so its traceback comes below.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from zoho_dagster import environment
from zoho_dagster.client import (
    ZohoAPIError,
    ZohoAuthError,
    ZohoConfigError,
    ZohoCreditsExhausted,
    ZohoError,
    ZohoPermissionError,
    ZohoTransientError,
    redact,
)
from zoho_dagster.postgres.engine import DatabaseConnectionError

_FIXES: tuple[tuple[type[ZohoError], str], ...] = (
    (ZohoCreditsExhausted, "wait for Zoho's rolling 24-hour credit window to refill, or buy more credits"),
    (ZohoConfigError, "fix the variable named in the message, then run `zoho-dagster check`"),
    (
        ZohoPermissionError,
        "grant the missing scope or role named in the message (regenerate the Self Client grant)",
    ),
    (
        ZohoAuthError,
        "check ZOHO_CRM_CLIENT_ID, ZOHO_CRM_CLIENT_SECRET, ZOHO_CRM_SOID and ZOHO_CRM_REGION with "
        "`zoho-dagster check`",
    ),
    (ZohoAPIError, "read Zoho's code and message above; `zoho-dagster check` tests access to every stream"),
)


def fix_for(error: ZohoError) -> str:
    """What a person does about ``error``, in a few words."""
    for kind, fix in _FIXES:
        if isinstance(error, kind):
            return fix
    return "see the message above"


def failure_for(error: ZohoError, what: str) -> dg.Failure:
    """A never-retried ``dg.Failure`` for ``error`` while doing ``what``: Zoho's code, status and the fix."""
    metadata: dict[str, str | int] = {
        "error_type": type(error).__name__,
        "fix": fix_for(error),
    }
    code = getattr(error, "code", None)
    status = getattr(error, "status", None)
    if code:
        metadata["zoho_code"] = str(code)
    if status is not None:
        metadata["http_status"] = int(status)
    missing = getattr(error, "missing", None)
    if missing:
        metadata["missing"] = str(missing)
    return dg.Failure(
        description=f"{what}: {redact(error)}", metadata=metadata, allow_retries=False
    )


def database_failure(error: DatabaseConnectionError, what: str) -> dg.Failure:
    """A never-retried ``dg.Failure`` for a database that could not be reached while doing ``what``."""
    return dg.Failure(
        description=f"{what}: {redact(error)}",
        metadata={
            "error_type": type(error).__name__,
            "fix": f"fix {environment.DATABASE_URL_VARIABLE}, then run `zoho-dagster check`",
        },
        allow_retries=False,
    )


@contextmanager
def zoho_errors_as_failures(what: str) -> Iterator[None]:
    """Turn a non-transient ``ZohoError`` raised inside into :func:`failure_for`, and a database that cannot
    be reached into :func:`database_failure`; transient Zoho errors pass.
    """
    try:
        yield
    except ZohoTransientError:
        raise
    except ZohoError as error:
        raise failure_for(error, what) from error
    except DatabaseConnectionError as error:
        raise database_failure(error, what) from error
