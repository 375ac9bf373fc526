"""Zoho's Notifications API (docs/zoho-crm-api.md §3.12): channels, and the notifications they post.

The API, ``/crm/v6/actions/watch``: ``POST`` enables channels, ``PATCH`` updates what it is given (the expiry:
a renewal), ``PUT`` replaces a channel, ``DELETE ?channel_ids=`` disables, ``GET`` lists. Scopes
``ZohoCRM.notifications.{ALL|WRITE|CREATE|UPDATE|DELETE|READ}`` by method; 1 credit a call like any other.

Strict readings of what Zoho's pages leave open (each UNCONFIRMED, §3.12):

- the longest expiry is **one day** (v6 copies disagree: one day or one week); an expiry past it, or none,
  becomes one hour from now, silently, as the pages say; an expiry already past is refused;
- a channel past its expiry is gone: it posts nothing, is not listed, and ``PATCH`` refuses it
  (``INVALID_DATA`` on ``channel_id``), so a client must enable it again;
- a request with any refused entry answers 400 with the whole ``watch`` array (nothing of it applied);
- Notes, subform and linking modules cannot be watched (Notes is not in Zoho's supported-modules list);
- delivery: one ``POST`` of Zoho's callback body per notification, from background threads (an API call or a
  control call that changes a record only enqueues), **never retried**: a receiver that is down, slow (5 s),
  or answers anything but 2xx loses that notification. Consecutive changes of one module and operation are
  sent together, up to 100 ids a notification. Order across notifications is not guaranteed (four senders).

Faults (control plane, ``/__simulator/notifications/faults``): duplicates, reordering within a window, dropped
deliveries (by rate, seeded), and a receiver outage for some seconds (every delivery fails meanwhile).
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import requests

from .accounts import has_scope
from .clock import parse_time, render_time
from .errors import ApiError, EmptyResponse, invalid_method, scope_mismatch
from .regions import api_domain
from .schema import module_row_id, module_spec

if TYPE_CHECKING:
    from .context import Request
    from .state import Simulator

MAX_EXPIRY = 24 * 3600.0
DEFAULT_EXPIRY = 3600.0
MAX_TOKEN_LENGTH = 50
MAX_IDS_PER_NOTIFICATION = 100
DELIVERY_TIMEOUT = 5.0
SENDERS = 4
OPERATIONS = {"create": "insert", "edit": "update", "delete": "delete"}
"""Event operation → the callback's ``operation``."""
UNWATCHABLE = frozenset({"Notes"})
SCOPES = {
    "POST": ("CREATE", "WRITE"),
    "PATCH": ("UPDATE", "WRITE"),
    "PUT": ("UPDATE", "WRITE"),
    "DELETE": ("DELETE",),
    "GET": ("READ",),
}


@dataclass
class Channel:
    """One enabled channel of one org: the (module, operation) events it watches and where it posts."""

    channel_id: str
    org_id: str
    events: set[tuple[str, str]]
    notify_url: str
    token: str | None
    expiry: float


@dataclass
class DeliveryFaults:
    duplicate_rate: float = 0.0
    reorder_window: int = 0
    drop_rate: float = 0.0
    outage_until: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(1))

    def describe(self) -> dict[str, Any]:
        return {
            "duplicate_rate": self.duplicate_rate,
            "reorder_window": self.reorder_window,
            "drop_rate": self.drop_rate,
            "outage_seconds_left": max(0.0, self.outage_until - time.monotonic()),
        }


class _ItemError(Exception):
    def __init__(self, code: str, details: dict[str, Any], message: str = "invalid data") -> None:
        super().__init__(code)
        self.entry = {"code": code, "details": details, "message": message, "status": "error"}


