"""Client-side pacing and look-up reuse: fewer calls, and no self-inflicted 429s."""

from __future__ import annotations

import random
import threading

import requests

from local.citrix_simulator import CitrixSimulator
from local.citrix_simulator.testing import CLIENT_ID, CUSTOMER, SECRET, SITE
from local.clock import RealClock, VirtualClock
from shared.citrix import CatalogServiceClient, CitrixTokenProvider
from shared.citrix.pacing import RequestPacer, shared_pacer
from shared.credentials import ClientCredentials


def test_pacer_allows_a_burst_then_keeps_every_second_under_the_rate():
    """An idle client sends ``rate`` requests at once, then no second holds more than ``rate``;
    a hold pushes everyone past the told time."""
    clock = VirtualClock(start=1000.0)
    pacer = RequestPacer(4, clock)
    times = []
    for _ in range(10):
        pacer.wait_turn()
        times.append(round(clock.time() - 1000.0, 3))
    assert times == [0.0, 0.0, 0.0, 0.0, 1.1, 1.1, 1.1, 1.1, 2.2, 2.2]
    pacer.hold(10)
    pacer.wait_turn()
    assert clock.time() >= 1000.0 + times[-1] + 10


def test_fractional_rates_space_single_requests():
    """Half a request per second is one request every two seconds (plus the 10% guard)."""
    clock = VirtualClock(start=0.0)
    pacer = RequestPacer(0.5, clock)
    stamps = []
    for _ in range(3):
        pacer.wait_turn()
        stamps.append(clock.time())
    assert [round(t, 3) for t in stamps] == [0.0, 2.2, 4.4]


def test_shared_pacer_is_one_per_host_and_clock():
    """Senders for the same host and clock share a pacer; rate 0 means no pacing."""
    clock = VirtualClock()
    a = shared_pacer("https://api-us.cloud.com/x", 8, clock)
    b = shared_pacer("https://API-US.cloud.com", 8, clock)
    assert a is b
    assert shared_pacer("https://api-eu.cloud.com", 8, clock) is not a
    assert shared_pacer("https://api-us.cloud.com", 0, clock) is None


def _client(sim, clock, **kwargs):
    session = requests.Session()
    provider = CitrixTokenProvider(
        sim.base_url,
        CUSTOMER,
        lambda: ClientCredentials(CLIENT_ID, SECRET),
        session=session,
        clock=clock,
        rng=random.Random(1),  # noqa: S311 - deterministic jitter
        max_requests_per_second=kwargs.get("max_requests_per_second", 0.0),
    )
    client = CatalogServiceClient(
        sim.base_url,
        CUSTOMER,
        provider,
        session=session,
        clock=clock,
        rng=random.Random(2),  # noqa: S311 - deterministic jitter
        **kwargs,
    )
    return client, session


def test_paced_threads_stay_under_the_gateway_limit(scenario):
    """Four threads sharing a paced client make 40 calls under a 5/s limit without one 429.

    Real time (sped up 10x): on a virtual clock every thread's sleep moves time for all, so
    request arrival times there say nothing about pacing between threads."""
    scenario["rateLimit"] = {"requestsPerSecond": 5, "retryDelaySeconds": 1, "path": "/*"}
    clock = RealClock(speed=10)
    sim = CitrixSimulator(scenario, clock=clock)
    sim.start()
    client, session = _client(sim, clock, max_requests_per_second=4)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(10):
                client.get_catalog(SITE, scenario["catalogs"][0]["id"])
        except BaseException as exc:  # report in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    session.close()
    sim.stop()
    assert not errors
    statuses = [r["status"] for r in sim.requests]
    assert statuses.count(429) == 0
    assert statuses.count(200) == 41  # 40 catalog reads and one token


def test_unpaced_threads_do_earn_429s(start_sim, scenario, clock):
    """The same load without pacing is answered 429 (so the test above can fail)."""
    scenario["rateLimit"] = {"requestsPerSecond": 5, "retryDelaySeconds": 1, "path": "/*"}
    sim = start_sim(scenario)
    client, session = _client(sim, clock)
    for _ in range(12):
        client.get_catalog(SITE, scenario["catalogs"][0]["id"])
    session.close()
    assert [r["status"] for r in sim.requests].count(429) > 0


def test_site_id_and_listings_are_reused(start_sim, scenario, clock):
    """The site id is looked up once; listings are reused within their time to live."""
    sim = start_sim(scenario)
    client, session = _client(sim, clock, listing_cache_seconds=15)
    for _ in range(3):
        client.get_site_id()
        client.find_catalog(SITE, "Finance-Desktops")
        client.find_image(SITE, "win11-23h2-v2")
    assert sim.count("GET", "*/sites") == 1
    assert sim.count("GET", "*/catalogs") == 1
    assert sim.count("GET", "*/images") == 1
    clock.advance(16)
    client.find_catalog(SITE, "Finance-Desktops")
    assert sim.count("GET", "*/catalogs") == 2
    session.close()


def test_reused_listing_is_rechecked_before_a_miss_or_a_busy_catalog(start_sim, scenario, clock):
    """An image published after the listing was cached, or a catalog the cache shows busy,
    is looked up afresh instead of being reported from stale data."""
    scenario["images"].append(
        {"id": "img-new", "name": "win11-new", "state": "Ready", "appearAfterMinutes": 0.1}
    )
    scenario["catalogs"][1].update(state="Processing", busyUntilMinutes=0.1)
    sim = start_sim(scenario)
    client, session = _client(sim, clock, listing_cache_seconds=15)
    client.find_image(SITE, "win11-23h2-v1")  # caches a listing without the new image
    busy = client.find_catalog(SITE, scenario["catalogs"][1]["name"])  # cached as Processing
    assert busy.state == "Processing"
    clock.advance(10)  # the image appears and the catalog settles; the cache is still young
    assert client.find_image(SITE, "win11-new").id == "img-new"
    assert sim.count("GET", "*/images") == 2
    assert client.find_catalog(SITE, scenario["catalogs"][1]["name"]).state == "Active"
    assert sim.count("GET", "*/catalogs") == 2
    client.find_catalog(SITE, scenario["catalogs"][1]["name"])  # ready in the cache: reused
    assert sim.count("GET", "*/catalogs") == 2
    session.close()
