"""``sitewatch edge run`` refuses unusable set-ups at once, naming what is wrong and where."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from sitewatch.cli import app

runner = CliRunner()


def test_bad_config_is_refused_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("site: {id: s1}\ncameras:\n  - id: cam1\n    source: a.mp4\n    fps: 5\n")
    result = runner.invoke(app, ["edge", "run", "--config", str(config)])
    assert result.exit_code == 2
    assert "cameras[0].fps (line 5)" in result.output


def write_config(folder: Path) -> Path:
    config = folder / "site.yaml"
    config.write_text(
        "site: {id: s1}\n"
        "model: {path: nowhere.onnx}\n"
        "cameras: [{id: cam1, source: a.mp4}]\n"
        "server: {url: 'http://127.0.0.1:9', token_file: device.token}\n"
        f"outbox: {{path: {folder / 'spool'}}}\n"
    )
    return config


def test_missing_token_file_is_named(tmp_path: Path) -> None:
    result = runner.invoke(app, ["edge", "run", "--config", str(write_config(tmp_path))])
    assert result.exit_code == 2
    assert f"{tmp_path}/device.token" in result.output and "cannot read" in result.output


def test_missing_model_is_named(tmp_path: Path) -> None:
    (tmp_path / "device.token").write_text("t0k3n\n")
    result = runner.invoke(app, ["edge", "run", "--config", str(write_config(tmp_path))])
    assert result.exit_code == 2
    assert "nowhere.onnx" in result.output and "not found" in result.output
