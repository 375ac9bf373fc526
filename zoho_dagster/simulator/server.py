"""The HTTP front: one ThreadingHTTPServer (HTTP/1.1 keep-alive) for every DC, routing, faults, limits."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from . import bulk, children_api, control, coql, coql_api, metadata_api, org_api, records_api
from .context import Request
from .errors import ApiError, EmptyResponse, authentication_failure, invalid_token, invalid_url
from .limits import CONCURRENCY_MESSAGE, too_many
from .regions import REGIONS, api_domain
from .schema import CHILD_MODULES_BY_NAME
from .state import Simulator

JSON_TYPE = "application/json;charset=UTF-8"
DCS = {r.lower(): r for r in REGIONS}


def encode_json(body: Any) -> bytes:
    """Compact UTF-8 JSON. orjson first: a page of 200 Leads encodes in a fifteenth of the standard library's
    time, and the simulator serves every page of a benchmark from one core; the standard library for what
    orjson refuses (a lone surrogate written through the control API, an integer past 64 bits)."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class Handler(BaseHTTPRequestHandler):
    """Each request: parse, decide a fault, then answer the accounts, API or control call."""

    protocol_version = "HTTP/1.1"
    server_version = "ZGS"
    sys_version = ""
    sim: Simulator  # set on the subclass built by `make_server`

    def log_message(self, format: str, *args: Any) -> None:  # quiet: benchmarks make many requests
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- plumbing ------------------------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = [p for p in url.path.split("/") if p]
        try:
            if parts and parts[0] == "__simulator":
                status, body = control.handle(self.sim, method, parts[1:], params, raw)
                self._send(status, body)
                return
            self._serve_zoho(method, parts, params, raw)
        except ApiError as err:
            self._send(err.status, err.body())
        except EmptyResponse as empty:
            self._send(empty.status, None)
        except Exception:  # an unexpected bug must still answer, like Zoho's INTERNAL_ERROR
            traceback.print_exc(file=sys.stderr)
            self._send(500, ApiError(500, "INTERNAL_ERROR", "Internal Server Error").body())

    def _serve_zoho(self, method: str, parts: list[str], params: dict[str, str], raw: bytes) -> None:
        sim = self.sim
        if len(parts) < 2 or parts[0] not in DCS or parts[1] not in ("accounts", "api"):
            raise invalid_url()
        region, side, rest = DCS[parts[0]], parts[1], parts[2:]
        sim.stats.request(f"{method} /{'/'.join(rest)}")
        kind, slow_ms = sim.faults.next()
        if kind == "reset":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if kind == "slow":
            time.sleep(slow_ms / 1000)
        if kind in ("429", "500", "503"):
            self._latency()
            err = {
                "429": too_many(CONCURRENCY_MESSAGE),
                "500": ApiError(500, "INTERNAL_ERROR", "Internal Server Error"),
                "503": ApiError(503, "INTERNAL_ERROR", "Service Unavailable"),
            }[kind]
            self._send(err.status, err.body())
            return
        if kind == "expire_page_token":
            sim.page_tokens.expire_all(sim.clock.now())
        truncate = kind == "truncate"
        if side == "accounts":
            self._latency()
            status, body = self._accounts(region, method, rest, params, raw)
            self._send(status, body, truncate=truncate)
            return
        self._api(region, method, rest, params, raw, truncate, kind == "expire_token")

    def _latency(self) -> None:
        if self.sim.config.latency_ms:
            time.sleep(self.sim.config.latency_ms / 1000)

    def _accounts(
        self, region: str, method: str, rest: list[str], params: dict[str, str], raw: bytes
    ) -> tuple[int, Any]:
        sim = self.sim
        form = dict(params)
        if raw and "json" not in (self.headers.get("Content-Type") or ""):
            form.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        if method == "POST" and rest == ["oauth", "v2", "token"]:
            result = sim.accounts.grant(
                region, form, sim.clock.now(), api_domain(sim.base_url, region), sim.soids()
            )
            return result.status, result.body
        if method == "POST" and rest == ["oauth", "v2", "token", "revoke"]:
            ok = sim.accounts.revoke(form.get("token", ""))
            return 200, {"status": "success"} if ok else {"error": "invalid_code"}
        raise invalid_url()

    def _api(
        self,
        region: str,
        method: str,
        rest: list[str],
        params: dict[str, str],
        raw: bytes,
        truncate: bool,
        expire_token: bool,
    ) -> None:
        sim = self.sim
        release = None
        slept = False
        try:
            header = self.headers.get("Authorization") or ""
            scheme, _, value = header.partition(" ")
            # UNCONFIRMED whether "Bearer" works (docs/zoho-crm-api.md §1.7): strictest, only Zoho-oauthtoken.
            if scheme != "Zoho-oauthtoken" or not value.strip():
                raise authentication_failure()
            token = sim.accounts.lookup(value.strip(), sim.clock.now())
            if token is None or token.client.region != region:
                raise invalid_token()
            if expire_token:
                sim.accounts.expire(token.token)
                raise invalid_token()
            org = sim.orgs[token.client.org_id]
            heavy = "sort_by" in params or "cvid" in params
            credits = 1
            if method == "POST" and rest == ["crm", "v6", "coql"]:
                # COQL is a sub-concurrency API charged by its LIMIT (docs/zoho-crm-api.md §3.8, §6.3).
                heavy, credits = True, coql.credits_for(_select_query(raw))
            release, remaining = org.limits.admit(sim.clock.now(), heavy, credits)
            sim.stats.credit(credits)
            self._latency()
            slept = True
            headers = {"X-API-CREDITS-REMAINING": str(remaining)} if remaining is not None else {}
            req = Request(
                sim, org, token, method, rest, params, {k.lower(): v for k, v in self.headers.items()}, raw
            )
            try:
                status, body = route(req)
            except ApiError as err:
                status, body = err.status, err.body()
            except EmptyResponse as empty:
                status, body = empty.status, None
            if isinstance(body, bytes):
                headers["Content-Disposition"] = f'attachment; filename="{rest[-2]}.zip"'
                self._send(status, body, headers, truncate, content_type="application/zip")
            else:
                self._send(status, body, headers, truncate)
        except ApiError as err:
            if not slept:
                self._latency()
            self._send(err.status, err.body(), truncate=truncate)
        finally:
            if release is not None:
                release()

    def _send(
        self,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        truncate: bool = False,
        content_type: str = JSON_TYPE,
    ) -> None:
        if body is None:
            payload = b""
        elif isinstance(body, bytes):
            payload = body
        else:
            payload = encode_json(body)
        self.send_response(status)
        if status not in (204, 304):
            self.send_header("Content-Type", content_type)
        declared = len(payload) + (max(64, len(payload) // 2) if truncate else 0)
        self.send_header("Content-Length", str(declared))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if truncate:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2] if truncate else payload)
        if truncate:
            self.wfile.flush()


