"""Deterministic, lazy data: every base record is a pure function of (seed, org, module, index).

Nothing is materialised per module: ids, Created_Time and Modified_Time are monotonic in the index, so a page
can be located by bisection and rendered on demand; the org store overlays the few changed records.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from .currency import ACTIVE_CODES, BY_CODE, FOREIGN_SHARE, HOME
from .schema import LAYOUT_NAMES, FieldSpec, ModuleSpec, layout_id

DAY = 86_400
MODIFIED_SPAN = 400 * DAY  # Modified_Time spread over the last ~400 days (one-year anchor misses a few).
CREATED_LEAD = 30 * DAY  # Created_Time precedes Modified_Time by a month for base records.
ID_STEP = 4

FIRST = (
    "Christopher",
    "Patricia",
    "Jean",
    "Aarav",
    "Yuki",
    "Fatima",
    "Liam",
    "Sofia",
    "Mateo",
    "Chen",
    "Olivia",
    "Noah",
    "Priya",
    "Hiroshi",
    "Amara",
    "Lucas",
    "Emma",
    "Omar",
    "Isabella",
    "Kenji",
    "Ananya",
    "Elena",
    "David",
    "Zara",
    "Jonas",
    "Mei",
    "Carlos",
    "Ingrid",
    "Ravi",
    "Chloe",
)
LAST = (
    "Maclead",
    "Boyle",
    "Lafleur",
    "Sharma",
    "Tanaka",
    "Al-Sayed",
    "Murphy",
    "Rossi",
    "Garcia",
    "Wang",
    "Smith",
    "Johnson",
    "Iyer",
    "Sato",
    "Okafor",
    "Silva",
    "Müller",
    "Haddad",
    "Martin",
    "Kobayashi",
    "Nair",
    "Petrova",
    "Brown",
    "Khan",
    "Schmidt",
    "Li",
    "Lopez",
    "Larsen",
    "Patel",
    "Dubois",
)
COMPANY_A = (
    "Rangoni",
    "Chemel",
    "Feltz",
    "Commercial",
    "Truhlar",
    "King",
    "Morlong",
    "Dal Tile",
    "Printing",
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Tyrell",
    "Soylent",
)
COMPANY_B = (
    "Printing Service",
    "Associates",
    "Press",
    "& Sons",
    "Industries",
    "Systems",
    "Logistics",
    "Labs",
    "Holdings",
    "Partners",
    "Group",
    "Technologies",
    "Foods",
    "Motors",
    "Analytics",
)
CITIES = (
    ("Middle Island", "NY", "United States", "11953"),
    ("Bengaluru", "KA", "India", "560001"),
    ("Tokyo", "Tokyo", "Japan", "100-0001"),
    ("Berlin", "BE", "Germany", "10115"),
    ("Sydney", "NSW", "Australia", "2000"),
    ("Toronto", "ON", "Canada", "M5H 2N2"),
    ("Riyadh", "Riyadh", "Saudi Arabia", "11564"),
    ("London", "LND", "United Kingdom", "EC1A 1BB"),
    ("São Paulo", "SP", "Brazil", "01000-000"),
    ("Chennai", "TN", "India", "600001"),
)
WORDS = (
    "quarterly",
    "review",
    "renewal",
    "pricing",
    "demo",
    "follow",
    "up",
    "onboarding",
    "proposal",
    "integration",
    "migration",
    "budget",
    "contract",
    "escalation",
    "training",
    "kickoff",
    "invoice",
)
TITLES = (
    "VP Accounting",
    "CEO",
    "CTO",
    "Sales Manager",
    "Procurement Lead",
    "Engineer",
    "Director of IT",
    "Marketing Head",
    "Operations Manager",
    "Analyst",
)

# Fixed-offset zones (no DST) so offsets are stable: +05:30, -08:00, +00:00, +09:00, +03:00, -03:00.
TIME_ZONES: tuple[tuple[str, int], ...] = (
    ("Asia/Kolkata", 330),
    ("Pacific/Pitcairn", -480),
    ("Africa/Abidjan", 0),
    ("Asia/Tokyo", 540),
    ("Asia/Riyadh", 180),
    ("America/Sao_Paulo", -180),
)


def stable_int(*parts: object) -> int:
    """A process-independent 64-bit hash (Python's str hash is salted per process)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass
class User:
    """A CRM user; `offset` (minutes) renders the datetimes of the records the user owns."""

    id: str
    first_name: str
    last_name: str
    email: str
    time_zone: str
    offset: int
    admin: bool
    created_time: float

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def ref(self) -> dict[str, str]:
        return {"name": self.full_name, "id": self.id, "email": self.email}


def make_users(seed: int, org_id: str, prefix: int, count: int, now0: float) -> list[User]:
    """The org's users: the first is the admin that the listed client acts as; time zones rotate."""
    rng = random.Random(stable_int(seed, org_id, "users"))
    users = []
    for i in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        tz, offset = TIME_ZONES[i % len(TIME_ZONES)]
        users.append(
            User(
                id=str(prefix * 10**12 + 99 * 10**10 + 1001 + i * ID_STEP),
                first_name=first,
                last_name=last,
                email=f"{first.lower()}.{last.lower().replace('ü', 'u')}{i}@example.com",
                time_zone=tz,
                offset=offset,
                admin=i == 0 or i % 5 == 4,
                created_time=now0 - 900 * DAY + i * DAY,
            )
        )
    return users


class Generator:
    """Produces the internal form of base records: datetimes as epoch seconds, users as user indexes."""

    def __init__(
        self, seed: int, org_id: str, prefix: int, sizes: dict[str, int], users: list[User], now0: float
    ) -> None:
        self.seed = seed
        self.org_id = org_id
        self.prefix = prefix
        self.sizes = sizes
        self.users = users
        self.now0 = float(int(now0))

    # --- ids and times: monotonic in index ---------------------------------------------------------------
    def record_id(self, spec: ModuleSpec, index: int) -> int:
        return self.prefix * 10**12 + spec.number * 10**10 + 1001 + index * ID_STEP

    def index_of(self, spec: ModuleSpec, record_id: int) -> int | None:
        offset = record_id - self.prefix * 10**12 - spec.number * 10**10 - 1001
        if offset < 0 or offset % ID_STEP or offset >= 10**10:
            return None
        return offset // ID_STEP

    def modified(self, spec: ModuleSpec, index: int) -> int:
        n = max(self.sizes[spec.api_name], 1)
        return int(self.now0 - MODIFIED_SPAN + (index * (MODIFIED_SPAN - 60)) // n)

    def created(self, spec: ModuleSpec, index: int) -> int:
        return self.modified(spec, index) - CREATED_LEAD

    def first_index_modified_since(self, spec: ModuleSpec, since: float) -> int:
        """Smallest base index whose Modified_Time >= since (bisection on the monotonic times)."""
        lo, hi = 0, self.sizes[spec.api_name]
        while lo < hi:
            mid = (lo + hi) // 2
            if self.modified(spec, mid) >= since:
                hi = mid
            else:
                lo = mid + 1
        return lo

    # --- names used by lookups -----------------------------------------------------------------------------
    def display_name(self, spec: ModuleSpec, index: int) -> str:
        """Base record ``index``'s name field, the ``name`` of lookups to it: generated exactly as ``record``
        generates it (same rng, replayed through the fields before it), so a lookup names its target as the
        target names itself (``Contact_Name`` is the contact's ``Full_Name``, never empty) and a Bulk Read's
        ``Contact_Name.Full_Name`` column agrees with the records API (docs/zoho-crm-api.md §4.1)."""
        rng = random.Random(stable_int(self.seed, self.org_id, spec.api_name, index))
        rec: dict[str, Any] = {}
        for f in spec.fields:
            rec[f.api_name] = self._value(spec, f, rng, index, rec)
            if f.api_name == spec.name_field:
                break
        return str(rec[spec.name_field])

    def partial(self, spec: ModuleSpec, index: int, last: str) -> dict[str, Any]:
        """Base record ``index``'s fields up to and including ``last``, generated exactly as ``record`` does
        (for rollups, which need two fields of every record and not the rest)."""
        rng = random.Random(stable_int(self.seed, self.org_id, spec.api_name, index))
        rec: dict[str, Any] = {}
        for f in spec.fields:
            rec[f.api_name] = self._value(spec, f, rng, index, rec)
            if f.api_name == last:
                break
        return rec

    def lookup_ref(self, module: ModuleSpec, index: int) -> dict[str, str]:
        return {"name": self.display_name(module, index), "id": str(self.record_id(module, index))}

    # --- records -------------------------------------------------------------------------------------------
    def record(self, spec: ModuleSpec, index: int) -> dict[str, Any]:
        """Every field of base record `index` in internal form (values generated in field order)."""
        rng = random.Random(stable_int(self.seed, self.org_id, spec.api_name, index))
        rec: dict[str, Any] = {}
        for f in spec.fields:
            rec[f.api_name] = self._value(spec, f, rng, index, rec)
        rec["id"] = str(self.record_id(spec, index))
        rec.update(system_keys(spec))
        if rec.get("Currency") in BY_CODE:
            rec["$currency_symbol"] = BY_CODE[rec["Currency"]].symbol
        return rec

    def _value(
        self, spec: ModuleSpec, f: FieldSpec, rng: random.Random, index: int, rec: dict[str, Any]
    ) -> Any:
        if f.null_rate and rng.random() < f.null_rate:
            return None
        gen = f.gen or f.data_type
        if gen in INDEPENDENT:
            # Fields added after the seeded ones draw from their own hash, never from ``rng``, so that every
            # value generated before them stays what it was (schema._with_extras).
            return self._independent(spec, gen, index, rec)
        if gen == "owner":
            # Owner decides the rendering offset; Created_By / Modified_By follow the owner mostly.
            if f.api_name == "Owner":
                return stable_int(self.seed, spec.api_name, index, "owner") % len(self.users)
            return rec.get("Owner", 0) if rng.random() < 0.7 else rng.randrange(len(self.users))
        if gen == "modified":
            return self.modified(spec, index)
        if gen == "created":
            return self.created(spec, index)
        if gen == "activity":
            return self.modified(spec, index) - rng.randrange(0, 5 * DAY)
        if gen == "null":
            return None
        if gen == "false":
            return False
        if gen == "available":
            return "Available"
        if gen == "tag":
            return [
                {"name": name, "id": str(self.prefix * 10**12 + 98 * 10**10 + 1001 + k * ID_STEP)}
                for k, name in enumerate(("Hot", "Renewal", "VIP", "Expansion"))
                if rng.random() < 0.15
            ]
        if gen == "first_name":
            return rng.choice(FIRST)
        if gen == "last_name":
            return rng.choice(LAST)
        if gen == "full_name":
            return f"{rec.get('First_Name') or ''} {rec.get('Last_Name') or ''}".strip()
        if gen in ("company", "campaign", "product", "vehicle", "deal", "price_book", "service"):
            base = f"{rng.choice(COMPANY_A)} {rng.choice(COMPANY_B)}"
            suffix = {
                "company": "",
                "campaign": " Campaign",
                "product": " Suite",
                "vehicle": " Van",
                "deal": " Deal",
                "price_book": " Price Book",
                "service": " Service",
            }[gen]
            return f"{base}{suffix} {index}"
        if gen in ("email", "email2"):
            first = (rec.get("First_Name") or rng.choice(FIRST)).lower()
            last = (rec.get("Last_Name") or rng.choice(LAST)).lower().replace("ü", "u").replace("-", "")
            domain = rng.choice(("gmail.com", "example.org", "mail.example.com", "corp.example.net"))
            return f"{first}.{last}{index}{'.alt' if gen == 'email2' else ''}@{domain}"
        if gen == "phone":
            return f"+1-{rng.randrange(200, 999)}-{rng.randrange(100, 999)}-{rng.randrange(1000, 9999)}"
        if gen == "website":
            host = rng.choice(COMPANY_A).lower().replace(" ", "")
            return f"https://www.{host}{rng.randrange(100)}.example.com"
        if gen == "title":
            return rng.choice(TITLES)
        if gen in ("street", "city", "state", "zip", "country"):
            city = CITIES[stable_int(self.seed, spec.api_name, index, "city") % len(CITIES)]
            if gen == "street":
                return f"{rng.randrange(1, 99999)} {rng.choice(LAST)} St"
            return city[("city", "state", "country", "zip").index(gen)]
        if gen == "handle":
            return f"{rng.choice(FIRST).lower()}_{rng.randrange(10000)}"
        if gen == "hash":
            return hashlib.sha1(f"{index}{rng.random()}".encode()).hexdigest() * 2
        if gen == "sentence":
            return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 9))).capitalize()
        if gen == "word":
            return rng.choice(WORDS).capitalize()
        if gen == "code":
            return f"{rng.choice('ABCDEFGH')}{rng.choice('XYZW')}-{rng.randrange(10**6):06d}"
        if gen == "autonumber":
            return f"LN-{index + 1:07d}"
        if gen == "window":
            return rng.choice(("Mornings IST", "Afternoons PST", "Any weekday", "Fridays only"))
        return self._typed(f, rng, index)

    def _independent(self, spec: ModuleSpec, gen: str, index: int, rec: dict[str, Any]) -> Any:
        draw = stable_int(self.seed, self.org_id, spec.api_name, index, gen)
        if gen == "layout":
            k = 1 if draw % 5 == 0 else 0  # about one record in five in the second layout
            return {"name": LAYOUT_NAMES[k], "id": layout_id(self.prefix, spec, k)}
        if gen == "currency_code":
            if (draw % 10_000) / 10_000 >= FOREIGN_SHARE:
                return HOME.iso_code
            foreign = [code for code in ACTIVE_CODES if code != HOME.iso_code]
            return foreign[(draw // 10_000) % len(foreign)]
        if gen == "exchange_rate":
            currency = BY_CODE.get(str(rec.get("Currency")))
            return float((currency or HOME).exchange_rate)
        if gen == "rich_html":
            return rich_html(draw)
        raise ValueError(gen)

    def _typed(self, f: FieldSpec, rng: random.Random, index: int) -> Any:
        dt = f.data_type
        if dt in ("picklist",):
            return rng.choice(f.picklist)
        if dt == "multiselectpicklist":
            return sorted(
                rng.sample(f.picklist, rng.randrange(0, min(3, len(f.picklist)) + 1)), key=f.picklist.index
            )
        if dt == "integer":
            return rng.randrange(0, 5000)
        if dt == "bigint":
            return str(rng.randrange(10**12, 10**15))
        if dt == "currency":
            return float(rng.randrange(1000, 5_000_000))
        if dt in ("double", "decimal"):
            return round(rng.random() * 1000, 2)
        if dt == "percent":
            return round(rng.random() * 100, 1)
        if dt == "boolean":
            return rng.random() < 0.4
        if dt == "date":
            return _date(self.now0 - rng.randrange(0, 500) * DAY)
        if dt == "datetime":
            return int(self.now0 - rng.randrange(0, 400 * DAY))
        if dt == "lookup":
            target = self.module(f.lookup)
            size = self.sizes[target.api_name]
            if size == 0:
                return None
            return self.lookup_ref(target, rng.randrange(size))
        if dt == "userlookup":
            return rng.randrange(len(self.users))
        return " ".join(rng.choice(WORDS) for _ in range(2))

    @staticmethod
    def module(name: str) -> ModuleSpec:
        from .schema import MODULES_BY_NAME

        return MODULES_BY_NAME[name]


INDEPENDENT = frozenset({"layout", "currency_code", "exchange_rate", "rich_html"})
"""Value generators that do not draw from the record's rng (fields appended after the seeded ones)."""


def rich_html(draw: int) -> str | None:
    """A rich-text value (HTML): null for one record in four, else a few short paragraphs, or for one value in
    five 6 to 12 of them, longer than the 500 characters a list answer carries (docs/zoho-crm-api.md §2.5):
    each such value costs a sync a single-record read, so most stay short, as notes mostly are."""
    rng = random.Random(draw)
    if rng.random() < 0.25:
        return None
    paragraphs = []
    count = rng.randrange(6, 13) if rng.random() < 0.2 else rng.randrange(1, 4)
    for _ in range(count):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(6, 14))).capitalize()
        emphasis = rng.choice(WORDS)
        paragraphs.append(f"<p>{words} <b>{emphasis}</b> &amp; {rng.choice(WORDS)}.</p>")
    return "<div>" + "".join(paragraphs) + "</div>"


def _date(epoch: float) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc).date().isoformat()


def system_keys(spec: ModuleSpec) -> dict[str, Any]:
    """The `$`-prefixed read-only attributes Zoho adds to records (docs/zoho-crm-api.md §5)."""
    keys: dict[str, Any] = {
        "$currency_symbol": "$",
        "$field_states": None,
        "$state": "save",
        "$process_flow": False,
        "$approved": True,
        "$approval": {"delegate": False, "approve": False, "reject": False, "resubmit": False},
        "$editable": True,
        "$review_process": {"approve": False, "reject": False, "resubmit": False},
        "$review": None,
        "$in_merge": False,
        "$approval_state": "approved",
        "$followers": None,
    }
    if spec.api_name == "Leads":
        keys["$converted"] = False
        keys["$converted_detail"] = {}
    return keys
