"""What the gateway reports to Sentry: its 5xx answers and unexpected errors, never a refusal
it answers with a 4xx (core.observability.answers_5xx, the `before_send` filter)."""

from __future__ import annotations

import grpc
import pytest
from litestar import Litestar
from litestar.exceptions import NotFoundException, ServiceUnavailableException

from wee5_gateway.core.observability import answers_5xx, traced
from wee5_gateway.core.problems import ProblemError
from wee5_kit.errors import InvalidArgument, Unavailable


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "x", None)


@pytest.mark.parametrize(
    ("error", "reported"),
    [
        (rpc_error(grpc.StatusCode.INTERNAL), True),  # 502
        (rpc_error(grpc.StatusCode.UNAVAILABLE), True),  # 503
        (rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED), True),  # 504
        (rpc_error(grpc.StatusCode.NOT_FOUND), False),
        (rpc_error(grpc.StatusCode.INVALID_ARGUMENT), False),
        (rpc_error(grpc.StatusCode.FAILED_PRECONDITION), False),
        (InvalidArgument("bad page token"), False),
        (Unavailable("xp is restarting"), True),
        (NotFoundException(), False),
        (ServiceUnavailableException(), True),
        (ProblemError("refused"), False),
        (RecursionError(), False),
        (KeyError("a bug"), True),
    ],
)
def test_only_5xx_answers_and_unexpected_errors_are_reported(
    error: BaseException, reported: bool
) -> None:
    assert answers_5xx(error) is reported


def test_without_tracing_the_app_is_served_unwrapped() -> None:
    app = Litestar(route_handlers=[])
    handler = app.asgi_handler

    assert traced(app).asgi_handler is handler
