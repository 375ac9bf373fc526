"""The repository's dg defs module: its ``zoho_crm`` component (``defs.yaml``), loaded by
:mod:`zoho_dagster.definitions`."""
