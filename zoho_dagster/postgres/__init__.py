"""Postgres: the synced tables, the shared token cache and the embedded server for machines without one."""
