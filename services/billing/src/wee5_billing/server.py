"""The billing process: gRPC server (plans, entitlements, Stripe checkout, portal and webhooks,
manual plan assignment, companies and groups), the outbox relay that publishes
`billing.subscription.*`, and the consumer of xp's `xp.community_company`."""

from __future__ import annotations

from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5_billing.companies import Companies
from wee5_billing.config import BillingSettings
from wee5_billing.events import community_company_consumer
from wee5_billing.models import outbox
from wee5_billing.service import BillingService
from wee5_billing.servicer import BillingServicer
from wee5_billing.stripe_api import StripeApi
from wee5_billing.stripe_events import StripeEvents
from wee5_kit.events import Outbox
from wee5_kit.grpc import GrpcServer
from wee5_kit.logging import get_logger
from wee5_kit.service import Resources
from wee5_kit.settings import KitSettings

log = get_logger("wee5.billing")


async def build(settings: KitSettings) -> GrpcServer:
    billing_settings = settings if isinstance(settings, BillingSettings) else BillingSettings()
    resources = await Resources.open("billing", billing_settings)
    await resources.bus.ensure_stream("billing")
    events = Outbox(outbox)
    events.watch(resources.sessionmaker)
    stripe = StripeApi(billing_settings)
    if not stripe.configured:
        log.warning(
            "Stripe is not configured (WEE5_STRIPE_SECRET_KEY unset): checkout and the billing "
            "portal answer 503, and communities stay on free or their assigned plan"
        )
    if billing_settings.dev_plan:
        log.warning(
            "WEE5_DEV_PLAN: every community has at least this plan (local runs only)",
            plan=billing_settings.dev_plan,
        )
    if billing_settings.stripe_webhook_secret is None:
        log.warning("Stripe webhooks are off: WEE5_STRIPE_WEBHOOK_SECRET is unset")
    service = BillingService(events, billing_settings, stripe)
    server = resources.server()
    stripe_events = StripeEvents(events, billing_settings, stripe)
    companies = Companies(service.changes)
    servicer = BillingServicer(
        service, stripe_events, companies, resources.sessionmaker, billing_settings
    )
    server.add_service(
        billing_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name,
        lambda s: billing_pb2_grpc.add_BillingServiceServicer_to_server(servicer, s),
    )
    server.add_background(lambda: events.relay(resources.sessionmaker, resources.bus))
    company_links = community_company_consumer(resources.bus, resources.sessionmaker, companies)
    server.add_background(company_links.run)
    server.add_cleanup(stripe.close)
    return server
