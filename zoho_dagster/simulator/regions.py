"""Zoho's data centres (docs/zoho-crm-api.md §1.9); each is served under a lower-case path prefix on one
port."""

from __future__ import annotations

REGIONS: tuple[str, ...] = ("US", "EU", "IN", "AU", "JP", "CN", "CA", "SA")

# The real hosts, kept for documentation and for the `location` of an org (docs/zoho-crm-api.md §1.9).
REAL_ACCOUNTS: dict[str, str] = {
    "US": "https://accounts.zoho.com",
    "EU": "https://accounts.zoho.eu",
    "IN": "https://accounts.zoho.in",
    "AU": "https://accounts.zoho.com.au",
    "JP": "https://accounts.zoho.jp",
    "CN": "https://accounts.zoho.com.cn",
    "CA": "https://accounts.zohocloud.ca",
    "SA": "https://accounts.zoho.sa",
}


def accounts_url(base_url: str, region: str) -> str:
    return f"{base_url}/{region.lower()}/accounts"


def api_domain(base_url: str, region: str) -> str:
    return f"{base_url}/{region.lower()}/api"
