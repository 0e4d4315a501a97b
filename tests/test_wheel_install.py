"""The wheel, installed with no extras into a fresh venv, replays a clip from elsewhere.

This is what a user gets from ``pip install sitewatch``: one top-level package, its own
detector and helmet-colour model found inside the package (no fallback warning), and the
same events as the checkout gives for the same clip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, shared_file, shared_root

pytestmark = pytest.mark.slow
CLIP = "data/videos/red-white-helmets.mp4"
FALLBACK_WORDS = ("no helmet colour model", "using HSV hue votes", "instead: it detects people")


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the clone with the wheel installed (no extras); its bin/."""
    root = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    _run([*build, "-w", str(root / "dist"), str(PROJECT_ROOT)], cwd=root)
    wheels = list((root / "dist").glob("sitewatch-*.whl"))
    assert len(wheels) == 1, wheels
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", str(wheels[0])], cwd=root)
    return root / "venv" / "bin"


def _site_packages(bin_dir: Path) -> Path:
    found = list((bin_dir.parent / "lib").glob("python3*/site-packages"))
    assert len(found) == 1, found
    return found[0]


def test_the_wheel_installs_one_top_level_package_with_its_models(installed: Path) -> None:
    site = _site_packages(installed)
    dist_info = next(site.glob("sitewatch-*.dist-info"))
    assert (dist_info / "top_level.txt").read_text().split() == ["sitewatch"]
    records = (dist_info / "RECORD").read_text().splitlines()
    tops = {line.split(",")[0].split("/")[0] for line in records}
    assert tops <= {"sitewatch", dist_info.name, ".."}, tops
    for shipped in ("sitewatch-det.onnx", "sitewatch-det-int8.onnx", "helmet-colour.json"):
        assert (site / "sitewatch" / "models" / shipped).is_file(), shipped
    assert (site / "sitewatch" / "configs" / "demo-site.yaml").is_file()
    assert (site / "sitewatch" / "server" / "ui" / "templates" / "base.html").is_file()
    assert (site / "sitewatch" / "server" / "migrations" / "env.py").is_file()
    # the slim runtime: no training stack, one OpenCV
    names = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert not names & {"torch", "ultralytics", "torchvision"}, names
    assert len(names & {"opencv_python", "opencv_python_headless"}) == 1, names


def test_replay_from_outside_the_clone_uses_the_shipped_models(
    installed: Path, tmp_path: Path
) -> None:
    clip = shared_file(CLIP)
    env = {**os.environ, "SITEWATCH_SHARED": str(shared_root())}
    env.pop("PYTHONPATH", None)
    wheel_out, checkout_out = tmp_path / "wheel", tmp_path / "checkout"
    args = [str(clip), "--max-seconds", "12"]
    log = _run([str(installed / "sitewatch"), "replay", *args, "--out", str(wheel_out)], tmp_path)
    for words in FALLBACK_WORDS:
        assert words not in log, log
    messages = [json.loads(line) for line in (wheel_out / "events.jsonl").read_text().splitlines()]
    assert any(m.get("helmet_colour") for m in messages), "no helmet colour in any event"
    # the checkout's own replay of the same clip: the very same events
    checkout_cli = Path(sys.executable).parent / "sitewatch"
    _run([str(checkout_cli), "replay", *args, "--out", str(checkout_out)], PROJECT_ROOT)
    wheel_events = (wheel_out / "events.jsonl").read_bytes()
    assert wheel_events == (checkout_out / "events.jsonl").read_bytes()
