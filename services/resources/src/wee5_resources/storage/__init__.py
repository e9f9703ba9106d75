"""Object storage behind one interface: the local directory (with this process's signed-URL
file endpoint) or an S3-compatible bucket, chosen by `WEE5_STORAGE_BACKEND`."""

from __future__ import annotations

from wee5_resources.config import ResourcesSettings
from wee5_resources.storage.base import (
    Downloader,
    SignedRequest,
    Storage,
    StoredObject,
    content_disposition,
    new_storage_key,
)
from wee5_resources.storage.local import DEV_SIGNING_KEY, LocalStorage, UrlSigner
from wee5_resources.storage.s3 import S3Storage

__all__ = [
    "Downloader",
    "LocalStorage",
    "S3Storage",
    "SignedRequest",
    "Storage",
    "StoredObject",
    "UrlSigner",
    "build_storage",
    "content_disposition",
    "new_storage_key",
]


def build_storage(settings: ResourcesSettings) -> Storage:
    if settings.storage_backend == "s3":
        return S3Storage.from_settings(settings)
    key = settings.storage_signing_key
    signer = UrlSigner(key.get_secret_value().encode() if key else DEV_SIGNING_KEY)
    return LocalStorage(settings.storage_dir, signer, settings.resources_public_url)
