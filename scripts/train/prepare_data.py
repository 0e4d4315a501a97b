"""Prepare the detector's training data from ../shared/data (step 1 of the recipe).

Classes of the detector: 0 person, 1 head (bare), 2 helmet (a head with a hard hat).

* helmet-colour (head boxes): 0 none -> head, 1 red / 2 blue / 3 white / 4 yellow -> helmet
  (the colour is kept for the colour evaluation, see ``val-eval/``).
* hard-hat-workers: 0 helmet -> helmet, 2 head -> head, 1 person dropped (26 labels only).
* construction-site-safety (``--with-css``, CC BY 4.0): 0 person, 1 head, 2 helmet, all of
  it to train (its mosaics and its clean frames, except the wide views that
  tests/data/cctv/ relabelled for evaluation). Its head and helmet boxes are converted to
  the whole-head convention of the other sets (:func:`whole_head`).
* person: not labelled in the first two sets, so pseudo-labelled with the COCO model
  ../shared/models/yolov8n-coco-int8.onnx at ``--person-conf`` (default 0.4, see the
  model card for why).

Split by image: helmet-colour images go to val with probability ``--val-fraction``
(seeded); hard-hat-workers' own train split to train, its val and test splits to val.
The split is written to ``models/data-split/{train,val}.txt`` as ``<dataset>/<file>``
lines; with ``--split-from`` an existing split is reused instead of drawn.

Output (outside the repo), default /work/datasets/sitewatch-det::

    images/{train,val}/*.jpg   symlinks to ../shared
    labels/{train,val}/*.txt   YOLO txt, 3 classes
    val-eval/{images,labels}   val images with colour-carrying labels for
                               ``sitewatch eval detect`` (class map in val-eval/class_map.txt)
    data.yaml                  for Ultralytics
    persons.json               raw person pseudo-labels (cache; rerun reuses it)
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from scripts.common import PROJECT_ROOT, shared_root

logger = logging.getLogger("prepare_data")


DETECTOR_NAMES = ("person", "head", "helmet")
PERSON, HEAD, HELMET = 0, 1, 2
#: source dataset -> {source class id: (detector class id, colour or "")}; absent = dropped
CLASS_MAPS: dict[str, dict[int, tuple[int, str]]] = {
    "helmet-colour": {
        0: (HEAD, ""),
        1: (HELMET, "red"),
        2: (HELMET, "blue"),
        3: (HELMET, "white"),
        4: (HELMET, "yellow"),
    },
    "hard-hat-workers": {0: (HELMET, ""), 2: (HEAD, "")},
    "construction-site-safety": {0: (PERSON, ""), 1: (HEAD, ""), 2: (HELMET, "")},
}
CSS = "construction-site-safety"
#: The wide views relabelled for evaluation (never trained on).
CSS_EVAL_LIST = PROJECT_ROOT / "tests" / "data" / "cctv" / "css-wide-views.txt"
#: construction-site-safety's helmet box holds the shell only and its head box often the top
#: of the head: the whole head is about twice the shell's height and 1.3x a head's width
#: (checked on the 13 relabelled wide views: helmet IoU with the corrected boxes 0.51 ->
#: 0.78, 35 % -> 92 % at IoU >= 0.5).
CSS_HELMET_HEIGHT, CSS_HEAD_ASPECT = 2.0, 1.3
#: ids used in val-eval/ labels: detector classes plus colour-carrying helmet ids
EVAL_CLASS_MAP = (
    "0:person,1:head,2:helmet,3:helmet/red,4:helmet/blue,5:helmet/white,6:helmet/yellow"
)
EVAL_COLOUR_IDS = {"red": 3, "blue": 4, "white": 5, "yellow": 6}
DEFAULT_PERSON_CONF = 0.4


@dataclass(frozen=True)
class Sample:
    dataset: str
    image: Path
    label: Path
    copy: int = 0  # > 0: the same image listed again (a rare domain weighted up)

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.image.name}"

    @property
    def out_stem(self) -> str:
        prefix = {"helmet-colour": "hc", CSS: "css"}.get(self.dataset, "hhw")
        suffix = f"_copy{self.copy}" if self.copy else ""
        return f"{prefix}_{self.image.stem}{suffix}"


@dataclass(frozen=True)
class Box:
    class_id: int
    colour: str
    cxcywh: tuple[float, float, float, float]


def find_samples(data_root: Path) -> dict[str, list[Sample]]:
    """Images with their label files, keyed by the split they go to ("pool" = drawn)."""
    found: dict[str, list[Sample]] = {"pool": [], "train": [], "val": []}
    hc = data_root / "helmet-colour"
    for image in sorted((hc / "images").glob("*.jpg")):
        found["pool"].append(Sample("helmet-colour", image, hc / "labels" / f"{image.stem}.txt"))
    hhw = data_root / "hard-hat-workers"
    for split, target in (("train", "train"), ("val", "val"), ("test", "val")):
        for image in sorted((hhw / "images" / split).glob("*.jpg")):
            label = hhw / "labels" / split / f"{image.stem}.txt"
            found[target].append(Sample("hard-hat-workers", image, label))
    if not found["pool"] and not found["train"]:
        raise FileNotFoundError(f"no images under {hc}/images or {hhw}/images/*")
    found["css"] = css_samples(data_root / CSS)
    return found


def css_samples(root: Path) -> list[Sample]:
    """construction-site-safety's mosaics and clean frames, less the evaluation views."""
    held_out = set()
    if CSS_EVAL_LIST.exists():
        held_out = {line.split()[0] for line in CSS_EVAL_LIST.read_text().splitlines() if line}
    samples = []
    for folder in (root / "train_mosaic", root):
        for image in sorted((folder / "images").glob("*.jpg")):
            if image.stem not in held_out:
                samples.append(Sample(CSS, image, folder / "labels" / f"{image.stem}.txt"))
    return samples


