"""Zoho's Notifications API (``/crm/v6/actions/watch``): enable, renew and disable channels.

docs/zoho-crm-api.md §3.12 has the facts: ``POST`` enables, ``PATCH`` updates what it is given (the expiry:
a renewal), ``DELETE ?channel_ids=`` disables, each answering a ``watch`` array with one entry per channel;
scope ``ZohoCRM.notifications.ALL``; 1 credit a call (§6.1). The calls go through the client's HTTP layer
(token, limiter, retries, typed errors) like every other call, and count in ``client.stats``. Retrying is
safe: enabling a channel again, renewing it again or disabling a channel already gone changes nothing more.
"""

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from zoho_dagster.client import ZohoAPIError, ZohoClient, parse_datetime

# The HTTP layer's public calls are GET and a POST that reads; a write is one more _Call through the same
# retrying path (client/http.py).
from zoho_dagster.client.http import Answer, Need, _Call

PATH = "/actions/watch"
SCOPE = "ZohoCRM.notifications.ALL"
NEED = Need(SCOPE, "the notification channels (Zoho's Notifications API)")
DEFAULT_EXPIRY = timedelta(hours=1)
"""What Zoho gives a channel whose expiry is missing or beyond its maximum (docs/zoho-crm-api.md §3.12)."""


@dataclass(frozen=True)
class Channel:
    """One channel as enabled: all events of one module, posted to ``notify_url`` with ``token``."""

    channel_id: str
    module: str
    notify_url: str
    token: str
    expiry: datetime

    def body(self) -> dict[str, Any]:
        return {
            "channel_id": self.channel_id,
            "events": [f"{self.module}.all"],
            "channel_expiry": self.expiry.astimezone(timezone.utc).isoformat(timespec="seconds"),
            "token": self.token,
            "notify_url": self.notify_url,
        }


def with_notifications_scope(client: ZohoClient) -> ZohoClient:
    """``client``, or a client of the same configuration whose client-credentials grant also asks for the
    notifications scope (its token is cached apart: the cache key holds the scopes). A refresh token's scopes
    are the ones it was granted, so nothing changes for it."""
    credentials = client.config.credentials
    if not credentials.soid or SCOPE.lower() in credentials.scopes.lower():
        return client
    scopes = f"{credentials.scopes},{SCOPE}" if credentials.scopes else SCOPE
    config = dataclasses.replace(client.config, credentials=dataclasses.replace(credentials, scopes=scopes))
    client.close()
    return ZohoClient(config)


def _send(client: ZohoClient, method: str, body: Mapping[str, Any] | None = None, **params: str) -> Answer:
    call = _Call(method, PATH, NEED, params, {}, dict(body) if body is not None else None, 1, False)
    return client.http._retrying(call)


def _expiries(answer: Answer, asked: Iterable[str], now: datetime) -> dict[str, datetime]:
    """Each asked channel's expiry as Zoho answered it (the earliest of its events'); a channel whose entry
    gives none gets Zoho's default (:data:`DEFAULT_EXPIRY` from ``now``), the safe guess."""
    found: dict[str, datetime] = {}
    for entry in (answer.body or {}).get("watch") or []:
        if not isinstance(entry, Mapping):
            continue
        if str(entry.get("status", "")).lower() != "success":  # a mixed answer (207): one entry refused
            raise ZohoAPIError(
                f"Zoho refused a notification channel ({entry.get('code')}: {entry.get('message')})",
                code=str(entry.get("code")),
                status=answer.status,
                details=dict(entry.get("details") or {}),
            )
        events = (entry.get("details") or {}).get("events") or []
        for event in events if isinstance(events, list) else []:
            channel = str(event.get("channel_id") or "")
            try:
                expiry = parse_datetime(str(event.get("channel_expiry")))
            except (TypeError, ValueError):
                continue
            found[channel] = min(expiry, found.get(channel, expiry))
    return {channel: found.get(channel, now + DEFAULT_EXPIRY) for channel in asked}


def enable(client: ZohoClient, channels: Sequence[Channel], now: datetime) -> dict[str, datetime]:
    """``POST``: enable ``channels`` (one call); their expiries as Zoho answered them."""
    answer = _send(client, "POST", {"watch": [c.body() for c in channels]})
    return _expiries(answer, [c.channel_id for c in channels], now)


def renew(client: ZohoClient, channels: Sequence[Channel], now: datetime) -> dict[str, datetime]:
    """``PATCH``: move ``channels``' expiry (and notify URL, token) forward, keeping them (one call)."""
    answer = _send(client, "PATCH", {"watch": [c.body() for c in channels]})
    return _expiries(answer, [c.channel_id for c in channels], now)


def disable(client: ZohoClient, channel_ids: Sequence[str]) -> None:
    """``DELETE``: stop ``channel_ids`` (one call). A channel Zoho no longer knows (expired, or disabled
    elsewhere) is what was asked for, so a refusal is retried one channel at a time and ``INVALID_DATA`` for
    a single channel is taken as done."""
    if not channel_ids:
        return
    try:
        _send(client, "DELETE", channel_ids=",".join(channel_ids))
    except ZohoAPIError:
        if len(channel_ids) == 1:
            raise
        for channel_id in channel_ids:
            try:
                _send(client, "DELETE", channel_ids=channel_id)
            except ZohoAPIError as error:
                if error.status != 400:
                    raise


def details(client: ZohoClient, channel_id: str | None = None) -> list[dict[str, Any]]:
    """``GET``: the channels Zoho holds for this user (or one channel), as Zoho describes them."""
    params = {"channel_id": channel_id} if channel_id else {}
    answer = client.http.get(PATH, NEED, params=params)
    return [dict(entry) for entry in (answer.body or {}).get("watch") or []]
