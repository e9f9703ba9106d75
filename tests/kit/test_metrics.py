"""Every WEE5 process, started as `python -m wee5_<service> serve`, serves Prometheus metrics
on its WEE5_METRICS_PORT that prometheus-client's parser reads: its requests or RPCs, its
connection pools, its outbox and its consumers. The processes run side by side on the tests'
database, Redis and NATS, as `make up` runs them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import free_port
from tests.support.faults import eventually
from tests.support.metrics import Samples, label_values, scrape, value
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel
from wee5_kit.metrics import Probes, Reading

GRPC_SERVICES = ("xp", "rewards", "benchmarks", "resources", "billing")
PROCESSES = ("gateway", *GRPC_SERVICES)


@pytest.fixture
def started() -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    processes: dict[str, subprocess.Popen[bytes]] = {}
    yield processes
    for process in processes.values():
        if process.poll() is None:
            process.kill()
            process.wait(10)


def start(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", f"wee5_{name}", "serve", "--no-migrate"],
        env=dict(env),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def test_every_process_serves_metrics_that_parse(
    test_env: dict[str, str],
    database_url: str,
    bus: EventBus,
    started: dict[str, subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    addresses = {name: f"127.0.0.1:{free_port()}" for name in GRPC_SERVICES}
    gateway_port, metrics_ports = free_port(), {name: free_port() for name in PROCESSES}
    env = {
        **os.environ,
        **test_env,
        **{f"WEE5_{name.upper()}_ADDR": address for name, address in addresses.items()},
        "WEE5_GATEWAY_PORT": str(gateway_port),
        "WEE5_RESOURCES_HTTP_PORT": str(free_port()),
        "WEE5_STORAGE_DIR": str(tmp_path / "storage"),
        "WEE5_METRICS_CACHE_SECONDS": "0",
    }
    for name in PROCESSES:
        env["WEE5_METRICS_PORT"] = str(metrics_ports[name])
        started[name] = start(name, env, tmp_path / f"{name}.log")
    urls = {name: f"http://127.0.0.1:{port}/metrics" for name, port in metrics_ports.items()}

    async def all_serving() -> bool:
        """Every /metrics answers, and every process serves what it is for: a process serves
        metrics from the start, before its gRPC server or the gateway's HTTP is up."""
        try:
            for url in urls.values():
                await scrape(url)
            for address in addresses.values():
                async with channel(address) as chan:
                    reply = await health_pb2_grpc.HealthStub(chan).Check(
                        health_pb2.HealthCheckRequest(service="liveness"), timeout=2
                    )
                    if reply.status != health_pb2.HealthCheckResponse.SERVING:
                        return False
            async with httpx.AsyncClient() as client:
                return (await client.get(f"http://127.0.0.1:{gateway_port}/healthz")).is_success
        except (httpx.HTTPError, grpc.aio.AioRpcError):
            return False

    try:
        await eventually(all_serving, within=120)
        scraped: dict[str, Samples] = {name: await scrape(url) for name, url in urls.items()}
    except BaseException:
        logs = {
            name: (tmp_path / f"{name}.log").read_text(errors="replace")[-1500:]
            for name in PROCESSES
        }
        raise AssertionError(logs) from None

    for name in GRPC_SERVICES:
        samples = scraped[name]
        health = value(
            samples,
            "wee5_grpc_server_handled_total",
            grpc_service="grpc.health.v1.Health",
            grpc_method="Check",
            grpc_code="OK",
        )
        assert health >= 1, name
        assert label_values(samples, "wee5_db_pool_size_connections", "component") == {name}
        assert label_values(samples, "wee5_outbox_waiting_rows", "component") == {name}
        assert label_values(samples, "wee5_outbox_oldest_age_seconds", "component") == {name}
    gateway = scraped["gateway"]
    assert value(gateway, "wee5_http_requests_total", path="/healthz", status_code="200") == 1
    assert label_values(gateway, "wee5_db_pool_size_connections", "component") == {"gateway"}
    # The consumers of each process, by durable: xp's points, rewards' level-ups and awards.
    assert any(
        "level_up" in d
        for d in label_values(scraped["rewards"], "wee5_consumer_pending_messages", "durable")
    )
    assert label_values(scraped["xp"], "wee5_consumer_pending_messages", "durable")
    assert value(scraped["rewards"], "wee5_rewards", status="dead") >= 0

    for process in started.values():
        process.send_signal(signal.SIGTERM)
    for name, process in started.items():
        # uvicorn ends by raising the SIGTERM it caught again, once it has drained.
        assert process.wait(30) in (0, -signal.SIGTERM), name


async def test_a_probe_that_fails_or_hangs_leaves_out_only_its_own_gauges() -> None:
    probes = Probes(timeout=0.2, cache_seconds=0)

    async def answers() -> list[Reading]:
        return [Reading("wee5_test_gauge", "A test gauge.", {"component": "a"}, 7)]

    async def fails() -> list[Reading]:
        raise ConnectionRefusedError

    async def hangs() -> list[Reading]:
        await asyncio.Event().wait()
        return []

    removals = [
        probes.add(name, probe) for name, probe in [("a", answers), ("b", fails), ("c", hangs)]
    ]
    # Prometheus' scrape comes on the metrics server's thread while this loop runs.
    families = await asyncio.to_thread(lambda: list(probes.collect()))
    for remove in removals:
        remove()
    after_removal = await asyncio.to_thread(lambda: list(probes.collect()))

    assert [(f.name, [(s.labels, s.value) for s in f.samples]) for f in families] == [
        ("wee5_test_gauge", [({"component": "a"}, 7)])
    ]
    assert after_removal == []