def whole_head(box: Box) -> Box:
    """A construction-site-safety head or helmet box grown down to the whole head."""
    cx, cy, w, h = box.cxcywh
    if box.class_id == HELMET:
        height = max(h * CSS_HELMET_HEIGHT, w)
    elif box.class_id == HEAD:
        height = max(h, w * CSS_HEAD_ASPECT)
    else:
        return box
    top = cy - h / 2
    bottom = min(top + height, 1.0)
    return Box(box.class_id, box.colour, (cx, (top + bottom) / 2, w, bottom - top))


def split_samples(
    found: dict[str, list[Sample]], val_fraction: float, seed: int
) -> dict[str, list[Sample]]:
    rng = random.Random(seed)
    split = {"train": list(found["train"]), "val": list(found["val"])}
    for sample in found["pool"]:
        split["val" if rng.random() < val_fraction else "train"].append(sample)
    return split


def apply_split_file(found: dict[str, list[Sample]], split_dir: Path) -> dict[str, list[Sample]]:
    by_key = {s.key: s for group in found.values() for s in group}
    split: dict[str, list[Sample]] = {}
    for name in ("train", "val"):
        keys = (split_dir / f"{name}.txt").read_text().split()
        missing = [k for k in keys if k not in by_key]
        if missing:
            raise FileNotFoundError(
                f"{split_dir}/{name}.txt names {len(missing)} unknown images, first {missing[0]!r}"
            )
        split[name] = [by_key[k] for k in keys]
    return split


def read_source_boxes(sample: Sample) -> list[Box]:
    """Boxes of one source label file mapped to detector classes (line numbers in errors)."""
    class_map = CLASS_MAPS[sample.dataset]
    boxes: list[Box] = []
    if not sample.label.exists():
        return boxes
    for line_no, line in enumerate(sample.label.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            source_id = int(parts[0])
            cx, cy, w, h = (float(v) for v in parts[1:5])
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{sample.label}:{line_no}: bad YOLO line {line!r}") from exc
        if source_id in class_map:
            class_id, colour = class_map[source_id]
            boxes.append(Box(class_id, colour, (cx, cy, w, h)))
    if sample.dataset == CSS:
        boxes = [whole_head(b) for b in boxes]
    return boxes


def format_boxes(boxes: Iterable[Box], colour_ids: bool = False) -> str:
    lines = []
    for box in boxes:
        class_id = EVAL_COLOUR_IDS[box.colour] if colour_ids and box.colour else box.class_id
        lines.append(f"{class_id} " + " ".join(f"{v:.6f}" for v in box.cxcywh))
    return "\n".join(lines) + ("\n" if lines else "")


def label_persons(
    samples: list[Sample], model_path: Path, cache_path: Path, min_conf: float = 0.1
) -> dict[str, list[list[float]]]:
    """COCO person boxes per image as ``[cx, cy, w, h, conf]`` (normalised), cached."""
    cache: dict[str, list[list[float]]] = {}
    if cache_path.exists():
        cache = json.loads(cache_path.read_text())
    todo = [s for s in samples if s.key not in cache]
    if todo:
        from ultralytics import YOLO
        from ultralytics.engine.results import Results

        model = YOLO(str(model_path), task="detect")
        logger.info("pseudo-labelling persons on %d images with %s", len(todo), model_path)
        for index, sample in enumerate(todo, start=1):
            # predict() is typed for every mode; without stream=True it returns list[Results]
            results = model.predict(
                str(sample.image), imgsz=640, conf=min_conf, iou=0.6, classes=[0], verbose=False
            )
            boxes = cast(list[Results], results)[0].boxes
            assert boxes is not None  # a detect model's results always have boxes
            rows = [
                [*(round(float(v), 6) for v in xywhn), round(float(c), 4)]
                for xywhn, c in zip(boxes.xywhn.tolist(), boxes.conf.tolist(), strict=True)
            ]
            cache[sample.key] = rows
            if index % 200 == 0:
                logger.info("  %d / %d", index, len(todo))
                cache_path.write_text(json.dumps(cache))
        cache_path.write_text(json.dumps(cache))
    return cache


def link(target: Path, link_path: Path) -> None:
    link_path.parent.mkdir(parents=True, exist_ok=True)
    if link_path.is_symlink() or link_path.exists():
        link_path.unlink()
    link_path.symlink_to(target.resolve())


def write_dataset(
    out: Path,
    split: dict[str, list[Sample]],
    persons: dict[str, list[list[float]]],
    person_conf: float,
) -> dict[str, dict[str, int]]:
    """Write images (links), labels, val-eval and data.yaml; return instance counts."""
    counts: dict[str, dict[str, int]] = {}
    for name, samples in split.items():
        counts[name] = {n: 0 for n in (*DETECTOR_NAMES, "images")}
        for sample in samples:
            boxes = read_source_boxes(sample)
            boxes += [
                Box(PERSON, "", (r[0], r[1], r[2], r[3]))
                for r in persons.get(sample.key, [])
                if r[4] >= person_conf
            ]
            link(sample.image, out / "images" / name / f"{sample.out_stem}.jpg")
            label_path = out / "labels" / name / f"{sample.out_stem}.txt"
            label_path.parent.mkdir(parents=True, exist_ok=True)
            label_path.write_text(format_boxes(boxes))
            if name == "val":
                link(sample.image, out / "val-eval" / "images" / f"{sample.out_stem}.jpg")
                eval_label = out / "val-eval" / "labels" / f"{sample.out_stem}.txt"
                eval_label.parent.mkdir(parents=True, exist_ok=True)
                eval_label.write_text(format_boxes(boxes, colour_ids=True))
            counts[name]["images"] += 1
            for box in boxes:
                counts[name][DETECTOR_NAMES[box.class_id]] += 1
    (out / "val-eval" / "class_map.txt").write_text(EVAL_CLASS_MAP + "\n")
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(DETECTOR_NAMES))
    (out / "data.yaml").write_text(
        f"path: {out.resolve()}\ntrain: images/train\nval: images/val\nnames:\n{names}\n"
    )
    return counts


