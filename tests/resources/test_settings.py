"""Storage settings that would be unsafe are refused before the process serves anything."""

from __future__ import annotations

import pydantic
import pytest

from wee5_resources.config import ResourcesSettings
from wee5_resources.server import _check_signing_key, build, is_loopback
from wee5_resources.storage import UrlSigner, build_storage


async def test_public_file_endpoint_without_a_signing_key_refuses_to_start() -> None:
    settings = ResourcesSettings(
        resources_public_url="https://files.example.com", storage_signing_key=None
    )
    with pytest.raises(RuntimeError, match="WEE5_STORAGE_SIGNING_KEY is required"):
        await build(settings)


def test_a_short_signing_key_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError):
        ResourcesSettings(storage_signing_key="too-short")


def _development_key_check(host: str, public_url: str) -> None:
    settings = ResourcesSettings(
        resources_http_host=host, resources_public_url=public_url, storage_signing_key=None
    )
    _check_signing_key(build_storage(settings), settings)


@pytest.mark.parametrize(
    ("host", "public_url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8010"),  # a loopback URL, yet every interface listens
        ("::", "http://localhost:8010"),
        ("192.168.1.20", "http://127.0.0.1:8010"),
        ("127.0.0.1", "http://127.evil.example:8010"),  # looks like loopback, is a name
        ("127.0.0.1", "http://files.example.com"),
    ],
)
def test_the_development_key_needs_a_loopback_file_endpoint(host: str, public_url: str) -> None:
    with pytest.raises(RuntimeError, match="WEE5_STORAGE_SIGNING_KEY is required"):
        _development_key_check(host, public_url)


@pytest.mark.parametrize(
    ("host", "public_url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8010"),
        ("127.0.0.2", "http://localhost:8010"),
        ("localhost", "http://LOCALHOST.:8010"),
        ("::1", "http://[::1]:8010"),
    ],
)
def test_the_development_key_is_fine_on_a_loopback_file_endpoint(
    host: str, public_url: str
) -> None:
    _development_key_check(host, public_url)


def test_by_default_the_file_endpoint_listens_on_loopback_only() -> None:
    assert is_loopback(ResourcesSettings(storage_signing_key=None).resources_http_host)


def test_a_signed_file_name_cannot_shift_into_another_field() -> None:
    """Fields joined by newlines would sign `("a\\nb", "c")` and `("a", "b\\nc")` alike: a
    file name holding CR/LF could borrow another URL's signature."""
    signer = UrlSigner(b"k" * 32)
    first = signer.sign("GET", "c/0/a.pdf", 1, "text/plain\nx", "a.pdf")
    assert not signer.verify(first, "GET", "c/0/a.pdf", 1, "text/plain", "x\na.pdf")
    assert signer.verify(first, "GET", "c/0/a.pdf", 1, "text/plain\nx", "a.pdf")
