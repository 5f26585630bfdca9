"""Fixtures for the Citrix client and simulator tests: a virtual clock, simulators on loopback
(stopped after each test) and clients wired to them over real HTTP."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from local.citrix_simulator import CitrixSimulator
from local.citrix_simulator.testing import CLIENT_ID, CUSTOMER, SECRET, base_scenario
from local.clock import VirtualClock
from shared.citrix import CatalogServiceClient, CitrixTokenProvider
from shared.credentials import ClientCredentials


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock shared by the simulator and the client."""
    return VirtualClock()


@pytest.fixture
def scenario() -> dict[str, Any]:
    """A fresh copy of the base scenario, free to modify."""
    return copy.deepcopy(base_scenario())


@pytest.fixture
def start_sim(clock: VirtualClock) -> Iterator[Callable[..., CitrixSimulator]]:
    """Factory: start a simulator for a scenario on the shared clock; all stop at teardown."""
    started: list[CitrixSimulator] = []

    def start(data: dict[str, Any] | None = None) -> CitrixSimulator:
        sim = CitrixSimulator(data if data is not None else base_scenario(), clock=clock)
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def sessions() -> Iterator[Callable[[], requests.Session]]:
    """Factory for requests sessions that are closed at teardown."""
    made: list[requests.Session] = []

    def make() -> requests.Session:
        session = requests.Session()
        made.append(session)
        return session

    yield make
    for session in made:
        session.close()


@pytest.fixture
def connect(
    clock: VirtualClock, sessions: Callable[[], requests.Session]
) -> Callable[..., tuple[CatalogServiceClient, CitrixTokenProvider]]:
    """Factory: a (client, token provider) pair for a simulator or base URL."""

    def make(
        target: CitrixSimulator | str,
        *,
        customer_id: str = CUSTOMER,
        secret: str = SECRET,
        retry_budget_seconds: float = 120,
        timeout_seconds: float = 5,
        safety_margin_seconds: float = 300,
        credentials: Callable[[], ClientCredentials] | None = None,
        on_credentials_rejected: Callable[[], None] | None = None,
    ) -> tuple[CatalogServiceClient, CitrixTokenProvider]:
        base = target if isinstance(target, str) else target.base_url
        creds = credentials or (lambda: ClientCredentials(CLIENT_ID, secret))
        provider = CitrixTokenProvider(
            base,
            customer_id,
            creds,
            session=sessions(),
            clock=clock,
            safety_margin_seconds=safety_margin_seconds,
            timeout_seconds=timeout_seconds,
            retry_budget_seconds=retry_budget_seconds,
            on_credentials_rejected=on_credentials_rejected,
            rng=random.Random(1),  # noqa: S311 - deterministic jitter
        )
        client = CatalogServiceClient(
            base,
            customer_id,
            provider,
            session=sessions(),
            clock=clock,
            timeout_seconds=timeout_seconds,
            retry_budget_seconds=retry_budget_seconds,
            rng=random.Random(2),  # noqa: S311 - deterministic jitter
        )
        return client, provider

    return make
