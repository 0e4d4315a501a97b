"""Real media for the browser tests: an H.264 MP4 clip (PyAV/libx264) and JPEG snapshots
cut from a real site video in ../shared, or from synthetic frames when it is absent."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from tests.conftest import shared_root

SOURCE_VIDEO = "data/videos/concrete-pour-crew.mp4"
CLIP_WH = (320, 180)
CLIP_FPS = 15
PERSON_XYXY = (120.0, 40.0, 170.0, 150.0)  # a box in CLIP_WH pixels, drawn on the snapshot


def _synthetic_frames(count: int) -> list[np.ndarray]:
    width, height = CLIP_WH
    frames = []
    for i in range(count):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:, :, 0] = np.linspace(40, 200, width, dtype=np.uint8)[None, :]
        frame[:, :, 1] = 90
        x = 20 + i * 6
        cv2.rectangle(frame, (x, 60), (x + 40, 140), (30, 200, 250), -1)
        frames.append(frame)
    return frames


def source_frames(count: int) -> list[np.ndarray]:
    """``count`` BGR frames at CLIP_WH: every other frame of the real video if present."""
    path = shared_root() / SOURCE_VIDEO
    if not path.exists():
        return _synthetic_frames(count)
    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % 2:
                continue
            bgr = frame.to_ndarray(format="bgr24")
            frames.append(cv2.resize(bgr, CLIP_WH, interpolation=cv2.INTER_AREA))
            if len(frames) == count:
                break
    return frames


def write_clip(path: Path, frames: list[np.ndarray], fps: int = CLIP_FPS) -> Path:
    """Encode ``frames`` as H.264 (yuv420p) in an MP4 with the index at the front."""
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = CLIP_WH
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {"preset": "ultrafast", "crf": "28"}
        for frame in frames:
            video_frame = av.VideoFrame.from_ndarray(frame, format="bgr24")
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_jpeg(path: Path, frame: np.ndarray, box_xyxy: tuple[float, ...] | None = None) -> Path:
    image = frame.copy()
    if box_xyxy is not None:
        x1, y1, x2, y2 = (int(v) for v in box_xyxy)
        cv2.rectangle(image, (x1, y1), (x2, y2), (0, 0, 255), 2)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok, "OpenCV could not encode a JPEG"
    path.write_bytes(encoded.tobytes())
    return path


def make_event_media(folder: Path, clip_frames: int = 30) -> dict[str, Path]:
    """snapshot (boxed), snapshot_clean, clip, face and an evidence photo in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = source_frames(clip_frames)
    middle = frames[len(frames) // 2]
    x1, y1 = int(PERSON_XYXY[0]), int(PERSON_XYXY[1])
    return {
        "clip": write_clip(folder / "clip.mp4", frames),
        "snapshot": write_jpeg(folder / "snapshot.jpg", middle, PERSON_XYXY),
        "snapshot_clean": write_jpeg(folder / "clean.jpg", middle),
        "face": write_jpeg(folder / "face.jpg", middle[y1 : y1 + 48, x1 : x1 + 48]),
        "evidence": write_jpeg(folder / "evidence.jpg", frames[-1]),
    }
