"""Keep secrets out of every text the client produces.

The client secret, refresh token and access tokens are registered here as soon as they are known; every
message this package builds from foreign text (a requests exception, which quotes URLs; an error body) goes
through :func:`redact`. Registration is process-wide because a secret seen by one client object must also be
hidden in the messages of another (e.g. the token cache and the HTTP layer).
"""

import threading
from urllib.parse import quote, quote_plus

MASK = "***"
HIDDEN = "a secret (not shown)"
"""What an error message says instead of a value that holds a registered secret."""
_MIN_LENGTH = 6  # shorter values are not secrets worth masking and would shred ordinary words

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask ``value`` (and its URL-encoded forms) in every later :func:`redact`."""
    if not value or len(value) < _MIN_LENGTH:
        return
    with _lock:
        _secrets.update({value, quote(value, safe=""), quote_plus(value)})


def redact(text: object) -> str:
    """``str(text)`` with every registered secret replaced by ``***``."""
    result = str(text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in result:
            result = result.replace(secret, MASK)
    return result


def quoted(value: str) -> str:
    """``repr(value)`` for an error message, or :data:`HIDDEN` when it holds a registered secret.

    A secret pasted into the wrong variable (the client secret as ``ZOHO_CRM_SOID``) must not be printed back
    by the sentence that refuses it; saying that it is a secret also tells the user what went wrong.
    """
    return repr(value) if redact(value) == value else HIDDEN


def mask(value: str | None) -> str:
    """A fixed stand-in for a secret in reprs: says whether it is set, never what it is."""
    return "<unset>" if not value else MASK
