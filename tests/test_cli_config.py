"""`sitewatch config check` on the shipped examples: exit codes and messages."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from sitewatch.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "configs"
GOOD = EXAMPLES / "examples" / "calibrated-site.yaml"
BROKEN = EXAMPLES / "examples" / "broken-site.yaml"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["config", "check", *args])
    # rich wraps long lines at the terminal width; compare with whitespace collapsed
    return result.exit_code, " ".join(result.output.split())


def test_good_examples_pass() -> None:
    code, output = run(str(GOOD), str(EXAMPLES / "demo-site.yaml"))
    assert code == 0, output
    assert "site 'tower-b', 1 camera(s)" in output
    assert "site 'demo-site', 1 camera(s)" in output


def test_broken_example_fails_naming_every_problem_and_line() -> None:
    code, output = run(str(BROKEN))
    assert code == 1
    assert "broken-site.yaml: 5 problems:" in output
    for expected in [
        "rules.no_helmet.min_duration_s (line 9): Input should be a valid number",
        "rules.no_helmet.colour (line 10): Extra inputs are not permitted",
        "cameras[0].zones.restricted[0] (line 17): zone 'bow-tie': invalid polygon",
        "cameras[0].zones.restricted[1].polygon[1][0] (line 20): Input should be less than "
        "or equal to 1",
        "cameras[0].zones.edges (line 21): edges[0] 'scaffold-edge' uses danger_distance_m "
        "but the camera has no calibration",
    ]:
        assert expected in output


def test_one_broken_file_fails_the_whole_check(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    code, output = run(str(GOOD), str(missing))
    assert code == 1
    assert "site 'tower-b'" in output
    assert "missing.yaml: file not found" in output


def test_messages_are_printed_verbatim_not_as_markup(tmp_path: Path) -> None:
    config = tmp_path / "markup.yaml"
    config.write_text(
        "site:\n  id: s1\ncameras:\n  - id: c\n    source: x\n    zones:\n      restricted:\n"
        '        - name: "[/red] pit"\n'
        "          polygon: [[0.1, 0.1], [0.5, 0.5], [0.5, 0.1], [0.1, 0.5]]\n",
        encoding="utf-8",
    )
    code, output = run(str(config))
    assert code == 1
    assert "cameras[0].zones.restricted[0] (line 8): zone '[/red] pit': invalid polygon" in output