class Notifier:
    """Every org's channels, the queue of changes to notify and the threads that post them."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._lock = threading.Lock()
        self.channels: dict[tuple[str, str], Channel] = {}
        self.watched: dict[str, set[str]] = {}
        """Org id → modules some channel watches: a change elsewhere costs one dict lookup."""
        self.faults = DeliveryFaults()
        self.stats: Counter[str] = Counter()
        self._changes: queue.Queue[tuple[str, str, str, str, tuple[str, ...]]] = queue.Queue()
        self._outbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._outstanding = 0
        self._generation = 0
        self._threads_started = False

    # --- changes -------------------------------------------------------------------------------------------
    def listener(self, org_id: str) -> Any:
        """The hook an org's store calls on every create, update and delete: ``(module, operation, id,
        affected_fields)``, ``operation`` being ``insert``, ``update`` or ``delete``. It only enqueues."""

        def changed(module: str, operation: str, record_id: str, affected: tuple[str, ...] = ()) -> None:
            if module not in self.watched.get(org_id, ()):
                return
            with self._lock:
                self._outstanding += 1
            self._changes.put((org_id, module, operation, record_id, affected))

        return changed

    def reset(self) -> None:
        """Back to no channels and no faults; what is queued is dropped (it belonged to the old world)."""
        with self._lock:
            self.channels.clear()
            self.watched.clear()
            self.faults = DeliveryFaults()
            self.stats.clear()
            self._generation += 1

    def _start(self) -> None:
        with self._lock:
            if self._threads_started:
                return
            self._threads_started = True
        threading.Thread(target=self._dispatch, name="notify-dispatch", daemon=True).start()
        for n in range(SENDERS):
            threading.Thread(target=self._send, name=f"notify-send-{n}", daemon=True).start()

    def _dispatch(self) -> None:
        """Changes → notifications: consecutive changes of one module and operation share one (≤ 100 ids);
        faults applied (drops, duplicates, reordering) on the way to the senders."""
        held: list[tuple[str, bytes]] = []
        while True:
            try:
                first = self._changes.get(timeout=0.05)
            except queue.Empty:
                self._release(held, everything=True)
                continue
            generation = self._generation
            batch = [first]
            while len(batch) < 1000:
                try:
                    batch.append(self._changes.get_nowait())
                except queue.Empty:
                    break
            groups: list[list[tuple[str, str, str, str, tuple[str, ...]]]] = []
            for change in batch:
                if groups and groups[-1][0][:3] == change[:3] and len(groups[-1]) < MAX_IDS_PER_NOTIFICATION:
                    groups[-1].append(change)
                else:
                    groups.append([change])
            for group in groups:
                for payload in self._payloads(group):
                    self._fault(payload, held)
            with self._lock:
                self._outstanding -= len(batch)
                if generation != self._generation:  # reset meanwhile: these belong to the old world
                    self._outstanding -= len(held)
                    held.clear()
            self._release(held, everything=False)

    def _payloads(self, group: list[tuple[str, str, str, str, tuple[str, ...]]]) -> list[tuple[str, bytes]]:
        org_id, module, operation = group[0][:3]
        event = next(name for name, op in OPERATIONS.items() if op == operation)
        now = self.sim.clock.now()
        with self._lock:
            channels = [
                c
                for c in self.channels.values()
                if c.org_id == org_id and c.expiry > now and (module, event) in c.events
            ]
        org = self.sim.orgs.get(org_id)
        if org is None:
            return []
        out = []
        for channel in channels:
            body: dict[str, Any] = {
                "server_time": int(now * 1000),
                "query_params": dict(parse_qsl(urlsplit(channel.notify_url).query)),
                "module": module,
                "resource_uri": f"{api_domain(self.sim.base_url, org.region)}/crm/v6/{module}",
                "ids": [change[3] for change in group],
                "operation": operation,
                "channel_id": channel.channel_id,
                "token": channel.token,
            }
            if operation == "update":
                body["affected_fields"] = [{change[3]: list(change[4])} for change in group]
            out.append((channel.notify_url, json.dumps(body).encode()))
        return out

    def _fault(self, payload: tuple[str, bytes], held: list[tuple[str, bytes]]) -> None:
        faults = self.faults
        with self._lock:
            self.stats["notifications"] += 1
            if faults.drop_rate and faults.rng.random() < faults.drop_rate:
                self.stats["dropped"] += 1
                return
            copies = 1
            if faults.duplicate_rate and faults.rng.random() < faults.duplicate_rate:
                self.stats["duplicated"] += 1
                copies = 2
            self._outstanding += copies
        held.extend([payload] * copies)

    def _release(self, held: list[tuple[str, bytes]], everything: bool) -> None:
        """Hand held notifications to the senders: in a random order within the reorder window when one is
        set (keeping up to the window back until the queue idles), else in order."""
        window = self.faults.reorder_window
        keep = 0 if everything or window <= 1 else window
        while len(held) > keep:
            index = self.faults.rng.randrange(len(held)) if window > 1 else 0
            if index:
                with self._lock:
                    self.stats["reordered"] += 1
            self._outbox.put(held.pop(index))

    def _send(self) -> None:
        session = requests.Session()
        while True:
            url, body = self._outbox.get()
            outcome = "failed"
            try:
                if time.monotonic() < self.faults.outage_until:
                    continue  # the receiver is down: the post never reaches it
                response = session.post(
                    url, data=body, headers={"Content-Type": "application/json"}, timeout=DELIVERY_TIMEOUT
                )
                outcome = "delivered" if 200 <= response.status_code < 300 else "refused"
            except requests.RequestException:
                outcome = "failed"
            finally:
                with self._lock:
                    self.stats[outcome] += 1
                    self._outstanding -= 1

    @property
    def pending(self) -> int:
        """Changes and notifications not yet delivered, refused or lost."""
        with self._lock:
            return self._outstanding

    # --- the API -------------------------------------------------------------------------------------------
    def handle(self, req: Request) -> tuple[int, Any]:
        """``/crm/v6/actions/watch``, every method."""
        levels = SCOPES.get(req.method)
        if levels is None:
            raise invalid_method()
        if not has_scope(
            req.token.scopes,
            "ZohoCRM.notifications.ALL",
            *(f"ZohoCRM.notifications.{level}" for level in levels),
        ):
            raise scope_mismatch()
        if req.method == "GET":
            return self._list(req)
        if req.method == "DELETE":
            return self._disable(req)
        return self._write(req)

    def _entries(self, req: Request) -> list[Any]:
        try:
            body = json.loads(req.body or b"{}")
        except ValueError:
            raise ApiError(400, "INVALID_DATA", "body is not JSON", {}) from None
        entries = body.get("watch") if isinstance(body, dict) else None
        if not isinstance(entries, list) or not entries:
            raise ApiError(
                400,
                "REQUIRED_PARAM_MISSING",
                "One of the expected parameter is missing",
                {"param_name": "watch"},
            )
        return entries

    def _write(self, req: Request) -> tuple[int, Any]:
        entries = self._entries(req)
        now = req.now
        results: list[dict[str, Any]] = []
        planned: list[Channel] = []
        failed = False
        with self._lock:
            for entry in entries:
                try:
                    channel = self._planned(req, entry, now)
                except _ItemError as error:
                    failed = True
                    results.append(error.entry)
                    continue
                planned.append(channel)
                results.append({})
            if failed:
                return 400, {"watch": [r or _skipped() for r in results]}
            for channel in planned:
                self.channels[(channel.org_id, channel.channel_id)] = channel
            self._rebuild_watched()
        self._start()
        message = (
            "Successfully subscribed for actions-watch of the given module"
            if req.method == "POST"
            else "Successfully updated the subscribe details"
        )
        watch = [
            {
                "code": "SUCCESS",
                "details": {"events": self._described(req, c)},
                "message": message,
                "status": "success",
            }
            for c in planned
        ]
        return (201 if req.method == "POST" else 200), {"watch": watch}

    def _planned(self, req: Request, entry: Any, now: float) -> Channel:
        """The channel ``entry`` asks for (checked), without applying it. Called with the lock held."""
        if not isinstance(entry, dict):
            raise _ItemError("INVALID_DATA", {})
        channel_id = entry.get("channel_id")
        if channel_id is None:
            raise _ItemError("MANDATORY_NOT_FOUND", {"api_name": "channel_id"}, "required field not found")
        channel_id = str(channel_id)
        if not channel_id.isdigit() or len(channel_id) > 19:
            raise _ItemError("INVALID_DATA", {"api_name": "channel_id"})
        existing = self.channels.get((req.org.org_id, channel_id))
        if existing is not None and existing.expiry <= now:
            existing = None  # lapsed: gone
        if req.method in ("PATCH", "PUT") and existing is None:
            raise _ItemError("INVALID_DATA", {"api_name": "channel_id"}, "the given channel id is not found")
        for key in ("events", "notify_url"):
            if key not in entry:
                raise _ItemError("MANDATORY_NOT_FOUND", {"api_name": key}, "required field not found")
        events = _events(entry["events"])
        url = entry["notify_url"]
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise _ItemError("INVALID_DATA", {"api_name": "notify_url"})
        token = entry.get("token", existing.token if existing and req.method == "PATCH" else None)
        if token is not None and (not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH):
            raise _ItemError("INVALID_DATA", {"api_name": "token", "maximum_length": MAX_TOKEN_LENGTH})
        expiry = now + DEFAULT_EXPIRY
        if entry.get("channel_expiry") is not None:
            asked = parse_time(str(entry["channel_expiry"]))
            if asked is None or asked <= now:
                raise _ItemError("INVALID_DATA", {"api_name": "channel_expiry"})
            if asked <= now + MAX_EXPIRY:
                expiry = asked
        if existing is not None and req.method in ("POST", "PATCH"):
            events = events | existing.events  # enabling or updating adds events; PUT replaces them
        return Channel(channel_id, req.org.org_id, events, url, token, expiry)

    def _rebuild_watched(self) -> None:
        watched: dict[str, set[str]] = {}
        for channel in self.channels.values():
            watched.setdefault(channel.org_id, set()).update(module for module, _ in channel.events)
        self.watched = watched

    def _described(self, req: Request, channel: Channel) -> list[dict[str, Any]]:
        prefix = req.org.store.gen.prefix
        rows = []
        for module in sorted({module for module, _ in channel.events}):
            spec = module_spec(module)
            assert spec is not None
            rows.append(
                {
                    "channel_expiry": render_time(channel.expiry, req.user.offset),
                    "resource_uri": f"{api_domain(self.sim.base_url, req.org.region)}/crm/v6/{module}",
                    "resource_id": module_row_id(prefix, spec),
                    "resource_name": module,
                    "channel_id": channel.channel_id,
                }
            )
        return rows

    def _disable(self, req: Request) -> tuple[int, Any]:
        raw = req.params.get("channel_ids", "")
        ids = [part.strip() for part in raw.split(",") if part.strip()]
        if not ids:
            raise ApiError(
                400,
                "REQUIRED_PARAM_MISSING",
                "One of the expected parameter is missing",
                {"param_name": "channel_ids"},
            )
        now = req.now
        with self._lock:
            found = {cid: self.channels.get((req.org.org_id, cid)) for cid in ids}
            unknown = [cid for cid, c in found.items() if c is None or c.expiry <= now]
            if unknown:
                watch = [
                    {
                        "code": "INVALID_DATA",
                        "details": {"api_name": "channel_ids", "channel_id": cid},
                        "message": "the given channel id is not found",
                        "status": "error",
                    }
                    if cid in unknown
                    else _skipped()
                    for cid in ids
                ]
                return 400, {"watch": watch}
            described = {cid: self._described(req, c) for cid, c in found.items() if c is not None}
            for cid in ids:
                self.channels.pop((req.org.org_id, cid), None)
            self._rebuild_watched()
        watch = [
            {
                "code": "SUCCESS",
                "details": {k: v for k, v in row.items() if k != "channel_expiry"},
                "message": "Successfully un-subscribed from actions-watch",
                "status": "success",
            }
            for cid in ids
            for row in described[cid]
        ]
        return 200, {"watch": watch}

    def _list(self, req: Request) -> tuple[int, Any]:
        """``GET``: the org's live channels, one entry per module (``channel_id``, ``module`` filter)."""
        wanted, module = req.params.get("channel_id"), req.params.get("module")
        now = req.now
        with self._lock:
            live = [
                c
                for c in self.channels.values()
                if c.org_id == req.org.org_id and c.expiry > now and (not wanted or c.channel_id == wanted)
            ]
        rows = []
        for channel in sorted(live, key=lambda c: c.channel_id):
            for row in self._described(req, channel):
                if module and row["resource_name"] != module:
                    continue
                events = sorted(f"{m}.{op}" for m, op in channel.events if m == row["resource_name"])
                rows.append(
                    {
                        **row,
                        "notify_url": channel.notify_url,
                        "events": events,
                        "token": channel.token,
                        "notify_on_related_action": False,
                        "return_affected_field_values": False,
                        "fields": None,
                    }
                )
        if not rows:
            raise EmptyResponse(204)
        per_page = req.int_param("per_page", 200, 200)
        page = req.int_param("page", 1)
        chunk = rows[(page - 1) * per_page : page * per_page]
        if not chunk:
            raise EmptyResponse(204)
        more = page * per_page < len(rows)
        return 200, {
            "watch": chunk,
            "info": {"per_page": per_page, "count": len(chunk), "page": page, "more_records": more},
        }

    # --- the control plane ---------------------------------------------------------------------------------
    def control(self, method: str, parts: list[str], body: dict[str, Any]) -> tuple[int, Any]:
        """``/__simulator/notifications[/faults]``: state and stats (GET), delivery faults (POST, DELETE)."""
        if method == "GET" and not parts:
            return 200, self.describe()
        if parts == ["faults"] and method == "POST":
            with self._lock:
                self.faults = DeliveryFaults(
                    duplicate_rate=float(body.get("duplicate_rate") or 0.0),
                    reorder_window=int(body.get("reorder_window") or 0),
                    drop_rate=float(body.get("drop_rate") or 0.0),
                    outage_until=time.monotonic() + float(body.get("outage_seconds") or 0.0),
                    rng=random.Random(int(body.get("seed", 1))),
                )
            return 200, self.describe()
        if parts == ["faults"] and method == "DELETE":
            with self._lock:
                self.faults = DeliveryFaults()
            return 200, self.describe()
        raise ApiError(
            404, "INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one"
        )

    def describe(self) -> dict[str, Any]:
        now = self.sim.clock.now()
        with self._lock:
            channels = [
                {
                    "channel_id": c.channel_id,
                    "org": c.org_id,
                    "events": sorted(f"{m}.{op}" for m, op in c.events),
                    "notify_url": c.notify_url,
                    "expires_in_seconds": round(c.expiry - now, 1),
                    "live": c.expiry > now,
                }
                for c in self.channels.values()
            ]
            stats = dict(self.stats)
            pending = self._outstanding
        return {"channels": channels, "stats": stats, "pending": pending, "faults": self.faults.describe()}


def _skipped() -> dict[str, Any]:
    return {
        "code": "NOT_APPROVED",
        "details": {},
        "message": "not applied: another entry was refused",
        "status": "error",
    }


def _events(raw: Any) -> set[tuple[str, str]]:
    """``["Leads.all", "Deals.edit"]`` → {(module, operation)}; only watchable record modules."""
    if not isinstance(raw, list) or not raw:
        raise _ItemError("INVALID_DATA", {"api_name": "events"})
    events: set[tuple[str, str]] = set()
    for item in raw:
        module, _, operation = str(item).rpartition(".")
        spec = module_spec(module)
        if (
            spec is None
            or spec.api_name != module
            or spec.generated_type not in ("default", "custom")
            or module in UNWATCHABLE
            or operation not in (*OPERATIONS, "all")
        ):
            raise _ItemError("INVALID_DATA", {"api_name": "events", "value": str(item)})
        events.update((module, op) for op in (OPERATIONS if operation == "all" else (operation,)))
    return events
