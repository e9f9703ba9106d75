"""Settings of the resources service, from `WEE5_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from wee5_kit.settings import KitSettings


class ResourcesSettings(KitSettings):
    # Where files live: `local` (a directory, served by this process's own file endpoint
    # with HMAC-signed URLs) or `s3` (any S3-compatible store, presigned URLs).
    storage_backend: Literal["local", "s3"] = "local"
    storage_dir: Path = Path("./var/storage")
    # HMAC key of the local backend's signed URLs. Unset: a development key that is in the
    # source code (a warning says so at startup) — always set it in production.
    storage_signing_key: SecretStr | None = Field(default=None, min_length=32)

    # The local file endpoint: the address and port this process serves signed URLs on, and
    # the base URL clients reach it at (behind an ingress in production, where the chart sets
    # the address to 0.0.0.0). Without a signing key it must stay a loopback address.
    resources_http_host: str = "127.0.0.1"
    resources_http_port: int = 8010
    resources_public_url: str = "http://127.0.0.1:8010"
    # Browser origins whose pages upload straight to the file endpoint (CORS for PUT only),
    # comma-separated. Unset: the gateway's public origin (`WEE5_PUBLIC_URL`), where the admin
    # pages live; inside Whop's iframe add the origin Whop serves the app at.
    public_url: str = "http://127.0.0.1:8000"
    resources_upload_origins: Annotated[tuple[str, ...], NoDecode] = ()

    # S3-compatible storage (AWS S3, MinIO, Cloudflare R2, Supabase Storage's S3 endpoint…).
    s3_endpoint_url: str | None = None
    s3_bucket: str = "wee5-resources"
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    # `path` (bucket in the path: MinIO, Supabase) or `virtual` (bucket in the host name).
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"

    # Signed upload and download URLs stay valid this long.
    resources_url_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    # With S3, a download URL (other than a video's) lives at most this long: a presigned URL
    # works for whoever holds it, and S3 cannot check that its member may still download.
    resources_s3_download_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    # The largest file an admin may upload.
    resources_max_upload_bytes: int = Field(default=2 * 1024**3, ge=1)

    @field_validator("resources_upload_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value

    @property
    def upload_origins(self) -> frozenset[str]:
        """The origins allowed to upload from a browser, as browsers send them in `Origin`."""
        if self.resources_upload_origins:
            return frozenset(origin.rstrip("/") for origin in self.resources_upload_origins)
        parts = urlsplit(self.public_url)
        return frozenset({f"{parts.scheme}://{parts.netloc}"})
