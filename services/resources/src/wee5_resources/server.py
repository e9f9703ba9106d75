"""The resources process: health, reflection and ResourcesService, whose RPCs all answer
UNIMPLEMENTED (the generated base servicer) until the resources issue lands."""

from __future__ import annotations

from wee5.resources.v1 import resources_pb2, resources_pb2_grpc
from wee5_kit.grpc import GrpcServer
from wee5_kit.service import Resources
from wee5_kit.settings import KitSettings


async def build(settings: KitSettings) -> GrpcServer:
    resources = await Resources.open("resources", settings)
    server = resources.server()
    server.add_service(
        resources_pb2.DESCRIPTOR.services_by_name["ResourcesService"].full_name,
        lambda s: resources_pb2_grpc.add_ResourcesServiceServicer_to_server(
            resources_pb2_grpc.ResourcesServiceServicer(),  # type: ignore[abstract]
            s,
        ),
    )
    return server
