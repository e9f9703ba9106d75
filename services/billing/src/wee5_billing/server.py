"""The billing process: health, reflection and BillingService, whose RPCs all answer
UNIMPLEMENTED (the generated base servicer) until the billing issue lands."""

from __future__ import annotations

from wee5.billing.v1 import billing_pb2, billing_pb2_grpc
from wee5_kit.grpc import GrpcServer
from wee5_kit.service import Resources
from wee5_kit.settings import KitSettings


async def build(settings: KitSettings) -> GrpcServer:
    resources = await Resources.open("billing", settings)
    server = resources.server()
    server.add_service(
        billing_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name,
        lambda s: billing_pb2_grpc.add_BillingServiceServicer_to_server(
            billing_pb2_grpc.BillingServiceServicer(),  # type: ignore[abstract]
            s,
        ),
    )
    return server
