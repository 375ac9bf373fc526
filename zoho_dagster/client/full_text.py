"""Rich text past the 500 characters a list answer carries, read whole from the record itself.

Zoho's list API (pages and ``ids=``) and COQL cut a rich-text field to its first 500 characters; the
single-record read carries the whole value (docs/zoho-crm-api.md §2.5, §10). A value the list cut looks like
any other, so a sync that stores it loses the rest without a sign. Every value of a rich-text field that
reaches the cut's length is therefore read again with ``GET /{module}/{id}?fields=<the rich-text fields>``:
one call per such record, the only documented v6 route to the whole text for a record at a time
(``/actions/fetch_full_data`` is v7, its v6 existence UNCONFIRMED). Bulk Read's CSV carries the whole value,
so windows read with Bulk Read pay nothing for it.
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from zoho_dagster.client.http import Need, ZohoHttp
from zoho_dagster.client.visibility import EVERY_RECORD

READ_WORKERS = 8
"""Single-record reads of one page in flight at most (the limiter may allow fewer)."""
LIST_TEXT_LIMIT = 500
"""Characters of a rich-text value a list answer carries (docs/zoho-crm-api.md §2.5)."""

Record = dict[str, Any]


def rich_text_fields(fields_metadata: Iterable[Mapping[str, Any]], wanted: Collection[str]) -> list[str]:
    """The fields of ``wanted`` whose metadata says rich text (``textarea: {"type": "rich_text"}``)."""
    found = []
    for meta in fields_metadata:
        textarea = meta.get("textarea")
        name = str(meta.get("api_name") or "")
        if name in wanted and isinstance(textarea, Mapping) and textarea.get("type") == "rich_text":
            found.append(name)
    return found


def maybe_cut(record: Mapping[str, Any], fields: Sequence[str]) -> bool:
    """Whether any of ``fields`` holds a text as long as the list API's cut (so possibly cut by it)."""
    return any(isinstance(record.get(name), str) and len(record[name]) >= LIST_TEXT_LIMIT for name in fields)


class FullText:
    """Completes the rich-text values a list answer may have cut, one single-record read per record."""

    def __init__(
        self, http: ZohoHttp, module: str, fields: Sequence[str], need: Need, workers: int = READ_WORKERS
    ) -> None:
        self.http = http
        self.module = module
        self.fields = list(fields)
        self.need = need
        self.workers = max(1, workers)

    def complete(self, page: list[Record]) -> list[Record]:
        """``page`` with the whole text of every possibly cut rich-text value (a record gone from Zoho keeps
        what the list gave: the deletions stream marks it). The reads of one page run concurrently; the
        client's limiter keeps them within the org's concurrency."""
        cut = [record for record in page if self.fields and maybe_cut(record, self.fields)]
        if not cut:
            return page
        with ThreadPoolExecutor(min(self.workers, len(cut)), thread_name_prefix="zoho-text") as pool:
            wholes = list(pool.map(lambda record: self._read(str(record["id"])), cut))
        for record, whole in zip(cut, wholes, strict=True):
            record.update({name: whole[name] for name in self.fields if name in whole})
        return page

    def _read(self, record_id: str) -> Record:
        answer = self.http.get(
            f"/{self.module}/{record_id}",
            self.need,
            params={"fields": ",".join(self.fields), **EVERY_RECORD},
        )
        rows = (answer.body or {}).get("data") or [{}]
        return dict(rows[0])
