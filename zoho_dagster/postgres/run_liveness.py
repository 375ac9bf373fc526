"""A Postgres session that lives exactly as long as a run's process: how the daemon tells a dead run.

Why: a run whose process dies without a word (SIGKILL, the OOM killer, a host gone) stays STARTED for good and
keeps its ``zoho_crm_api`` pool slot; three such runs stop every sync. Dagster's run monitoring asks the run
launcher whether a STARTED run's worker is alive, but its ``DefaultRunLauncher`` cannot answer
(``supports_check_run_worker_health`` is False), and ``dagster asset materialize`` and ``dg launch --assets``
execute the run in the command's own process, with no launcher at all (docs/dagster.md §6).

The signal: the process that starts a run (the one storing its RUN_START event: the command, or the run worker
a code server spawned) opens one more connection to Dagster's storage database and takes a shared
session-level advisory lock keyed by the run id, *before* the run turns STARTED; it lets go *after* the run's
end status is stored. Postgres drops a session's locks when the session ends: at once when the process dies
(the kernel closes its socket), and within about 30 s when its host is gone (the TCP keepalives set on the
session). So a STARTED run whose lock is gone has no process left; :mod:`zoho_dagster.postgres.run_launcher`
tells run monitoring so. A thread pings the session every few seconds and takes the lock again on a new
session if the old one broke (a Postgres restart), so a live run loses it for seconds at most.

The run's tag ``zoho_dagster/liveness`` names the process holding the lock (``held by <host> pid <pid>``);
only runs with that tag are judged, so a run started before this existed, or whose lock could not be taken, is
left to Dagster's own rules. The lock needs a real session: a pooler in transaction mode (PgBouncer) in front
of the storage database would break it.
"""

import hashlib
import logging
import os
import socket
import threading
import time
from datetime import datetime

import psycopg2
import psycopg2.extensions
import sqlalchemy as sa
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster_postgres.run_storage import PostgresRunStorage

from zoho_dagster.postgres.engine import libpq_url

log = logging.getLogger(__name__)

LIVENESS_TAG = "zoho_dagster/liveness"
"""Run tag: ``held by <host> pid <pid>`` (the process holding the run's lock) or ``unwatched: <reason>``."""
HELD_BY = "held by "
UNWATCHED = "unwatched: "

NAMESPACE = 0x5A44_0001
"""First key of every run's lock (``pg_advisory_lock_shared(int4, int4)``). Two-key locks never meet the
one-bigint locks the writer and the token cache take (``pg_locks.objsubid`` 2 against 1)."""

PING_SECONDS = 5.0
"""How often the holding process checks its session; a broken one is replaced within about this long."""

KEEPALIVE = {"idle": 15, "interval": 5, "count": 3}
"""TCP keepalives on both ends of the session: a host that vanished without closing its socket (power cut,
network gone) loses its session after idle + interval x count = 30 s instead of Linux's two hours."""

STARTS = {DagsterEventType.RUN_START, DagsterEventType.RUN_RESUMED}
ENDS = {DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED}


def lock_key(run_id: str) -> tuple[int, int]:
    """The run's two-key advisory lock: ``NAMESPACE`` and 31 bits of a hash of the run id.

    Shared locks never wait for each other, so two runs whose ids hash alike both hold theirs; one of them
    would then look alive until the other ends (one chance in two billion per pair of concurrent runs).
    """
    digest = hashlib.blake2b(run_id.encode(), digest_size=4).digest()
    return NAMESPACE, int.from_bytes(digest, "big") & 0x7FFF_FFFF


def is_held(connection: sa.Connection, run_id: str) -> bool:
    """Whether a session of this database holds ``run_id``'s lock (any role may read ``pg_locks``)."""
    namespace, key = lock_key(run_id)
    held = connection.execute(
        sa.text(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = CAST(:namespace AS oid) AND objid = CAST(:key AS oid) AND objsubid = 2)"
        ),
        {"namespace": namespace, "key": key},
    ).scalar()
    return bool(held)


def is_watched(tag: str | None) -> bool:
    """Whether a run's ``zoho_dagster/liveness`` tag says a process took its lock."""
    return bool(tag) and str(tag).startswith(HELD_BY)


def _session_dsn(database_url: str, run_id: str) -> str:
    """libpq parameters of a run's session: named after the run, keepalives on both ends."""
    url = libpq_url(database_url)
    server_side = " ".join(f"-c tcp_keepalives_{name}={value}" for name, value in KEEPALIVE.items())
    options = " ".join(filter(None, [psycopg2.extensions.parse_dsn(url).get("options"), server_side]))
    return psycopg2.extensions.make_dsn(
        url,
        application_name=f"zoho-dagster run {run_id}",
        connect_timeout=10,
        keepalives=1,
        options=options,
        **{f"keepalives_{name}": value for name, value in KEEPALIVE.items()},
    )


