"""zoho-dagster: a Postgres copy of a Zoho CRM organisation, kept by Dagster."""

__version__ = "0.1.0"
