"""WEE5_DEV_PLAN: paid features tried locally, and refused where it could give them away."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from tests.billing.test_servicer import ENTERPRISE, PREMIUM, entitlements, set_plan
from tests.conftest import free_port
from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5_billing.config import BillingSettings
from wee5_billing.server import build
from wee5_kit.events import EventBus
from wee5_kit.grpc import channel

if TYPE_CHECKING:
    from wee5.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub as Billing


@pytest.fixture(scope="module")
async def billing(database_url: str, bus: EventBus) -> AsyncIterator[Billing]:
    address = f"127.0.0.1:{free_port()}"
    server = await build(BillingSettings(billing_addr=address, dev_plan="premium"))
    await server.start()
    client = channel(address)
    try:
        yield billing_pb2_grpc.BillingServiceStub(client)
    finally:
        await client.close(None)
        await server.stop()


async def test_every_community_has_at_least_the_dev_plan(
    billing: Billing, community_id: str
) -> None:
    reply = await entitlements(billing, community_id)

    assert reply.plan == billing_pb2.PLAN_PREMIUM
    assert list(reply.features) == PREMIUM


async def test_a_dearer_plan_of_the_community_stays_in_effect(
    billing: Billing, community_id: str
) -> None:
    await set_plan(billing, community_id, billing_pb2.PLAN_ENTERPRISE)

    reply = await entitlements(billing, community_id)

    assert (reply.plan, list(reply.features)) == (billing_pb2.PLAN_ENTERPRISE, ENTERPRISE)


@pytest.mark.parametrize(
    "where",
    [{"environment": "production"}, {"environment": "staging"}, {"stripe_secret_key": "sk_live_1"}],
)
def test_the_dev_plan_is_refused_where_it_could_give_paid_features_away(
    where: dict[str, str],
) -> None:
    with pytest.raises(ValidationError, match=r"WEE5_DEV_PLAN=enterprise .* for local runs only"):
        BillingSettings(dev_plan="enterprise", **where)  # type: ignore[arg-type]


def test_an_unknown_or_empty_dev_plan() -> None:
    assert BillingSettings(dev_plan="").dev_plan is None
    with pytest.raises(ValidationError, match="premium"):
        BillingSettings(dev_plan="free")


def test_the_billing_process_refuses_to_start_with_a_dev_plan_in_production() -> None:
    env = {**os.environ, "WEE5_DEV_PLAN": "premium", "WEE5_ENVIRONMENT": "production"}
    started = subprocess.run(
        [sys.executable, "-m", "wee5_billing"], env=env, capture_output=True, text=True, timeout=60
    )

    assert started.returncode == 1
    assert "billing: refusing to start" in started.stderr
    assert "WEE5_DEV_PLAN=premium" in started.stderr
    assert "WEE5_ENVIRONMENT=production" in started.stderr
    assert "Traceback" not in started.stderr
