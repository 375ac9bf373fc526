"""Read-only questions about the synced tables, for the demo's closing table and for tests.

Kept beside the writer so that "live" and "deleted" mean the same thing everywhere: a row is deleted when
``_zoho_deleted_at`` is set (tombstones included), live otherwise.
"""

from dataclasses import dataclass

import sqlalchemy as sa

from zoho_dagster.postgres.writer import TableName


@dataclass(frozen=True)
class TableState:
    """The ids of a table, split into live and deleted rows."""

    live: frozenset[str]
    deleted: frozenset[str]

    @property
    def rows(self) -> int:
        return len(self.live) + len(self.deleted)


def table_state(engine: sa.Engine, target: TableName) -> TableState:
    """Live and deleted ids of ``target`` (both empty when the table does not exist)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(target.name, schema=target.schema):
            return TableState(frozenset(), frozenset())
        table = sa.Table(
            target.name,
            sa.MetaData(),
            sa.Column("id", sa.Text()),
            sa.Column("_zoho_deleted_at", sa.DateTime(timezone=True)),
            schema=target.schema,
        )
        live: set[str] = set()
        deleted: set[str] = set()
        for record_id, deleted_at in conn.execute(sa.select(table.c.id, table.c._zoho_deleted_at)):
            (live if deleted_at is None else deleted).add(record_id)
    return TableState(frozenset(live), frozenset(deleted))


def drop_tables(engine: sa.Engine, targets: list[TableName]) -> None:
    """Drop ``targets`` if they exist (the demo starts from empty tables)."""
    with engine.begin() as conn:
        for target in targets:
            conn.execute(
                sa.schema.DropTable(
                    sa.Table(target.name, sa.MetaData(), schema=target.schema), if_exists=True
                )
            )
