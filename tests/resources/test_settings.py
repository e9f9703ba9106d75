"""Storage settings that would be unsafe are refused before the process serves anything."""

from __future__ import annotations

import pydantic
import pytest

from wee5_resources.config import ResourcesSettings
from wee5_resources.server import build


async def test_public_file_endpoint_without_a_signing_key_refuses_to_start() -> None:
    settings = ResourcesSettings(
        resources_public_url="https://files.example.com", storage_signing_key=None
    )
    with pytest.raises(RuntimeError, match="WEE5_STORAGE_SIGNING_KEY is required"):
        await build(settings)


def test_a_short_signing_key_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError):
        ResourcesSettings(storage_signing_key="too-short")
