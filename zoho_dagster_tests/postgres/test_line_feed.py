"""The line feed: rounds of the rendered lines in order, errors where they happened, the source closed."""

import threading
from collections.abc import Iterator

import pytest

from zoho_dagster.postgres.line_feed import LineFeed


def numbered(count: int) -> Iterator[str]:
    for i in range(count):
        yield f"{i}\n"


def test_rounds_hand_out_every_line_once_in_order() -> None:
    with LineFeed(numbered(1_001)) as feed:
        rounds = []
        while not feed.exhausted:
            rounds.append(list(feed.take(300)))
    assert [len(r) for r in rounds] == [300, 300, 300, 101]
    assert [line for r in rounds for line in r] == [f"{i}\n" for i in range(1_001)]


def test_an_error_of_the_source_reaches_the_consumer_after_the_lines_before_it() -> None:
    def failing() -> Iterator[str]:
        yield from numbered(450)
        raise ConnectionError("Zoho went away on page 3")

    received: list[str] = []
    with LineFeed(failing()) as feed, pytest.raises(ConnectionError, match="page 3"):
        for line in feed.take():
            received.append(line)
    # Whole batches are handed over, so the lines of the batch the error cut short never come.
    assert received == [f"{i}\n" for i in range(400)]


def test_leaving_early_closes_the_source() -> None:
    closed = threading.Event()

    def endless() -> Iterator[str]:
        try:
            while True:
                yield "x\n"
        finally:
            closed.set()

    with LineFeed(endless()) as feed:
        assert list(feed.take(5)) == ["x\n"] * 5
    assert closed.wait(10)