def _open_session(database_url: str, run_id: str) -> psycopg2.extensions.connection:
    connection = psycopg2.connect(_session_dsn(database_url, run_id))
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock_shared(%s, %s)", lock_key(run_id))
    except BaseException:
        connection.close()
        raise
    return connection


class RunSessions:
    """The liveness sessions this process holds, one per run it started, kept alive by a thread."""

    def __init__(self, database_url: str, ping_seconds: float = PING_SECONDS) -> None:
        self._database_url = database_url
        self._ping_seconds = ping_seconds
        self._sessions: dict[str, psycopg2.extensions.connection] = {}
        self._guard = threading.Lock()
        self._watcher: threading.Thread | None = None

    def hold(self, run_id: str) -> None:
        """Open ``run_id``'s session and take its lock; raises psycopg2's error when that fails."""
        session = _open_session(self._database_url, run_id)
        with self._guard:
            previous = self._sessions.pop(run_id, None)
            self._sessions[run_id] = session
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=self._watch, name="zoho-dagster run liveness", daemon=True
                )
                self._watcher.start()
        if previous is not None:
            previous.close()

    def release(self, run_id: str) -> None:
        """Close ``run_id``'s session, if this process holds one: Postgres drops the lock with it."""
        with self._guard:
            session = self._sessions.pop(run_id, None)
        if session is not None:
            session.close()

    def held(self) -> list[str]:
        """The runs whose sessions this process holds now."""
        with self._guard:
            return list(self._sessions)

    def _watch(self) -> None:
        """Ping every session; replace one that broke. Ends when no session is left."""
        while True:
            time.sleep(self._ping_seconds)
            with self._guard:
                if not self._sessions:
                    self._watcher = None
                    return
                sessions = list(self._sessions.items())
            for run_id, session in sessions:
                try:
                    with session.cursor() as cursor:
                        cursor.execute("SELECT 1")
                except psycopg2.Error:
                    self._replace(run_id, session)

    def _replace(self, run_id: str, broken: psycopg2.extensions.connection) -> None:
        with self._guard:
            if self._sessions.get(run_id) is not broken:
                return  # released meanwhile: the run has ended
        try:
            session = _open_session(self._database_url, run_id)
        except psycopg2.Error as error:
            log.warning(
                "Run %s: its liveness session broke and cannot be opened again yet (%s)", run_id, error
            )
            return
        with self._guard:
            replaced = self._sessions.get(run_id) is broken
            if replaced:
                self._sessions[run_id] = session
        (broken if replaced else session).close()
        if replaced:
            log.info("Run %s: its liveness session broke and was opened again", run_id)


class LivenessRunStorage(PostgresRunStorage):
    """dagster-postgres' run storage; RUN_START also takes the run's lock, and the run's end gives it back.

    Why here: every process that executes a run stores its RUN_START through the instance's run storage
    (``handle_run_event``), whatever started it (a CLI command, a code server's run worker, a test); the
    status turns STARTED in that same call, so the lock is held before any observer can see STARTED, and it is
    released only after ``super()`` has stored the end status, so a finished run never looks dead.
    """

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True) -> None:
        super().__init__(postgres_url, should_autocreate_tables)
        self._liveness = RunSessions(postgres_url)

    def handle_run_event(
        self, run_id: str, event: DagsterEvent, update_timestamp: datetime | None = None
    ) -> None:
        if event.event_type in STARTS:
            self._hold(run_id)
        super().handle_run_event(run_id, event, update_timestamp)
        if event.event_type in ENDS:
            self._liveness.release(run_id)

    def _hold(self, run_id: str) -> None:
        """Take the lock and tag the run; a failure leaves the run unwatched, never stops it."""
        try:
            self._liveness.hold(run_id)
            tag = f"{HELD_BY}{socket.gethostname()} pid {os.getpid()}"
        except psycopg2.Error as error:
            reason = " ".join(str(error).split())[:200]
            log.warning(
                "Run %s: no liveness session (%s); a crash of its process will not be noticed", run_id, reason
            )
            tag = f"{UNWATCHED}{reason}"
        # Written even when unwatched: a re-executed run may carry its parent's tag, which must not apply.
        self.add_run_tags(run_id, {LIVENESS_TAG: tag})
