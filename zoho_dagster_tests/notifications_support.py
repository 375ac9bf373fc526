"""What the notification tests share: the receiver on a real port, and a secret."""

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import uvicorn

from zoho_dagster.notifications.config import NotifySettings
from zoho_dagster.notifications.receiver import make_app

SECRET = "test-secret-" + "0123456789abcdef" * 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Receiver:
    """A receiver serving in a thread of the test process; ``stop()``/``start()`` take it down and up."""

    engine: sa.Engine
    settings: NotifySettings
    port: int
    server: Any = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/zoho/notify"

    def start(self) -> None:
        config = uvicorn.Config(
            make_app(self.engine, self.settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="receiver", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the receiver did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=20)
            self.server = self.thread = None


@contextlib.contextmanager
def running_receiver(engine: sa.Engine, port: int | None = None) -> Iterator[Receiver]:
    """A receiver storing into ``engine``'s database, its notify URL on this machine."""
    port = port or free_port()
    settings = NotifySettings(secret=SECRET, url=f"http://127.0.0.1:{port}/zoho/notify")
    receiver = Receiver(engine, settings, port)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
