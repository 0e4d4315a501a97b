"""Zone geometry for one camera: feet anchors, inside tests and distances to edges.

Everything is computed in the config's normalised image coordinates (0..1, x right,
y down), so one prepared geometry serves every stream resolution; pixel polygons for
drawing are derived per frame size and cached.

Conventions (tested in tests/zones/test_geometry.py):

- A person's anchor is the bottom centre of the box (the feet), as in supervision.
- "Inside" a restricted zone or a post means the polygon *covers* the anchor: a point
  exactly on the boundary counts as inside (safety first: standing on the line of a
  restricted zone is already in it).
- The distance to a fall-risk edge is the shortest distance from the anchor to the
  polyline: on the ground plane in metres when the edge's danger distance is in metres
  (the camera then has a ground calibration), else in normalised image units, where
  x and y are fractions of the frame's width and height.
- An anchor that lies beyond the calibration's horizon (it has no place on the ground)
  has an infinite distance in metres: it is never "near" an edge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import LineString, Polygon

from sitewatch.zones.config import CameraZones, GroundCalibration, NormPoint

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
_MAX_CACHED_FRAME_SIZES = 8


def feet_anchors_norm(xyxy: npt.ArrayLike, frame_wh: tuple[int, int]) -> FloatArray:
    """Bottom centre of each (N,4) pixel box, normalised by the frame size -> (N,2)."""
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    width, height = frame_wh
    if width <= 0 or height <= 0:
        raise ValueError(f"frame_wh must be positive, got {frame_wh}")
    anchors = np.empty((len(boxes), 2), dtype=np.float64)
    anchors[:, 0] = (boxes[:, 0] + boxes[:, 2]) / 2.0 / width
    anchors[:, 1] = boxes[:, 3] / height
    return anchors


class GroundHomography:
    """Image (normalised) -> ground plane (metres), from four point correspondences."""

    def __init__(self, calibration: GroundCalibration) -> None:
        src = np.asarray(calibration.image_points, dtype=np.float32)
        dst = np.asarray(calibration.ground_points_m, dtype=np.float32)
        self.matrix: FloatArray = cv2.getPerspectiveTransform(src, dst).astype(np.float64)
        # The sign of the projective w at the calibration points marks the ground side of
        # the horizon; points with the other sign are "in the sky".
        self._w_sign = float(np.sign(self._w(np.asarray(calibration.image_points)).mean()))

    def _w(self, points_norm: FloatArray) -> FloatArray:
        h = self.matrix
        return np.asarray(h[2, 0] * points_norm[:, 0] + h[2, 1] * points_norm[:, 1] + h[2, 2])

    def on_ground(self, points_norm: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """True where the image point lies below the horizon (has a ground position)."""
        pts = np.asarray(points_norm, dtype=np.float64).reshape(-1, 2)
        return np.asarray(self._w(pts) * self._w_sign > 1e-12)

    def to_ground_m(self, points_norm: npt.ArrayLike) -> FloatArray:
        """(N,2) normalised image points -> (N,2) metres; NaN beyond the horizon."""
        pts = np.asarray(points_norm, dtype=np.float64).reshape(-1, 2)
        if len(pts) == 0:
            return np.empty((0, 2), dtype=np.float64)
        ground = cv2.perspectiveTransform(pts.reshape(-1, 1, 2), self.matrix).reshape(-1, 2)
        ground[~self.on_ground(pts)] = np.nan
        return np.asarray(ground, dtype=np.float64)


@dataclass(frozen=True)
class EdgeGeometry:
    name: str
    #: The polyline in normalised image coordinates (for drawing and normalised distances).
    line_norm: LineString
    #: The polyline on the ground plane in metres, when the danger distance is in metres.
    line_ground_m: LineString | None
    danger_distance: float
    unit: str  # "m" or "norm"


@dataclass(frozen=True)
class PixelZones:
    """Zone outlines in pixels of one frame size, as int32 (K,2) arrays for cv2 drawing."""

    restricted: dict[str, npt.NDArray[np.int32]]
    edges: dict[str, npt.NDArray[np.int32]]
    posts: dict[str, npt.NDArray[np.int32]]


class CameraGeometry:
    """Prepared shapely geometry of one camera's zones, with vectorised queries."""

    def __init__(self, zones: CameraZones) -> None:
        self.zones = zones
        self.homography = GroundHomography(zones.calibration) if zones.calibration else None
        self.restricted = {z.name: _prepared_polygon(z.polygon) for z in zones.restricted}
        self.posts = {p.name: _prepared_polygon(p.polygon) for p in zones.posts}
        self.edges = {
            e.name: self._edge(e.name, e.polyline, e.danger_distance_m, e.danger_distance)
            for e in zones.edges
        }
        self._pixel_cache: dict[tuple[int, int], PixelZones] = {}

    def _edge(
        self,
        name: str,
        polyline: list[NormPoint],
        distance_m: float | None,
        distance_norm: float | None,
    ) -> EdgeGeometry:
        line_norm = LineString(polyline)
        if distance_m is None:
            assert distance_norm is not None  # zones.config guarantees exactly one
            return EdgeGeometry(name, line_norm, None, distance_norm, "norm")
        if self.homography is None:
            raise ValueError(f"edge {name!r} uses danger_distance_m but has no calibration")
        ground = self.homography.to_ground_m(polyline)
        if np.isnan(ground).any():
            raise ValueError(f"edge {name!r}: a polyline point lies beyond the horizon")
        return EdgeGeometry(name, line_norm, LineString(ground), distance_m, "m")

    def inside(self, polygon: Polygon, anchors_norm: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """(N,) True where the polygon covers the anchor (the boundary counts as inside)."""
        pts = np.asarray(anchors_norm, dtype=np.float64).reshape(-1, 2)
        if len(pts) == 0:
            return np.zeros(0, dtype=bool)
        return np.asarray(shapely.covers(polygon, shapely.points(pts)), dtype=bool)

    def inside_restricted(self, anchors_norm: npt.ArrayLike) -> dict[str, npt.NDArray[np.bool_]]:
        return {name: self.inside(poly, anchors_norm) for name, poly in self.restricted.items()}

    def inside_posts(self, anchors_norm: npt.ArrayLike) -> dict[str, npt.NDArray[np.bool_]]:
        return {name: self.inside(poly, anchors_norm) for name, poly in self.posts.items()}

    def edge_distances(self, anchors_norm: npt.ArrayLike) -> dict[str, FloatArray]:
        """(N,) distance from each anchor to each edge, in that edge's unit (inf if none)."""
        pts = np.asarray(anchors_norm, dtype=np.float64).reshape(-1, 2)
        ground: FloatArray | None = None
        out: dict[str, FloatArray] = {}
        for name, edge in self.edges.items():
            if edge.line_ground_m is not None:
                if ground is None:
                    assert self.homography is not None
                    ground = self.homography.to_ground_m(pts)
                out[name] = _distances(edge.line_ground_m, ground)
            else:
                out[name] = _distances(edge.line_norm, pts)
        return out

    def pixel_zones(self, frame_wh: tuple[int, int]) -> PixelZones:
        """Zone outlines in pixels for drawing; cached per frame size."""
        cached = self._pixel_cache.get(frame_wh)
        if cached is not None:
            return cached
        scale = np.asarray(frame_wh, dtype=np.float64)

        def px(points: list[NormPoint]) -> npt.NDArray[np.int32]:
            return np.rint(np.asarray(points, dtype=np.float64) * scale).astype(np.int32)

        zones = self.zones
        result = PixelZones(
            restricted={z.name: px(z.polygon) for z in zones.restricted},
            edges={e.name: px(e.polyline) for e in zones.edges},
            posts={p.name: px(p.polygon) for p in zones.posts},
        )
        if len(self._pixel_cache) >= _MAX_CACHED_FRAME_SIZES:
            self._pixel_cache.pop(next(iter(self._pixel_cache)))
        self._pixel_cache[frame_wh] = result
        return result


def _prepared_polygon(points: list[NormPoint]) -> Polygon:
    polygon = Polygon(points)
    shapely.prepare(polygon)
    return polygon


def _distances(line: LineString, points: FloatArray) -> FloatArray:
    out = np.full(len(points), np.inf, dtype=np.float64)
    finite = np.isfinite(points).all(axis=1)
    if finite.any():
        out[finite] = shapely.distance(line, shapely.points(points[finite]))
    return out
