"""Config errors name the YAML path and the line; zone geometry is checked at load."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sitewatch.edge.config import ConfigError, load_config, parse_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]

HEAD = """\
site:
  id: s1
cameras:
  - id: cam
    source: video.mp4
    zones:
"""  # the zones of each case start on line 7


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text), source="site.yaml")
    assert str(info.value).startswith("site.yaml: ")
    return info.value.problems


def zone_problems(zones_yaml: str) -> list[str]:
    return problems(HEAD + textwrap.indent(textwrap.dedent(zones_yaml), " " * 6))


def test_the_shipped_examples_load() -> None:
    for name in ["configs/demo-site.yaml", "configs/examples/calibrated-site.yaml"]:
        config = load_config(PROJECT_ROOT / name)
        assert config.cameras


def test_unknown_key() -> None:
    text = "site:\n  id: s1\nrules:\n  no_helmet:\n    min_duration: 2\n"
    assert problems(text) == [
        "rules.no_helmet.min_duration (line 5): Extra inputs are not permitted"
    ]


def test_bad_type() -> None:
    text = "site:\n  id: s1\nrules:\n  fall_edge:\n    severity: deadly\n"
    [problem] = problems(text)
    assert problem.startswith("rules.fall_edge.severity (line 5): Input should be ")


def test_bad_number_in_a_camera() -> None:
    text = HEAD.replace("    zones:\n", "    detect_fps: fast\n")
    [problem] = problems(text)
    assert problem.startswith("cameras[0].detect_fps (line 6): Input should be a valid number")


def test_invalid_polygon() -> None:
    [problem] = zone_problems("""\
        restricted:
          - name: bow-tie
            polygon: [[0.1, 0.1], [0.5, 0.5], [0.5, 0.1], [0.1, 0.5]]
        """)
    assert problem.startswith("cameras[0].zones.restricted[0] (line 8): zone 'bow-tie': ")
    assert "invalid polygon (Self-intersection" in problem


def test_point_outside_the_frame() -> None:
    [problem] = zone_problems("""\
        posts:
          - name: gate
            polygon:
              - [0.1, 0.1]
              - [0.5, 0.1]
              - [0.5, -0.2]
        """)
    assert problem == (
        "cameras[0].zones.posts[0].polygon[2][1] (line 12): "
        "Input should be greater than or equal to 0"
    )


def test_metres_without_calibration() -> None:
    [problem] = zone_problems("""\
        edges:
          - name: ok
            polyline: [[0, 0.2], [1, 0.2]]
            danger_distance: 0.1
          - name: slab
            polyline: [[0, 0.5], [1, 0.5]]
            danger_distance_m: 2
        """)
    assert problem == (
        "cameras[0].zones.edges (line 7): edges[1] 'slab' uses danger_distance_m but the "
        "camera has no calibration; add zones.calibration or use danger_distance"
    )


def test_edge_needs_exactly_one_distance() -> None:
    [problem] = zone_problems("""\
        edges:
          - name: slab
            polyline: [[0, 0.5], [1, 0.5]]
        """)
    assert problem.startswith("cameras[0].zones.edges[0] (line 8): edge 'slab': give exactly one")


def test_degenerate_calibration() -> None:
    [problem] = zone_problems("""\
        calibration:
          image_points: [[0.1, 0.5], [0.5, 0.5], [0.9, 0.5], [0.5, 0.9]]
          ground_points_m: [[0, 0], [4, 0], [4, 8], [0, 8]]
        """)
    assert problem.startswith("cameras[0].zones.calibration (line 7): calibration image_points")
    assert "points (0, 1, 2) are collinear" in problem


def test_calibration_with_swapped_corners() -> None:
    [problem] = zone_problems("""\
        calibration:
          image_points: [[0.4, 0.5], [0.6, 0.5], [0.9, 1.0], [0.1, 1.0]]
          ground_points_m: [[0, 20], [4, 20], [0, 0], [4, 0]]
        """)
    assert problem.startswith("cameras[0].zones.calibration (line 7): ")
    assert "do not correspond" in problem


def test_metre_edge_beyond_the_horizon() -> None:
    [problem] = zone_problems("""\
        calibration:
          image_points: [[0.4, 0.5], [0.6, 0.5], [0.9, 1.0], [0.1, 1.0]]
          ground_points_m: [[0, 20], [4, 20], [4, 0], [0, 0]]
        edges:
          - name: sky
            polyline: [[0.2, 0.1], [0.8, 0.1]]
            danger_distance_m: 2
        """)
    assert problem.startswith("cameras[0].zones.edges (line 10): edges[0] 'sky': ")
    assert "beyond the horizon" in problem


def test_duplicate_zone_names() -> None:
    [problem] = zone_problems("""\
        restricted:
          - name: pit
            polygon: [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]
        posts:
          - name: pit
            polygon: [[0.6, 0.6], [0.9, 0.6], [0.9, 0.9]]
        """)
    assert problem == (
        "cameras[0].zones (line 6): zone names must be unique per camera, repeated: ['pit']"
    )


def test_unknown_timezone() -> None:
    [problem] = problems("site:\n  id: s1\n  timezone: Asia/Beijing\n")
    assert problem.startswith("site.timezone (line 3): unknown timezone 'Asia/Beijing'")


def test_yaml_syntax_error() -> None:
    [problem] = problems("site:\n  id: s1\ncameras:\n  - id: cam\n    source: [unclosed\n")
    assert problem.startswith("invalid YAML (line 6, column 1): ")


def test_yaml_tab_indentation() -> None:
    [problem] = problems("site:\n\tid: s1\n")
    assert problem.startswith("invalid YAML (line 2, column 1): ")


def test_several_problems_are_all_listed() -> None:
    text = "site:\n  id: s1\n  colour: red\nrules:\n  no_helmet:\n    cooldown_s: -1\n"
    found = problems(text)
    assert [p.split(":")[0] for p in found] == [
        "site.colour (line 3)",
        "rules.no_helmet.cooldown_s (line 6)",
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_odd_unknown_keys_keep_their_name() -> None:
    assert problems('site:\n  id: s1\n"a[b]": 1\nfloat: 2\n') == [
        "a[b] (line 3): Extra inputs are not permitted",
        "float (line 4): Extra inputs are not permitted",
    ]


def test_rule_defaults_survive_a_partial_rule_section() -> None:
    config = parse_config("site: {id: s1}\nrules:\n  restricted_zone: {cooldown_s: 5}\n")
    assert config.rules.restricted_zone.severity.value == "high"
    assert config.rules.restricted_zone.min_duration_s == 1.0
    assert config.rules.restricted_zone.cooldown_s == 5


@pytest.mark.parametrize("rule", ["no_helmet", "post_unattended", "party_member_helmet"])
def test_negative_durations_are_refused_for_every_rule(rule: str) -> None:
    [problem] = problems(f"site: {{id: s1}}\nrules:\n  {rule}:\n    min_duration_s: -1\n")
    assert problem == (
        f"rules.{rule}.min_duration_s (line 4): Input should be greater than or equal to 0"
    )


def test_calibration_in_metres_must_be_finite() -> None:
    [problem] = zone_problems("""\
        calibration:
          image_points: [[0.4, 0.5], [0.6, 0.5], [0.9, 1.0], [0.1, 1.0]]
          ground_points_m: [[0, 20], [4, .nan], [4, 0], [0, 0]]
        """)
    assert problem.startswith("cameras[0].zones.calibration.ground_points_m[1][1] (line 9): ")
    assert "finite number" in problem
