"""Zoho's change notifications: changes reach the tables within seconds instead of at the next poll.

How the parts fit (docs/zoho-crm-api.md §3.12 for Zoho's side):

- :mod:`.config`: ``ZOHO_DAGSTER_NOTIFY_URL`` and ``ZOHO_DAGSTER_NOTIFY_SECRET`` checked; the channel ids and
  tokens derived from the secret.
- :mod:`.watch`: Zoho's Notifications API (enable, renew, disable, list).
- :mod:`.channels`: one channel per watched stream, kept alive (``zoho-dagster notifications subscribe``, the
  hourly channels schedule).
- :mod:`.receiver`: the HTTP endpoint Zoho posts to (``zoho-dagster notifications serve``); it checks the
  token and stores each notification durably before answering.
- :mod:`.store`: the two tables, ``zoho_dagster.notifications`` and ``zoho_dagster.notification_channels``.
- :mod:`.apply`: a stream's pending notifications applied: the records read again by id, written newest-wins,
  deletions marked, the notifications marked consumed in the same transaction.
- :mod:`.sensor`: the Dagster sensor, jobs and schedule.

The receiver's modules (config, receiver, store) import neither Dagster nor the client, so the receiver's
process stays small.
"""
