"""The one name of a target table: ``schema.table``.

The replication file, the asset (as ``dagster/table_name``), the IO manager, the checks and the demo all name
tables with this type, so that parsing, the default schema and quoting are decided once. Identifiers are
always quoted when they reach SQL, never formatted in.
"""

from dataclasses import dataclass

DEFAULT_SCHEMA = "zoho_crm"


class TableNameError(ValueError):
    """A table name that is not ``schema.table``; the message says how to write it."""


@dataclass(frozen=True, order=True)
class TableName:
    """A target table as ``schema.table``; the schema defaults to ``zoho_crm``."""

    schema: str
    name: str

    @classmethod
    def parse(cls, text: str) -> "TableName":
        """``"crm.leads"`` → ``TableName("crm", "leads")``; a bare name goes to the ``zoho_crm`` schema."""
        schema, dot, name = str(text).partition(".")
        if not dot:
            return cls(DEFAULT_SCHEMA, schema)
        if not schema or not name:
            raise TableNameError(f"The target table {text!r} must be written schema.table.")
        return cls(schema, name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"
