"""The receiver: an HTTP endpoint Zoho posts change notifications to, which stores them and answers fast.

``zoho-dagster notifications serve`` runs it (Starlette on uvicorn: a maintained ASGI server instead of a
hand-written one). For each ``POST`` (any path, so a reverse proxy may mount it anywhere):

1. the body is read up to :data:`MAX_BODY_BYTES` (more: 400, whatever ``Content-Length`` claims);
2. it must be a JSON object, else 400;
3. its ``token`` must be the one its ``channel_id`` derives to (:mod:`.config`), compared in constant time,
   else 403, before anything else of the body is looked at;
4. ``module``, ``operation`` (``insert``, ``update`` or ``delete``), ``ids`` (record ids) and
   ``server_time`` (epoch milliseconds) must be well formed, else 400;
5. the notification is inserted and committed in Postgres (:mod:`.store`), then 200 is answered (503 when
   the database cannot take it: nothing was acknowledged).

Nothing is stored for a refused body. Whether Zoho retries a notification the receiver failed to take is not
documented (docs/zoho-crm-api.md §3.12), so a notification is acknowledged only once it is durable, and the
schedule's window reads repair what never arrives. ``GET /healthz`` answers 200 when Postgres answers (503
otherwise), for the reverse proxy's or the orchestrator's health check.

The body's ``affected_fields`` and ``query_params`` are not kept: the sync reads every field of a changed
record again, whatever changed.
"""

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timezone
from typing import Any

import orjson
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from zoho_dagster.notifications import store
from zoho_dagster.notifications.config import NotifySettings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
"""Largest body accepted. A notification names at most a few hundred ids (about 20 bytes each); a quarter of
a megabyte leaves room for ``affected_fields`` and refuses anything that is not a notification."""
MAX_IDS = 10_000
MAX_ID_LENGTH = 40


class BadNotification(ValueError):
    """A body that is not a notification (answered 400)."""


class BodyTooLarge(BadNotification):
    """A body over :data:`MAX_BODY_BYTES`."""


async def _read_body(request: Request) -> bytes:
    """The body, refused as soon as it grows past the limit (a lying or absent Content-Length is no help)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge("body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge("body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
        raise BadNotification(f"{key} is missing or not a string")
    return str(value)


def parse(body: Mapping[str, Any], channel_id: str) -> store.Notification:
    """The notification in a body whose token was already checked (steps 4 of the module docstring)."""
    module = _text(body, "module")
    operation = _text(body, "operation")
    if operation not in store.OPERATIONS:
        raise BadNotification(f"operation {operation!r} is not one of {', '.join(store.OPERATIONS)}")
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or len(ids) > MAX_IDS:
        raise BadNotification("ids must be a non-empty list")
    texts = []
    for value in ids:
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if not text.isdigit() or len(text) > MAX_ID_LENGTH:
            raise BadNotification("ids must be record ids")
        texts.append(text)
    server_time = body.get("server_time")
    if isinstance(server_time, bool) or not isinstance(server_time, (int, float)) or server_time <= 0:
        raise BadNotification("server_time must be epoch milliseconds")
    try:
        moment = datetime.fromtimestamp(server_time / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise BadNotification("server_time is out of range") from None
    return store.Notification(channel_id, module, operation, tuple(texts), moment)


def make_app(engine: sa.Engine, settings: NotifySettings) -> Starlette:
    """The ASGI app storing notifications into ``engine``'s database (tables created at start-up)."""

    async def notify(request: Request) -> Response:
        try:
            body = orjson.loads(await _read_body(request))
        except BodyTooLarge:
            return JSONResponse({"status": "error", "message": "body too large"}, status_code=400)
        except orjson.JSONDecodeError:
            return JSONResponse({"status": "error", "message": "body is not JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"status": "error", "message": "body is not a JSON object"}, status_code=400)
        channel_id, token = body.get("channel_id"), body.get("token")
        if (
            not isinstance(channel_id, (str, int))
            or isinstance(channel_id, bool)
            or not isinstance(token, str)
            or not settings.token_matches(str(channel_id), token)
        ):
            log.warning("Refused a notification with a wrong token (channel %r).", str(channel_id)[:40])
            return JSONResponse({"status": "error", "message": "forbidden"}, status_code=403)
        try:
            notification = parse(body, str(channel_id))
        except BadNotification as error:
            return JSONResponse({"status": "error", "message": str(error)}, status_code=400)
        try:
            row = await run_in_threadpool(_store, notification)
        except Exception as error:  # the database is unreachable: not taken, so not acknowledged
            log.error("Could not store a notification of channel %s: %s", notification.channel_id, error)
            return JSONResponse({"status": "error", "message": "storage unavailable"}, status_code=503)
        return JSONResponse({"status": "success", "id": row})

    async def healthz(_: Request) -> Response:
        def ping() -> None:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))

        try:
            await run_in_threadpool(ping)
        except Exception as error:  # any database failure: the receiver cannot take notifications
            log.warning("Health check failed: %s", error)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    tables = {"ready": False}

    def _store(notification: store.Notification) -> int:
        if not tables["ready"]:
            store.ensure_tables(engine)
            tables["ready"] = True
        return store.insert(engine, notification)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:  # ready at once when the database is; else at the first notification (503 until then)
            await run_in_threadpool(_store_tables)
        except Exception as error:
            log.warning("The notification tables could not be prepared yet: %s", error)
        yield

    def _store_tables() -> None:
        store.ensure_tables(engine)
        tables["ready"] = True

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/{path:path}", notify, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def serve(engine: sa.Engine, settings: NotifySettings, host: str, port: int) -> None:
    """Run the receiver until interrupted (uvicorn; ``--proxy-headers`` for the client's address)."""
    import uvicorn

    uvicorn.run(
        make_app(engine, settings),
        host=host,
        port=port,
        proxy_headers=True,
        access_log=False,
        log_level="info",
        timeout_keep_alive=30,
    )
