"""The notification settings, checked, and the channel ids and tokens that derive from the secret.

Why derived: a channel's id and its token are HMACs of ``ZOHO_DAGSTER_NOTIFY_SECRET`` (SHA-256), so they are
the same on every run and every host. ``subscribe`` run twice asks for the same channels (and changes nothing
the second time); the receiver checks a notification's token against the one its channel id derives to,
without a table lookup; two deployments with different secrets watching one org get different channels.

Zoho's limits (docs/zoho-crm-api.md §3.12): a channel id is a long, a token at most 50 characters.
"""

import hashlib
import hmac
import ipaddress
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from urllib.parse import urlsplit

from zoho_dagster.environment import (
    NOTIFY_SECRET_VARIABLE,
    NOTIFY_URL_VARIABLE,
    notify_secret,
    notify_url,
)

MIN_SECRET_LENGTH = 32
TOKEN_LENGTH = 43
"""Characters of a channel token: 256 bits in URL-safe base64 (Zoho takes at most 50)."""
CHANNEL_ID_FLOOR = 10**15
CHANNEL_ID_SPAN = 9 * 10**15
"""Channel ids are 16-digit numbers: Zoho's ``channel_id`` is a long, and its samples are 13 digits."""


class NotificationConfigError(ValueError):
    """A missing or bad notification setting; the message names the variable and the fix."""


@dataclass(frozen=True)
class NotifySettings:
    """Where Zoho posts (``url``, only for ``subscribe`` and the channels job) and the shared secret."""

    secret: str
    url: str | None = None

    def channel_id(self, module: str) -> str:
        """The channel of ``module``'s notifications: a 16-digit number, stable for this secret."""
        digest = _mac(self.secret, f"zoho-dagster/channel/{module}")
        return str(CHANNEL_ID_FLOOR + int.from_bytes(digest[:8], "big") % CHANNEL_ID_SPAN)

    def token(self, channel_id: str) -> str:
        """The token Zoho sends back with every notification of ``channel_id`` (43 characters)."""
        return urlsafe_b64encode(_mac(self.secret, f"zoho-dagster/token/{channel_id}")).decode()[
            :TOKEN_LENGTH
        ]

    def token_matches(self, channel_id: str, token: str) -> bool:
        """Whether ``token`` is ``channel_id``'s, in constant time (timing tells nothing of a near match)."""
        return hmac.compare_digest(self.token(channel_id).encode(), token.encode())


def _mac(secret: str, message: str) -> bytes:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()


def load_settings(need_url: bool = False) -> NotifySettings:
    """The secret (always needed) and, with ``need_url``, the notify URL, both checked."""
    secret = notify_secret()
    if not secret or len(secret) < MIN_SECRET_LENGTH:
        raise NotificationConfigError(
            f"{NOTIFY_SECRET_VARIABLE} is {'unset' if not secret else 'too short'}; set it to a random "
            f"string of at least {MIN_SECRET_LENGTH} characters (e.g. `openssl rand -hex 32`), the same for "
            "the receiver and the Dagster deployment."
        )
    url = notify_url()
    if need_url:
        url = checked_url(url)
    return NotifySettings(secret=secret, url=url)


def checked_url(url: str | None) -> str:
    """``url`` when Zoho may post to it: https, or http to this machine only (tests, a local tunnel)."""
    if not url:
        raise NotificationConfigError(
            f"{NOTIFY_URL_VARIABLE} is unset; set it to the public https URL of the receiver "
            "(`zoho-dagster notifications serve` behind a reverse proxy), e.g. https://crm-hooks.example.com/zoho."
        )
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and _loopback(parts.hostname):
        return url
    raise NotificationConfigError(
        f"{NOTIFY_URL_VARIABLE} is {url!r}; Zoho must post notifications over https (plain http is allowed "
        "only to 127.0.0.1, ::1 or localhost); put the receiver behind a TLS reverse proxy and give its "
        "https URL."
    )


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
