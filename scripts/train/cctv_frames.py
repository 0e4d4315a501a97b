"""Materialise the CCTV label sets (tests/data/cctv/) as folders ``sitewatch eval detect`` reads.

The labels name their frames ``<clip>_f<index>.txt`` (index = the frame's position in
decode order, from 0) or, for the construction-site-safety wide views, the image's stem.
The images are not committed (they are derived from shared data): this script decodes the
clips with PyAV and copies the still images, writing ``<out>/<set>/images/*.jpg`` and
``<out>/<set>/labels/*.txt`` for the sets (split by scene: the two turnstile clips share
frames, so they are one set):

    turnstile  turnstile-a.mp4 + turnstile-b.mp4 (site entrance, high camera)
    walkway    barrier-walkway.mp4 (dusk, panning)
    css        wide views of construction-site-safety/images

    python -m scripts.train.cctv_frames --out /tmp/cctv            # the three sets
    python -m scripts.train.cctv_frames --frames /tmp/f --every 6  # raw frames for labelling
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

import av
import cv2

from scripts.common import PROJECT_ROOT, shared_root

CCTV = PROJECT_ROOT / "tests" / "data" / "cctv"
LABELS = CCTV / "labels"
SETS = {"turnstile": ("turnstile-a", "turnstile-b"), "walkway": ("barrier-walkway",)}
CLIPS = tuple(clip for clips in SETS.values() for clip in clips)
FRAME_NAME = re.compile(r"^(?P<clip>[a-z-]+)_f(?P<index>\d{6})$")
#: Label id -> detector class (and colour), for ``sitewatch eval detect --class-map``.
CLASS_MAP = (
    "0:person,1:head,2:helmet/red,3:helmet/yellow,4:helmet/white,5:helmet/blue,"
    "6:helmet/pink,7:helmet/orange,8:helmet"
)


def labelled_indices(clip: str) -> set[int]:
    found: set[int] = set()
    folder = LABELS / clip
    for path in folder.glob("*.txt") if folder.is_dir() else []:
        match = FRAME_NAME.match(path.stem)
        if match and match["clip"] == clip:
            found.add(int(match["index"]))
    return found


def write_frames(clip: str, indices: set[int] | None, every: int, out: Path) -> int:
    """Frames of ``clip`` (the listed indices, or every ``every``-th) as JPEG in ``out``."""
    video = shared_root() / "data" / "videos" / f"{clip}.mp4"
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    with av.open(str(video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            wanted = index in indices if indices is not None else index % every == 0
            if wanted:
                image = frame.to_ndarray(format="bgr24")
                name = out / f"{clip}_f{index:06d}.jpg"
                cv2.imwrite(str(name), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
                written += 1
    return written


def write_set(name: str, out: Path) -> int:
    """One eval folder: images/ and labels/ of every labelled frame of the set."""
    images, labels = out / name / "images", out / name / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    if name == "css":
        source = shared_root() / "data" / "construction-site-safety" / "images"
        images.mkdir(parents=True, exist_ok=True)
        stems = [p.stem for p in (LABELS / "css").glob("*.txt")]
        for stem in stems:
            shutil.copyfile(source / f"{stem}.jpg", images / f"{stem}.jpg")
            shutil.copyfile(LABELS / "css" / f"{stem}.txt", labels / f"{stem}.txt")
        return len(stems)
    count = 0
    for clip in SETS[name]:
        count += write_frames(clip, labelled_indices(clip), 1, images)
        for label in (LABELS / clip).glob("*.txt"):
            shutil.copyfile(label, labels / label.name)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the eval sets here")
    parser.add_argument("--set", action="append", choices=[*SETS, "css"], help="default: all")
    parser.add_argument("--frames", type=Path, help="write raw frames here (for labelling)")
    parser.add_argument("--every", type=int, help="with --frames: every Nth frame (default 6)")
    parser.add_argument("--clip", action="append", choices=CLIPS, help="with --frames")
    args = parser.parse_args()
    if args.every is not None and args.frames is None:  # --out DIR --every N: raw frames
        args.frames, args.out = args.out, None
    if args.frames is not None:
        for clip in args.clip or CLIPS:
            count = write_frames(clip, None, max(args.every or 6, 1), args.frames / clip)
            print(f"{clip}: {count} frames -> {args.frames / clip}")
    if args.out is not None:
        for name in args.set or [*SETS, "css"]:
            print(f"{name}: {write_set(name, args.out)} labelled images -> {args.out / name}")
        print(f"class map: {CLASS_MAP}")
    if args.out is None and args.frames is None:
        parser.error("give --out and/or --frames")


if __name__ == "__main__":
    main()
