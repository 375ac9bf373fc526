"""The whole simulated world: orgs in their data centres, accounts, limits, faults, tokens and stats.

Everything is rebuilt from the seed on `reset()`; the connection credentials are derived from the seed too,
so a reset never invalidates what clients were given.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .accounts import ALL_SCOPES, Accounts, Client
from .clock import Clock
from .datagen import Generator, User, make_users, stable_int
from .faults import Faults
from .limits import OrgLimits
from .notifications import Notifier
from .paging import PageTokens
from .regions import REGIONS, accounts_url, api_domain
from .schema import MODULES
from .store import OrgStore
from .visibility import Readings


@dataclass
class Config:
    seed: int = 1
    records: int = 2500
    latency_ms: int = 0
    token_lifetime: int = 3600
    page_token_cap: int = 100_000
    small_records: int = 30


@dataclass
class Org:
    region: str
    org_id: str
    store: OrgStore
    limits: OrgLimits
    client: Client
    refresh_token: str
    bulk_jobs: dict[str, Any] = field(default_factory=dict)

    @property
    def mc_status(self) -> bool:
        """Multi-currency on (docs/zoho-crm-api.md §3.10); the control plane can switch it off. Held by the
        store, whose records carry `Currency` and `Exchange_Rate` only while it is on."""
        return self.store.mc_status

    @mc_status.setter
    def mc_status(self, value: bool) -> None:
        self.store.mc_status = bool(value)

    @property
    def soid(self) -> str:
        return f"ZohoCRM.{self.org_id}"

    @property
    def users(self) -> list[User]:
        return self.store.users


class Stats:
    """Requests and credits by endpoint (`"GET /crm/v6/Leads"`), token grants."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.credits = 0
        self.by_endpoint: Counter[str] = Counter()
        self.grants_base = 0

    def request(self, endpoint: str) -> None:
        with self._lock:
            self.requests += 1
            self.by_endpoint[endpoint] += 1

    def credit(self, n: int = 1) -> None:
        with self._lock:
            self.credits += n

    def snapshot(self, grants: int) -> dict[str, Any]:
        with self._lock:
            return {
                "total_requests": self.requests,
                "total_credits": self.credits,
                "by_endpoint": dict(self.by_endpoint),
                "token_grants": grants - self.grants_base,
            }

    def reset(self, grants: int) -> None:
        with self._lock:
            self.requests = 0
            self.credits = 0
            self.by_endpoint.clear()
            self.grants_base = grants


class Simulator:
    """Holds every org; `base_url` is known once the server has bound its port."""

    def __init__(self, config: Config, base_url: str) -> None:
        self.config = config
        self.base_url = base_url
        self.clock = Clock()
        self.faults = Faults()
        self.page_tokens = PageTokens()
        self.stats = Stats()
        self.readings = Readings()
        """Strict or permissive readings of UNCONFIRMED behaviour (visibility.Readings); strict on reset."""
        self.lock = threading.RLock()
        self.now0 = float(int(self.clock.now()))
        self.accounts = Accounts(config.token_lifetime)
        self.orgs: dict[str, Org] = {}
        self.notifier = Notifier(self)
        """Notification channels and their deliveries (docs/zoho-crm-api.md §3.12)."""
        self.build()

    def build(self) -> None:
        """(Re)create orgs and clients from the seed."""
        cfg = self.config
        self.accounts = Accounts(cfg.token_lifetime)
        self.orgs = {}
        for n, region in enumerate(REGIONS):
            primary = n == 0
            org_id = str(600_000_000 + stable_int(cfg.seed, region, "org") % 100_000_000)
            prefix = 4_150_868 if primary else 1_000_000 + stable_int(cfg.seed, region, "prefix") % 8_999_999
            records = cfg.records if primary else cfg.small_records
            sizes = {m.api_name: max(m.minimum, int(records * m.scale)) for m in MODULES}
            users = make_users(cfg.seed, org_id, prefix, 12 if primary else 3, self.now0)
            gen = Generator(cfg.seed, org_id, prefix, sizes, users, self.now0)
            store = OrgStore(gen, self.clock.now)
            store.listener = self.notifier.listener(org_id)

            def h(tag: str, region: str = region) -> int:
                return stable_int(cfg.seed, region, tag)

            client, refresh = self.accounts.add_client(
                region,
                org_id,
                0,
                True,
                ALL_SCOPES,
                client_id=f"1000.{h('cid'):016X}{h('c'):X}",
                secret=f"{h('sec'):x}{h('s2'):x}",
                refresh_token=f"1000.{h('r'):x}.{h('q'):x}",
            )
            self.orgs[org_id] = Org(region, org_id, store, OrgLimits(len(users)), client, refresh)

    def reset(self) -> None:
        with self.lock:
            self.clock.reset()
            self.readings = Readings()
            self.faults.clear()
            self.page_tokens.clear()
            self.notifier.reset()
            self.build()
            self.stats.reset(self.accounts.grant_count)

    @property
    def primary(self) -> Org:
        return next(iter(self.orgs.values()))

    def org(self, org_id: str | None) -> Org:
        if not org_id:
            return self.primary
        found = self.orgs.get(org_id)
        if found is None:
            from .errors import ApiError

            raise ApiError(404, "INVALID_DATA", "unknown org", {"org": org_id})
        return found

    def soids(self) -> dict[str, str]:
        return {org.soid: org.org_id for org in self.orgs.values()}

    def connection(self) -> dict[str, Any]:
        """The connection JSON of contracts.md §1 (plus `base_url`)."""
        orgs = [
            {
                "region": org.region,
                "accounts_url": accounts_url(self.base_url, org.region),
                "api_domain": api_domain(self.base_url, org.region),
                "client_id": org.client.client_id,
                "client_secret": org.client.client_secret,
                "soid": org.soid,
                "refresh_token": org.refresh_token,
                "org_id": org.org_id,
            }
            for org in self.orgs.values()
        ]
        return {"base_url": self.base_url, "orgs": orgs}
