"""What an authenticated API handler sees: the org, the caller, the query and the headers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .accounts import AccessToken, has_scope
from .clock import parse_time, render_time
from .datagen import User
from .errors import ApiError, scope_mismatch
from .schema import ModuleSpec
from .state import Org, Simulator


@dataclass
class Request:
    sim: Simulator
    org: Org
    token: AccessToken
    method: str
    path: list[str]
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def now(self) -> float:
        return self.sim.clock.now()

    @property
    def user(self) -> User:
        return self.org.users[self.token.client.user_index]

    @property
    def admin(self) -> bool:
        return self.token.client.admin

    def render_now(self, epoch: float) -> str:
        """Times not tied to a record owner render in the caller's time zone."""
        return render_time(epoch, self.user.offset)

    def require(self, *alternatives: str) -> None:
        if not has_scope(self.token.scopes, *alternatives):
            raise scope_mismatch()

    def require_module_read(self, spec: ModuleSpec) -> None:
        name = spec.scope_name
        self.require(
            "ZohoCRM.modules.ALL",
            "ZohoCRM.modules.READ",
            f"ZohoCRM.modules.{name}.ALL",
            f"ZohoCRM.modules.{name}.READ",
        )

    def int_param(self, name: str, default: int, maximum: int | None = None) -> int:
        raw = self.params.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, "INVALID_DATA", "invalid data", {"param_name": name}) from None
        if value < 1:
            raise ApiError(400, "INVALID_DATA", "invalid data", {"param_name": name})
        if maximum is not None and value > maximum:
            # UNCONFIRMED (docs/zoho-crm-api.md §2.1): per_page > 200 may be clamped by Zoho; strictest is an
            # error.
            raise ApiError(
                400, "INVALID_DATA", "invalid data", {"param_name": name, "maximum_length": maximum}
            )
        return value

    def modified_since(self) -> float | None:
        raw = self.headers.get("if-modified-since")
        if raw is None:
            return None
        parsed = parse_time(raw)
        if parsed is None:
            raise ApiError(400, "INVALID_DATA", "invalid data", {"header_name": "If-Modified-Since"})
        return parsed


def json_response(body: Any, status: int = 200) -> tuple[int, Any]:
    return status, body