def write_split(split: dict[str, list[Sample]], split_dir: Path) -> None:
    split_dir.mkdir(parents=True, exist_ok=True)
    for name, samples in split.items():
        (split_dir / f"{name}.txt").write_text("".join(f"{s.key}\n" for s in samples))


def prepare(
    data_root: Path,
    out: Path,
    *,
    split_dir: Path,
    person_model: Path,
    person_conf: float = DEFAULT_PERSON_CONF,
    val_fraction: float = 0.15,
    seed: int = 0,
    reuse_split: bool = False,
    limit: int | None = None,
    with_css: bool = False,
    css_copies: int = 1,
) -> dict[str, dict[str, int]]:
    """Run the whole preparation; ``limit`` keeps the first N images per split (tests)."""
    found = find_samples(data_root)
    if reuse_split:
        split = apply_split_file(found, split_dir)
    else:
        split = split_samples(found, val_fraction, seed)
        if limit is not None:
            split = {name: samples[:limit] for name, samples in split.items()}
        write_split(split, split_dir)
    out.mkdir(parents=True, exist_ok=True)
    persons = label_persons(split["train"] + split["val"], person_model, out / "persons.json")
    if with_css:  # people labelled by hand there: no pseudo-labels
        split["train"] = split["train"] + [
            Sample(s.dataset, s.image, s.label, copy)
            for copy in range(css_copies)
            for s in found["css"][:limit]
        ]
    counts = write_dataset(out, split, persons, person_conf)
    (out / "counts.json").write_text(json.dumps(counts, indent=2))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shared = shared_root()
    parser.add_argument("--data-root", type=Path, default=shared / "data")
    parser.add_argument("--out", type=Path, default=Path("/work/datasets/sitewatch-det"))
    parser.add_argument("--split-dir", type=Path, default=PROJECT_ROOT / "models" / "data-split")
    parser.add_argument(
        "--person-model", type=Path, default=shared / "models" / "yolov8n-coco-int8.onnx"
    )
    parser.add_argument("--person-conf", type=float, default=DEFAULT_PERSON_CONF)
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--new-split",
        action="store_true",
        help="draw a new split instead of reusing --split-dir's files",
    )
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--with-css", action="store_true", help="add construction-site-safety")
    parser.add_argument("--css-copies", type=int, default=1, help="list its images N times")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    reuse = not args.new_split and (args.split_dir / "train.txt").exists()
    counts = prepare(
        args.data_root,
        args.out,
        split_dir=args.split_dir,
        person_model=args.person_model,
        person_conf=args.person_conf,
        val_fraction=args.val_fraction,
        seed=args.seed,
        reuse_split=reuse,
        limit=args.limit,
        with_css=args.with_css,
        css_copies=args.css_copies,
    )
    logger.info("wrote %s: %s", args.out, json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
