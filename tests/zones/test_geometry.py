"""Zone geometry: feet anchors, inside / outside / on the boundary, edge distances."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sitewatch.zones.config import CameraZones
from sitewatch.zones.geometry import CameraGeometry, GroundHomography, feet_anchors_norm

SQUARE = [[0.2, 0.2], [0.6, 0.2], [0.6, 0.6], [0.2, 0.6]]
#: A perspective view of a 4 m x 20 m strip: near corners at the bottom of the image.
TRAPEZOID: dict[str, list[list[float]]] = {
    "image_points": [[0.4, 0.5], [0.6, 0.5], [0.9, 1.0], [0.1, 1.0]],
    "ground_points_m": [[0, 20], [4, 20], [4, 0], [0, 0]],
}


def geometry(**zones: object) -> CameraGeometry:
    return CameraGeometry(CameraZones.model_validate(zones))


def test_feet_anchor_is_the_bottom_centre_normalised() -> None:
    anchors = feet_anchors_norm([[380, 100, 420, 200], [0, 0, 1000, 500]], (1000, 500))
    np.testing.assert_allclose(anchors, [[0.4, 0.4], [0.5, 1.0]])
    assert feet_anchors_norm(np.empty((0, 4)), (640, 480)).shape == (0, 2)
    with pytest.raises(ValueError, match="frame_wh"):
        feet_anchors_norm([[0, 0, 1, 1]], (0, 480))


def test_inside_outside_and_boundary_of_a_restricted_zone() -> None:
    geo = geometry(restricted=[{"name": "pit", "polygon": SQUARE}])
    anchors = [
        [0.4, 0.4],  # inside
        [0.7, 0.4],  # outside
        [0.6, 0.4],  # on an edge of the polygon
        [0.2, 0.2],  # on a vertex
        [0.4, 0.6000001],  # just outside
    ]
    inside = geo.inside_restricted(anchors)
    assert inside["pit"].tolist() == [True, False, True, True, False]
    assert geo.inside_restricted(np.empty((0, 2)))["pit"].shape == (0,)


def test_posts_use_the_same_convention() -> None:
    geo = geometry(posts=[{"name": "gate", "polygon": SQUARE}])
    assert geo.inside_posts([[0.6, 0.6], [0.61, 0.6]])["gate"].tolist() == [True, False]


def test_distance_to_an_edge_in_normalised_units() -> None:
    edge = {"name": "slab", "polyline": [[0.2, 0.5], [0.8, 0.5]], "danger_distance": 0.1}
    geo = geometry(edges=[edge])
    d = geo.edge_distances([[0.5, 0.4], [0.5, 0.5], [0.0, 0.5], [0.9, 0.9]])["slab"]
    np.testing.assert_allclose(d, [0.1, 0.0, 0.2, math.hypot(0.1, 0.4)])
    assert geo.edges["slab"].unit == "norm"


def test_homography_maps_calibration_points_and_lines() -> None:
    from sitewatch.zones.config import GroundCalibration

    h = GroundHomography(GroundCalibration.model_validate(TRAPEZOID))
    ground = h.to_ground_m(TRAPEZOID["image_points"])
    np.testing.assert_allclose(ground, TRAPEZOID["ground_points_m"], atol=1e-4)
    # A point on the image segment between two right-hand corners lies on ground x = 4.
    assert h.to_ground_m([[0.75, 0.75]])[0, 0] == pytest.approx(4.0, abs=1e-4)
    # The horizon of this view is at y = 1/3: above it there is no ground.
    assert h.on_ground([[0.5, 0.34], [0.5, 0.33]]).tolist() == [True, False]
    assert np.isnan(h.to_ground_m([[0.5, 0.1]])).all()


def test_distance_in_metres_through_a_perspective_calibration() -> None:
    # The edge is the left side of the strip (ground x = 0); a point on the right side
    # (ground x = 4) is 4 m away wherever it is along the strip.
    edge = {"name": "left", "polyline": [[0.1, 1.0], [0.4, 0.5]], "danger_distance_m": 1.0}
    geo = geometry(calibration=TRAPEZOID, edges=[edge])
    d = geo.edge_distances([[0.75, 0.75], [0.66, 0.6], [0.5, 1.0], [0.5, 0.1]])["left"]
    np.testing.assert_allclose(d[:3], [4.0, 4.0, 2.0], atol=1e-3)
    assert d[3] == math.inf  # beyond the horizon: never near the edge
    assert geo.edges["left"].unit == "m"


def test_normalised_edge_on_a_calibrated_camera_stays_normalised() -> None:
    edge = {"name": "e", "polyline": [[0.1, 0.9], [0.9, 0.9]], "danger_distance": 0.05}
    geo = geometry(calibration=TRAPEZOID, edges=[edge])
    np.testing.assert_allclose(geo.edge_distances([[0.5, 0.8]])["e"], [0.1])


def test_pixel_zones_are_scaled_and_cached_per_frame_size() -> None:
    edge = {"name": "slab", "polyline": [[0.0, 0.5], [1.0, 0.5]], "danger_distance": 0.1}
    geo = geometry(restricted=[{"name": "pit", "polygon": SQUARE}], edges=[edge])
    px = geo.pixel_zones((1920, 1080))
    assert px.restricted["pit"].tolist() == [[384, 216], [1152, 216], [1152, 648], [384, 648]]
    assert px.edges["slab"].tolist() == [[0, 540], [1920, 540]]
    assert geo.pixel_zones((1920, 1080)) is px
    assert geo.pixel_zones((640, 360)).edges["slab"].tolist() == [[0, 180], [640, 180]]
