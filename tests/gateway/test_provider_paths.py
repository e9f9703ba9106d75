"""Ids the gateway and xp put into Whop's and MEE6's URL paths arrive at the local Whop
stand-in as one percent-encoded segment each: `?` cannot start a query, `/` and `..` cannot
reach another endpoint."""

from __future__ import annotations

import httpx
import pytest

from tests.support.whop_api import FakeWhop, serving
from wee5_gateway.core.whop_access import WhopApi, WhopRefused
from wee5_kit.provider_ids import path_segment
from wee5_xp.syncs.whop_forum import WhopClient as ForumClient


async def test_the_gateways_whop_calls_encode_each_id() -> None:
    whop = FakeWhop()
    async with serving(whop, "/api/v1") as url, httpx.AsyncClient(timeout=2.0) as http:
        api = WhopApi(http, url, whop.api_key)
        await api.access_level("user_1?x=", "..")  # an unknown pair: no_access
        with pytest.raises(WhopRefused):
            await api.company_of("exp_1?x=")

    assert [call.raw_path for call in whop.calls] == [
        "/api/v1/users/user_1%3Fx%3D/access/%2E%2E",
        "/api/v1/experiences/exp_1%3Fx%3D",
    ]
    assert all(not call.query for call in whop.calls)


async def test_xps_whop_user_lookup_encodes_the_id() -> None:
    whop = FakeWhop()
    async with (
        serving(whop, "/api/v1") as url,
        ForumClient(url, whop.api_key, timeout=2.0) as client,
    ):
        assert (await client.user("..")).display_name is None

    assert [call.raw_path for call in whop.calls] == ["/api/v1/users/%2E%2E"]


def test_a_path_segment_is_never_empty_nor_a_dot_segment() -> None:
    assert path_segment(".") == "%2E"
    assert path_segment("a.b") == "a.b"
    assert path_segment("123?x=#/") == "123%3Fx%3D%23%2F"
    with pytest.raises(ValueError, match="cannot be empty"):
        path_segment("")