def route(req: Request) -> tuple[int, Any]:
    """API paths after `/{dc}/api`."""
    p, m = req.path, req.method
    if p == ["crm", "v6", "actions", "watch"]:
        return req.sim.notifier.handle(req)
    if p == ["crm", "v6", "coql"]:
        if m != "POST":
            raise ApiError(400, "INVALID_REQUEST_METHOD", "The http request method type is not a valid one")
        return coql_api.handle(req)
    if len(p) >= 3 and p[:2] == ["crm", "v6"]:
        if m != "GET":
            raise ApiError(400, "INVALID_REQUEST_METHOD", "The http request method type is not a valid one")
        head = p[2]
        if head == "users" and len(p) == 3:
            return metadata_api.users(req)
        if head == "org" and len(p) == 3:
            return metadata_api.org(req)
        if head == "org" and p[3:] == ["currencies"]:
            return org_api.currencies(req)
        if head == "settings":
            if p[3:] == ["roles"]:
                return org_api.roles(req)
            if p[3:] == ["profiles"]:
                return org_api.profiles(req)
            if p[3:] == ["modules"]:
                return metadata_api.modules(req)
            if len(p) == 5 and p[3] == "modules":
                return metadata_api.modules(req, p[4])
            if p[3:] == ["fields"]:
                return metadata_api.fields(req)
            if p[3:] == ["tags"]:
                return metadata_api.tags(req)
            if p[3:] == ["layouts"]:
                return metadata_api.layouts(req)
            raise invalid_url()
        if len(p) == 3 and head in CHILD_MODULES_BY_NAME:
            return children_api.list_rows(req, head)
        if len(p) == 3:
            return records_api.list_records(req, head)
        if p[3:] == ["actions", "count"]:
            return records_api.count(req, head)
        if p[3:] == ["deleted"]:
            return records_api.deleted(req, head)
        if len(p) == 4:
            return records_api.get_record(req, head, p[3])
        if len(p) == 5:
            return children_api.related(req, head, p[3], p[4])
    if p[:4] == ["crm", "bulk", "v6", "read"]:
        if len(p) == 4 and m == "POST":
            return bulk.create(req)
        if len(p) == 5 and m == "GET":
            return bulk.status(req, p[4])
        if len(p) == 6 and p[5] == "result" and m == "GET":
            return bulk.result(req, p[4])
    raise invalid_url()


def _select_query(raw: bytes) -> str:
    """The COQL text of a request body, or "" (the handler then answers the malformed body)."""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return ""
    text = body.get("select_query") if isinstance(body, dict) else None
    return text if isinstance(text, str) else ""


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


def make_server(host: str, port: int, build: Any) -> tuple[Server, Simulator]:
    """Bind first (so `--port 0` knows its port), then build the simulator with the real base URL."""
    handler = type("BoundHandler", (Handler,), {})
    server = Server((host, port), handler)
    base_url = f"http://{host}:{server.server_address[1]}"
    sim: Simulator = build(base_url)
    handler.sim = sim  # type: ignore[attr-defined]
    return server, sim
