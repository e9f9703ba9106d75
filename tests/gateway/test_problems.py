"""One table from gRPC status to HTTP, and every error answered as problem+json."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from litestar import Litestar, get
from litestar.testing import TestClient

from wee5.rewards.v1 import rewards_pb2
from wee5_benchmarks import errors as benchmarks_errors
from wee5_billing import errors as billing_errors
from wee5_gateway.core.problems import (
    EXCEPTION_HANDLERS,
    PROBLEM_TYPE_BASE,
    REFUSAL_TYPES,
    UpstreamAnswerInvalid,
    WebhookNotConfigured,
    problem_types,
    reply_name,
)
from wee5_kit.errors import DomainError
from wee5_kit.proto import EnumCodec
from wee5_resources import errors as resources_errors
from wee5_rewards import errors as rewards_errors
from wee5_xp import errors as xp_errors

SECRET_DETAIL = "db password=hunter2 at 10.0.0.7"


def client_raising(error: Exception) -> TestClient[Litestar]:
    @get("/boom")
    async def boom() -> None:
        raise error

    return TestClient(Litestar([boom], exception_handlers=EXCEPTION_HANDLERS, logging_config=None))


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details, None)


def problem_of(client: TestClient[Litestar]) -> tuple[int, dict[str, Any]]:
    with client:
        response = client.get("/boom")
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    assert body["instance"] == "/boom"
    return response.status_code, body


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.ALREADY_EXISTS, 409),
        (grpc.StatusCode.FAILED_PRECONDITION, 409),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.UNAUTHENTICATED, 401),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    ],
)
def test_client_errors_map_to_their_status_with_the_downstream_details(
    code: grpc.StatusCode, status: int
) -> None:
    got, problem = problem_of(client_raising(rpc_error(code, "member u1 has no XP")))

    assert got == status
    assert problem["detail"] == "member u1 has no XP"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.UNIMPLEMENTED, 501),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
        (grpc.StatusCode.INTERNAL, 502),
        (grpc.StatusCode.UNKNOWN, 502),
        (grpc.StatusCode.DATA_LOSS, 502),
    ],
)
def test_server_errors_map_to_their_status_without_leaking_details(
    code: grpc.StatusCode, status: int
) -> None:
    got, problem = problem_of(client_raising(rpc_error(code, SECRET_DETAIL)))

    assert got == status
    assert SECRET_DETAIL not in problem["detail"]


def test_unexpected_exception_is_a_500_problem_without_its_message() -> None:
    got, problem = problem_of(client_raising(RuntimeError(SECRET_DETAIL)))

    assert got == 500
    assert SECRET_DETAIL not in problem["detail"]
    assert problem["type"] == "https://wee5.dev/problems/internal-error"


def test_gateway_problem_carries_its_own_type_uri() -> None:
    got, problem = problem_of(client_raising(WebhookNotConfigured("set WEE5_X")))

    assert got == 503
    assert problem["type"] == "https://wee5.dev/problems/webhook-not-configured"
    assert problem["detail"] == "set WEE5_X"


def test_an_enum_value_a_service_answers_that_the_gateway_does_not_know_is_a_502() -> None:
    kinds = EnumCodec(rewards_pb2.RewardKind)
    assert reply_name(kinds, rewards_pb2.REWARD_KIND_BADGE) == "badge"
    for value in (rewards_pb2.REWARD_KIND_UNSPECIFIED, 99):
        with pytest.raises(UpstreamAnswerInvalid) as raised:
            reply_name(kinds, value)
        assert raised.value.status == 502
        assert "reward kind" in raised.value.detail


@pytest.mark.parametrize(
    ("code", "slug"),
    [
        (grpc.StatusCode.FAILED_PRECONDITION, "not-possible-now"),
        (grpc.StatusCode.ALREADY_EXISTS, "already-exists"),
        (grpc.StatusCode.PERMISSION_DENIED, "forbidden"),
        (grpc.StatusCode.NOT_FOUND, "not-found"),
        (grpc.StatusCode.UNAVAILABLE, "service-unavailable"),
        (grpc.StatusCode.DATA_LOSS, "bad-gateway"),
    ],
)
def test_every_downstream_refusal_has_a_documented_type(code: grpc.StatusCode, slug: str) -> None:
    _, problem = problem_of(client_raising(rpc_error(code, "benchmarks are turned off")))

    assert problem["type"] == PROBLEM_TYPE_BASE + slug
    assert slug in problem_types()


def test_no_problem_is_about_blank() -> None:
    for error in (RuntimeError("x"), rpc_error(grpc.StatusCode.INTERNAL, "x")):
        _, problem = problem_of(client_raising(error))
        assert problem["type"].startswith(PROBLEM_TYPE_BASE)
        assert problem["type"].removeprefix(PROBLEM_TYPE_BASE) in problem_types()


def test_a_named_refusal_of_a_service_answers_its_own_type() -> None:
    refusal = rpc_error_with_reason(
        grpc.StatusCode.FAILED_PRECONDITION, "benchmarks are turned off", "BENCHMARKS_DISABLED"
    )
    unknown = rpc_error_with_reason(grpc.StatusCode.FAILED_PRECONDITION, "no", "SOMETHING_NEW")

    status, problem = problem_of(client_raising(refusal))
    _, fallback = problem_of(client_raising(unknown))

    assert status == 409
    assert problem["type"] == PROBLEM_TYPE_BASE + "benchmarks-disabled"
    assert problem["title"] == "Benchmarks are turned off in this community"
    assert problem["detail"] == "benchmarks are turned off"
    assert fallback["type"] == PROBLEM_TYPE_BASE + "not-possible-now"


def test_every_refusal_a_service_names_has_a_documented_type() -> None:
    """A new domain error that refuses (409, 403, 429) needs its row in REFUSAL_TYPES."""
    refusing = {
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
    for module in (benchmarks_errors, billing_errors, resources_errors, rewards_errors, xp_errors):
        for error in vars(module).values():
            if (
                isinstance(error, type)
                and issubclass(error, DomainError)
                and error.__module__ == module.__name__
                and error.status in refusing
            ):
                slug = error.reason_code().lower().replace("_", "-")
                assert slug in REFUSAL_TYPES, error
                assert slug in problem_types()


def rpc_error_with_reason(code: grpc.StatusCode, details: str, reason: str) -> grpc.aio.AioRpcError:
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="wee5.dev"))
    status = status_pb2.Status(code=code.value[0], message=details, details=[info])
    trailing = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details, None)
