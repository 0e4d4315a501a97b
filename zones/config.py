"""Zone definitions for one camera, as written in the site YAML.

Coordinates are in the image, normalised to 0..1 (x right, y down), so a zone drawn on a
preview survives a change of stream resolution. Geometry is checked at load: a polygon
that crosses itself or a polyline of one point is refused with a message naming it.
"""

from __future__ import annotations

import itertools
from datetime import time
from typing import Annotated

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from shapely.geometry import LineString, Polygon
from shapely.validation import explain_validity

NormPoint = tuple[Annotated[float, Field(ge=0.0, le=1.0)], Annotated[float, Field(ge=0.0, le=1.0)]]
_Metres = Annotated[float, Field(allow_inf_nan=False, ge=-1e5, le=1e5)]
MetrePoint = tuple[_Metres, _Metres]
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


class StaffingHours(_Strict):
    """When a post must be staffed, in the site's local time."""

    start: time
    end: time
    #: ISO weekdays, 1 = Monday.
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5, 6, 7], min_length=1
    )

    @model_validator(mode="after")
    def _ordered(self) -> StaffingHours:
        if self.end <= self.start:
            raise ValueError(f"staffing hours end {self.end} must be after start {self.start}")
        return self


class Post(_Strict):
    """A place that must be staffed by a party member (a red helmet) in working hours."""

    name: ZoneName
    polygon: list[NormPoint] = Field(min_length=3)
    max_unattended_s: float = Field(default=300.0, gt=0.0)
    #: Helmet roles that count as staffing the post (see attributes.role_by_colour).
    staffed_by_roles: list[str] = Field(default_factory=lambda: ["party_member"], min_length=1)
    #: This post's own staffing hours; None: the post_unattended rule's working_hours.
    hours: list[StaffingHours] | None = Field(default=None, min_length=1)

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
        for label, pts in (
            ("image_points", self.image_points),
            ("ground_points_m", self.ground_points_m),
        ):
            triple = _collinear_triple(pts)
            if triple is not None:
                raise ValueError(
                    f"calibration {label}: points {triple} are collinear or repeated; "
                    "use four points, no three on one line"
                )
        w = _projective_w(self)
        if not (np.all(w > 0) or np.all(w < 0)):
            raise ValueError(
                "calibration image_points and ground_points_m do not correspond (the mapping "
                "folds the plane: check that both lists name the corners in the same order)"
            )
        return self


def _collinear_triple(points: list[tuple[float, float]]) -> tuple[int, int, int] | None:
    """Indices of three (nearly) collinear points, relative to the set's size, or None."""
    pts = np.asarray(points, dtype=np.float64)
    extent = float(np.ptp(pts, axis=0).max())
    if extent == 0.0:
        return (0, 1, 2)
    for triple in itertools.combinations(range(len(pts)), 3):
        a, b, c = pts[list(triple)]
        area2 = abs((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))
        if area2 <= 1e-6 * extent * extent:
            return triple
    return None


def _projective_w(
    calibration: GroundCalibration, points: list[NormPoint] | None = None
) -> npt.NDArray[np.float64]:
    """The homography's w at image points (default: the calibration's own four points).

    w has one sign on the ground side of the horizon; a point with the other sign has
    no place on the ground."""
    import cv2  # only when a calibration is present

    src = np.asarray(calibration.image_points, dtype=np.float32)
    dst = np.asarray(calibration.ground_points_m, dtype=np.float32)
    h = cv2.getPerspectiveTransform(src, dst)
    pts = src.astype(np.float64) if points is None else np.asarray(points, dtype=np.float64)
    return np.asarray(np.column_stack([pts, np.ones(len(pts))]) @ h[2])


class CameraZones(_Strict):
    # calibration is declared first so that the edges' validator can see it.
    calibration: GroundCalibration | None = None
    restricted: list[RestrictedZone] = Field(default_factory=list)
    edges: list[FallEdge] = Field(default_factory=list)
    posts: list[Post] = Field(default_factory=list)

    @field_validator("edges")
    @classmethod
    def _metres_need_calibration(
        cls, edges: list[FallEdge], info: ValidationInfo
    ) -> list[FallEdge]:
        if "calibration" not in info.data:
            return edges  # the calibration itself is invalid and already reported
        calibration: GroundCalibration | None = info.data["calibration"]
        for i, edge in enumerate(edges):
            if edge.danger_distance_m is None:
                continue
            if calibration is None:
                raise ValueError(
                    f"edges[{i}] {edge.name!r} uses danger_distance_m but the camera has no "
                    "calibration; add zones.calibration or use danger_distance"
                )
            w = _projective_w(calibration, edge.polyline)
            if np.any(w * np.sign(_projective_w(calibration)[0]) <= 1e-12):
                raise ValueError(
                    f"edges[{i}] {edge.name!r}: a polyline point lies beyond the horizon of "
                    "the ground calibration, so its distance in metres is undefined"
                )
        return edges

    @model_validator(mode="after")
    def _unique_names(self) -> CameraZones:
        names = [
            *(z.name for z in self.restricted),
            *(e.name for e in self.edges),
            *(p.name for p in self.posts),
        ]
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
