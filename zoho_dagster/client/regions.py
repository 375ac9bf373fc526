"""Zoho's data centres: which accounts server and API domain serve an org of a given region.

Zoho keeps each org in one data centre; a client registered there is unknown to the others
(``invalid_client``). The hostnames are those of Zoho's multi-DC documentation (docs/zoho-crm-api.md §1.9);
CA uses ``zohocloud.ca`` (the SDK 6 ``accounts.zoho.ca`` is outdated). ``accounts_url`` / ``api_domain``
overrides point anywhere else (a proxy, the simulator, a sandbox).
"""

from dataclasses import dataclass

from zoho_dagster.client.errors import ZohoConfigError
from zoho_dagster.client.redact import quoted, redact


@dataclass(frozen=True)
class Region:
    """One data centre: its code and the two hosts a client talks to."""

    code: str
    accounts_url: str
    api_domain: str


REGIONS: dict[str, Region] = {
    region.code: region
    for region in (
        Region("US", "https://accounts.zoho.com", "https://www.zohoapis.com"),
        Region("EU", "https://accounts.zoho.eu", "https://www.zohoapis.eu"),
        Region("IN", "https://accounts.zoho.in", "https://www.zohoapis.in"),
        Region("AU", "https://accounts.zoho.com.au", "https://www.zohoapis.com.au"),
        Region("JP", "https://accounts.zoho.jp", "https://www.zohoapis.jp"),
        Region("CN", "https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"),
        Region("CA", "https://accounts.zohocloud.ca", "https://www.zohoapis.ca"),
        Region("SA", "https://accounts.zoho.sa", "https://www.zohoapis.sa"),
    )
}

DEFAULT_REGION = "US"


def region(code: str | None) -> Region:
    """The data centre for ``code`` (case-insensitive; empty means US), or a config error listing the codes.
    """
    key = (code or DEFAULT_REGION).strip().upper()
    try:
        return REGIONS[key]
    except KeyError:
        raise ZohoConfigError(
            redact(
                f"ZOHO_CRM_REGION is {quoted(str(code))}, which is not a Zoho data centre; set it to one of "
                f"{', '.join(REGIONS)} (or set ZOHO_CRM_ACCOUNTS_URL and ZOHO_CRM_API_DOMAIN explicitly)."
            )
        ) from None


def other_regions(code: str) -> list[str]:
    """Every region code except ``code``: the candidates to suggest when a client is unknown in ``code``."""
    return [other for other in REGIONS if other != code.upper()]


def hosts(code: str | None, accounts_url: str | None = None, api_domain: str | None = None) -> Region:
    """The hosts to use: the region's, each replaced by its explicit override when one is given."""
    base = region(code)
    return Region(
        base.code,
        (accounts_url or base.accounts_url).rstrip("/"),
        (api_domain or base.api_domain).rstrip("/"),
    )
