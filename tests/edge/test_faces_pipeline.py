"""CameraPipeline with faces on: real COCO ONNX persons, real tracker, real YuNet/SFace.

The man in the red helmet of red-white-helmets.mp4 is enrolled from frame 30; over the
next seconds his person track must carry his worker id and no other track may.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np
import pytest

from sitewatch.edge.config import CameraConfig, FacesConfig, SiteConfig, SiteInfo
from sitewatch.edge.detections import WORKER_ID
from sitewatch.edge.detector import Detector
from sitewatch.edge.faces.stage import FaceStage
from sitewatch.edge.faces.tracks import FaceRegister
from sitewatch.edge.pipeline import CameraPipeline
from tests.conftest import shared_file

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def _frames(video: Path, first: int, last: int, step: int) -> list[np.ndarray]:
    out = []
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= first and (i - first) % step == 0:
                out.append(frame.to_ndarray(format="bgr24"))
            if i >= last:
                break
    return out


@pytest.mark.slow
def test_enrolled_worker_is_recognised_on_his_track(coco_model: Path) -> None:
    video = shared_file("data/videos/red-white-helmets.mp4")
    models_dir = str(coco_model.parent)
    faces_cfg = FacesConfig(enabled=True, models_dir=models_dir, detect_every_n_frames=1)
    site = SiteConfig(site=SiteInfo(id="site"), cameras=[CameraConfig(id="cam", source=str(video))])
    stage = FaceStage(faces_cfg, register=FaceRegister())
    enrol = _frames(video, 30, 30, 1)[0]
    red_man = max(
        (f for f in stage.detector.detect(enrol) if f.xyxy[2] < 700), key=lambda f: f.size_px
    )
    stage.register.set("w-red", [stage.embedder.embed(enrol, red_man)])

    detector = Detector(coco_model)
    pipeline = CameraPipeline(site, site.cameras[0], detector, frame_rate=6, faces=stage)
    ids_by_track: dict[int, set[str]] = {}
    centres_x: dict[int, list[float]] = {}
    for n, image in enumerate(_frames(video, 60, 150, 5)):
        result = pipeline.process(image, T0 + timedelta(seconds=n / 6))
        assert "faces" in result.timings_s
        persons = result.persons
        assert persons.tracker_id is not None
        for track_id, worker_id, xyxy in zip(
            persons.tracker_id, persons.data[WORKER_ID], persons.xyxy, strict=True
        ):
            ids_by_track.setdefault(int(track_id), set()).add(str(worker_id))
            centres_x.setdefault(int(track_id), []).append(float(xyxy[0] + xyxy[2]) / 2)
    recognised = [t for t, ids in ids_by_track.items() if "w-red" in ids]
    assert len(recognised) == 1, ids_by_track  # one track is given the identity ...
    # ... his: he stands in the middle of the frame, the white-helmet man at the right edge
    assert 250 < float(np.median(centres_x[recognised[0]])) < 650, centres_x
    assert ids_by_track[recognised[0]] <= {"", "w-red"}
