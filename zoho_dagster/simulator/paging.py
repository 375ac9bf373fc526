"""Server-side page tokens: bound to the request's parameters, the If-Modified-Since header and the user."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

from .errors import ApiError

TOKEN_LIFETIME = 86_400.0


@dataclass
class PageToken:
    token: str
    org_id: str
    user_id: str
    binding: tuple[tuple[str, str], ...]
    after: tuple[int, int]
    served: int
    expires_at: float


class PageTokens:
    """Issued `next_page_token`s; they expire after 24 h or when a fault says so."""

    def __init__(self) -> None:
        self._tokens: dict[str, PageToken] = {}
        self._lock = threading.Lock()

    def issue(
        self,
        org_id: str,
        user_id: str,
        binding: tuple[tuple[str, str], ...],
        after: tuple[int, int],
        served: int,
        now: float,
    ) -> PageToken:
        tok = PageToken(secrets.token_hex(16), org_id, user_id, binding, after, served, now + TOKEN_LIFETIME)
        with self._lock:
            if len(self._tokens) > 200_000:  # bound memory in long benchmarks: drop the expired ones
                self._tokens = {k: v for k, v in self._tokens.items() if v.expires_at > now}
            self._tokens[tok.token] = tok
        return tok

    def redeem(
        self, token: str, org_id: str, user_id: str, binding: tuple[tuple[str, str], ...], now: float
    ) -> PageToken:
        """Validate a presented token in the order Zoho's errors suggest (docs/zoho-crm-api.md §2.2)."""
        tok = self._tokens.get(token)
        if tok is None or tok.org_id != org_id or tok.user_id != user_id:
            raise ApiError(
                400, "INVALID_DATA", "The token given seems to be invalid", {"param_name": "page_token"}
            )
        if tok.binding != binding:
            raise ApiError(
                400,
                "TOKEN_BOUND_DATA_MISMATCH",
                "The page_token given seems to be invalid or input param is added, altered, or deleted",
                {"param_name": "page_token"},
            )
        if tok.expires_at <= now:
            # UNCONFIRMED details (docs/zoho-crm-api.md §2.2): {"param_name": "page_token"}.
            raise ApiError(400, "EXPIRED_VALUE", "The token given has expired", {"param_name": "page_token"})
        return tok

    def expire_all(self, now: float) -> None:
        with self._lock:
            for tok in self._tokens.values():
                tok.expires_at = min(tok.expires_at, now)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()
