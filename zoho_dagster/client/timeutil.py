"""Zoho datetimes ↔ UTC-aware Python datetimes.

Zoho renders datetimes in the API user's time zone (``+05:30``, ``-07:00``, sometimes ``Z``); comparisons
across records and windows are only meaningful in one zone, so everything is normalised to UTC on the way in,
and ``If-Modified-Since`` is sent as ISO-8601 with an explicit offset (the form Zoho documents).
"""

from datetime import datetime, timezone


def parse_datetime(value: str) -> datetime:
    """A Zoho datetime string as a UTC-aware datetime (``Z`` and any ``±HH:MM`` offset accepted)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"Zoho datetime {value!r} carries no UTC offset")
    return parsed.astimezone(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is taken to be UTC already (the package's convention)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def header_datetime(value: datetime) -> str:
    """``value`` as an ``If-Modified-Since`` value: ISO-8601, whole seconds, explicit offset.

    Zoho's filter has one-second resolution and is inclusive, so sub-seconds are floored: flooring can only
    include more records (filtered again client-side), never fewer.
    """
    return as_utc(value).replace(microsecond=0).isoformat()
