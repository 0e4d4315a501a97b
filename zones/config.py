"""Zone definitions for one camera, as written in the site YAML.

Coordinates are in the image, normalised to 0..1 (x right, y down), so a zone drawn on a
preview survives a change of stream resolution. Geometry is checked at load: a polygon
that crosses itself or a polyline of one point is refused with a message naming it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from shapely.geometry import LineString, Polygon
from shapely.validation import explain_validity

NormPoint = tuple[Annotated[float, Field(ge=0.0, le=1.0)], Annotated[float, Field(ge=0.0, le=1.0)]]
MetrePoint = tuple[float, float]
ZoneName = Annotated[str, Field(min_length=1, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RestrictedZone(_Strict):
    """Nobody may stand inside (feet inside the polygon)."""

    name: ZoneName
    polygon: list[NormPoint] = Field(min_length=3)

    @model_validator(mode="after")
    def _valid_polygon(self) -> RestrictedZone:
        check_polygon(self.name, self.polygon)
        return self


class FallEdge(_Strict):
    """An unprotected edge (临边): people whose feet come closer than the danger distance."""

    name: ZoneName
    polyline: list[NormPoint] = Field(min_length=2)
    #: Danger distance in metres; needs the camera's ground calibration.
    danger_distance_m: float | None = Field(default=None, gt=0.0, le=50.0)
    #: Danger distance in normalised image units (fraction of the frame's diagonal-free
    #: axes); used when the camera is not calibrated.
    danger_distance: float | None = Field(default=None, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _one_distance(self) -> FallEdge:
        if (self.danger_distance_m is None) == (self.danger_distance is None):
            raise ValueError(
                f"edge {self.name!r}: give exactly one of danger_distance_m (metres, "
                "needs calibration) or danger_distance (normalised image units)"
            )
        line = LineString(self.polyline)
        if line.length == 0.0:
            raise ValueError(f"edge {self.name!r}: polyline has zero length")
        return self


class Post(_Strict):
    """A place that must be staffed by a party member (a red helmet) in working hours."""

    name: ZoneName
    polygon: list[NormPoint] = Field(min_length=3)
    max_unattended_s: float = Field(default=300.0, gt=0.0)
    #: Helmet roles that count as staffing the post (see attributes.role_by_colour).
    staffed_by_roles: list[str] = Field(default_factory=lambda: ["party_member"], min_length=1)

    @model_validator(mode="after")
    def _valid_polygon(self) -> Post:
        check_polygon(self.name, self.polygon)
        return self


class GroundCalibration(_Strict):
    """Four image points and where they lie on the ground, in metres (a homography)."""

    image_points: list[NormPoint] = Field(min_length=4, max_length=4)
    ground_points_m: list[MetrePoint] = Field(min_length=4, max_length=4)

    @model_validator(mode="after")
    def _not_degenerate(self) -> GroundCalibration:
        for label, pts in (("image_points", self.image_points), ("ground_points_m", self.ground_points_m)):
            if Polygon(pts).area <= 1e-9:
                raise ValueError(f"calibration {label} are collinear or repeated: {pts}")
        return self


class CameraZones(_Strict):
    restricted: list[RestrictedZone] = Field(default_factory=list)
    edges: list[FallEdge] = Field(default_factory=list)
    posts: list[Post] = Field(default_factory=list)
    calibration: GroundCalibration | None = None

    @model_validator(mode="after")
    def _metres_need_calibration(self) -> CameraZones:
        for edge in self.edges:
            if edge.danger_distance_m is not None and self.calibration is None:
                raise ValueError(
                    f"edge {edge.name!r} uses danger_distance_m but the camera has no "
                    "calibration; add zones.calibration or use danger_distance"
                )
        names = [z.name for z in (*self.restricted, *self.edges, *self.posts)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"zone names must be unique per camera, repeated: {duplicates}")
        return self


def check_polygon(name: str, points: list[NormPoint]) -> None:
    polygon = Polygon(points)
    if not polygon.is_valid:
        raise ValueError(f"zone {name!r}: invalid polygon ({explain_validity(polygon)})")
    if polygon.area <= 1e-9:
        raise ValueError(f"zone {name!r}: polygon has no area")
