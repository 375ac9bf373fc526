"""One simulator for the whole simulator suite (reset before each test), plus helpers on real sockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from zoho_dagster.simulator import RunningSimulator, run_simulator


@pytest.fixture(scope="session")
def zsim() -> Iterator[RunningSimulator]:
    with run_simulator(seed=7, records=2500) as running:
        yield running


@pytest.fixture
def sim(zsim: RunningSimulator) -> RunningSimulator:
    zsim.control.reset()
    return zsim
