"""The resource library's routes: listing and search, direct-to-storage uploads, admin edits,
signed downloads and download stats. Files never pass through the gateway."""

from __future__ import annotations

from wee5_gateway.resources.controller import ResourcesController, ResourceSettingsController

__all__ = ["ResourceSettingsController", "ResourcesController"]
