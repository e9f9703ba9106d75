"""`GET …/setup`: for a community's admins, what is set up and what is left (the webhook URL
and secret to set in Whop, whether webhooks arrive, whether Whop's API key works, the plan).
Reading it also onboards the community's Whop company if that has not happened yet."""

from __future__ import annotations

from typing import Any

import grpc
from litestar import Controller, Request, get
from litestar.params import FromPath

from wee5_gateway.api.setup.schemas import Check, CommunitySetup, RejectedWebhook
from wee5_gateway.api.webhooks.intake import whop_intake
from wee5_gateway.core.access import WHOP_COMMUNITIES_STATE, Action, requires
from wee5_gateway.core.deps import (
    ACCOUNTS,
    COMMUNITY,
    EngineDep,
    EntitlementsDep,
    SessionsDep,
    SettingsDep,
)
from wee5_gateway.core.openapi import WHOP_USER_AUTH
from wee5_gateway.core.problems import problem_responses
from wee5_gateway.core.whop_access import WhopApi, WhopCommunities, WhopRefused, WhopUnavailable
from wee5_gateway.db.repository import ReceiptRepository, WhopRepository
from wee5_kit.logging import get_logger

log = get_logger("wee5.gateway")

WEBHOOK_PATH = "/webhooks/whop"
WHOP = "whop"
# How many rejected deliveries the setup checklist lists.
REJECTIONS_SHOWN = 10


class SetupController(Controller):
    path = f"{COMMUNITY}/setup"
    tags = ["setup"]
    security = [*ACCOUNTS, {WHOP_USER_AUTH: []}]

    @get(
        "/",
        opt=requires(Action.READ_SETUP),
        operation_id="getCommunitySetup",
        summary="What is set up for running WEE5 as a Whop app in this community (admins)",
        description="A checklist for running WEE5 as a Whop app here: the webhook URL to give "
        "Whop, whether the Whop API key works for this community, and the plan. Each "
        "check says what is missing.",
        responses=problem_responses(401, 403, 503),
    )
    async def community_setup(
        self,
        community_id: FromPath[str],
        settings: SettingsDep,
        engine: EngineDep,
        sessionmaker: SessionsDep,
        entitlements: EntitlementsDep,
        request: Request[Any, Any, Any],
    ) -> CommunitySetup:
        whop = request.app.state.get(WHOP_COMMUNITIES_STATE)
        if not isinstance(whop, WhopCommunities):
            whop = None
        company_id = await whop.onboard(community_id) if whop else None
        async with sessionmaker() as session:
            siblings = (
                await WhopRepository(session).communities_of(company_id) if company_id else []
            )
        # This replica's receipts are written behind the deliveries; count them all.
        await whop_intake(request.app.state).receipts.flush()
        async with ReceiptRepository.open(engine) as repository:
            received = await repository.count_for(WHOP, community_id)
            rejected = await repository.rejected_for(WHOP, community_id, REJECTIONS_SHOWN)
        secret = settings.whop_webhook_secret
        secret_set = secret is not None and bool(secret.get_secret_value())
        return CommunitySetup(
            community_id=community_id,
            company_id=company_id,
            company_communities=siblings,
            webhook_url=settings.public_url.rstrip("/") + WEBHOOK_PATH,
            webhook_secret=Check(
                ok=secret_set,
                detail="set"
                if secret_set
                else "set WEE5_WHOP_WEBHOOK_SECRET to the secret Whop shows for the webhook",
            ),
            webhooks_received=received,
            webhooks_rejected=[RejectedWebhook(*row) for row in rejected],
            whop_api_key=await _api_key_check(whop.api if whop else None, community_id),
            plan=await _plan(entitlements, community_id),
        )


async def _api_key_check(api: WhopApi | None, community_id: str) -> Check:
    """A cheap authenticated call: this community's experience."""
    if api is None or not api.api_key:
        return Check(ok=False, detail="set WEE5_WHOP_APP_ID and WEE5_WHOP_API_KEY")
    try:
        await api.company_of(community_id)
    except WhopRefused as error:
        return Check(ok=False, detail=str(error))
    except WhopUnavailable as error:
        return Check(ok=None, detail=f"Whop did not answer ({error})")
    return Check(ok=True, detail="Whop accepted the key")


async def _plan(entitlements: EntitlementsDep, community_id: str) -> str | None:
    try:
        return (await entitlements.of(community_id)).plan
    except grpc.aio.AioRpcError as error:
        log.warning("setup: billing did not answer", code=error.code().name)
        return None
