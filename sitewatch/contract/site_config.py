"""The zones a server manages for a site's cameras, which a box pulls
(``GET /api/v1/site-config?since_version=N``: 200 with this, 204 when the box has
the current version) and applies to its running cameras between two frames.

The box's YAML stays the base: a camera listed in ``cameras`` takes these zones in place
of its YAML zones; a camera not listed keeps its YAML zones. Zones are the same pydantic
model (:class:`sitewatch.zones.config.CameraZones`) on both sides, so the server refuses
what the box would refuse.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from sitewatch.zones.config import CameraZones


class SiteZones(BaseModel):
    #: Grows by one with every change on the server; 0: the server manages no zones.
    version: int = Field(ge=0)
    updated_at: datetime | None = None
    cameras: dict[str, CameraZones] = Field(default_factory=dict)
