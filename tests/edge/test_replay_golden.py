"""`sitewatch replay` on the shared clips gives the recorded events.jsonl, byte for byte.

The files in tests/data/replay-golden/ were written by ``sitewatch replay CLIP --out DIR``
(defaults: no site config, the shipped detector and colour model) before the packaging
change (issue 13), so a refactor that changes any event, time, id, colour or snapshot
name shows here. A deliberate change of the model or of the pipeline's defaults rewrites
them (same command) in the commit that makes it, saying why.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, shared_file

pytestmark = pytest.mark.slow
GOLDEN = PROJECT_ROOT / "tests" / "data" / "replay-golden"
CLIPS = ["concrete-pour-crew", "red-white-helmets", "turnstile-a", "barrier-walkway"]


@pytest.mark.parametrize("clip", CLIPS)
def test_replay_gives_the_recorded_events(clip: str, tmp_path: Path) -> None:
    video = shared_file(f"data/videos/{clip}.mp4")
    cli = Path(sys.executable).parent / "sitewatch"
    done = subprocess.run(
        [str(cli), "replay", str(video), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expected = (GOLDEN / f"{clip}.events.jsonl").read_text().splitlines()
    produced = (tmp_path / "events.jsonl").read_text().splitlines()
    assert produced == expected  # line by line, so a failure shows the first message that differs
