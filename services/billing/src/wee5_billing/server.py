"""The billing process: gRPC server (plans, entitlements, manual plan assignment) and the
outbox relay that publishes `billing.subscription.*`."""

from __future__ import annotations

from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5_billing.models import outbox
from wee5_billing.service import BillingService
from wee5_billing.servicer import BillingServicer
from wee5_kit.events import Outbox
from wee5_kit.grpc import GrpcServer
from wee5_kit.service import Resources
from wee5_kit.settings import KitSettings


async def build(settings: KitSettings) -> GrpcServer:
    resources = await Resources.open("billing", settings)
    await resources.bus.ensure_stream("billing")
    events = Outbox(outbox)
    events.watch(resources.sessionmaker)
    service = BillingService(events)
    server = resources.server()
    # The Stripe RPCs are inherited from the generated base and answer UNIMPLEMENTED.
    servicer = BillingServicer(service, resources.sessionmaker)  # type: ignore[abstract]
    server.add_service(
        billing_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name,
        lambda s: billing_pb2_grpc.add_BillingServiceServicer_to_server(servicer, s),
    )
    server.add_background(lambda: events.relay(resources.sessionmaker, resources.bus))
    return server
