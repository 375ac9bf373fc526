"""Zoho's error bodies, raised as exceptions so that handlers can bail out from any depth."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered in Zoho's standard shape ``{"code","details","message","status":"error"}``."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details if details is not None else {}

    def body(self) -> dict[str, Any]:
        """The JSON body, keys exactly as docs/zoho-crm-api.md §6.5 lists them."""
        return {"code": self.code, "details": self.details, "message": self.message, "status": "error"}


class EmptyResponse(Exception):
    """A 204 or 304: Zoho answers these with no body at all (docs/zoho-crm-api.md §2.4)."""

    def __init__(self, status: int) -> None:
        super().__init__(str(status))
        self.status = status


def authentication_failure() -> ApiError:
    return ApiError(401, "AUTHENTICATION_FAILURE", "Authentication failed")


def invalid_token() -> ApiError:
    return ApiError(401, "INVALID_TOKEN", "invalid oauth token")


def scope_mismatch() -> ApiError:
    return ApiError(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL")


def invalid_module() -> ApiError:
    # Real body captured in docs/zoho-crm-api.md §2.6 (lower-case "the").
    return ApiError(
        400, "INVALID_MODULE", "the module name given seems to be invalid", {"resource_path_index": 0}
    )


def invalid_url() -> ApiError:
    return ApiError(404, "INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one")


def invalid_method() -> ApiError:
    return ApiError(400, "INVALID_REQUEST_METHOD", "The http request method type is not a valid one")


def internal_error() -> ApiError:
    return ApiError(500, "INTERNAL_ERROR", "Internal Server Error")
