"""Measure the head classifier on labelled frames, the way the edge runs it.

For each labelled person whose head is labelled (bare or helmet; the head matched to the
person as the edge matches them), the classifier reads the crop around where the person
box says the head is (``--from person``, what the edge does for a head the detector
missed) or around the labelled head box (``--from head``). It prints, per set, bare-head
recall and precision at each threshold on P(bare), and accuracy.

    python -m scripts.train.cctv_frames --out /tmp/cctv
    python -m scripts.train.eval_head_classifier --data /tmp/cctv/turnstile --data /tmp/cctv/walkway
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from sitewatch.edge.attributes import associate_heads
from sitewatch.edge.head_classifier import BARE, HeadClassifier
from sitewatch.edge.head_crops import expected_heads

#: Label ids of our CCTV sets: 0 person, 1 bare head, 2-8 helmets by colour.
PERSON, BARE_HEAD = 0, 1
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def labelled_people(folder: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(frame, person xyxy (K, 4), their heads (K, 5): xyxy and 0 bare / 1 helmet) per
    labelled frame."""
    out = []
    for label in sorted((folder / "labels").glob("*.txt")):
        image = folder / "images" / f"{label.stem}.jpg"
        frame = cv2.imread(str(image))
        if frame is None:
            continue
        height, width = frame.shape[:2]
        rows = np.loadtxt(label, ndmin=2)
        if rows.size == 0:
            continue
        cx, cy, w, h = rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4]
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1) * [
            width,
            height,
            width,
            height,
        ]
        persons, heads = xyxy[rows[:, 0] == PERSON], xyxy[rows[:, 0] != PERSON]
        head_class = rows[rows[:, 0] != PERSON, 0]
        head_of = associate_heads(persons, heads, 0.6)
        keep = head_of >= 0
        states = np.where(head_class[head_of[keep]] == BARE_HEAD, 0, 1)
        out.append((frame, persons[keep], np.c_[heads[head_of[keep]], states]))
    return out


def score(classifier: HeadClassifier, folder: Path, source: str) -> dict[str, object]:
    p_bare: list[np.ndarray] = []
    truth: list[np.ndarray] = []
    for frame, persons, heads in labelled_people(folder):
        if not len(persons):
            continue
        boxes = expected_heads(persons) if source == "person" else heads[:, :4]
        p_bare.append(classifier.probabilities(frame, boxes)[:, BARE])
        truth.append(heads[:, 4] == 0)
    probs, bare = np.concatenate(p_bare), np.concatenate(truth)
    result: dict[str, object] = {"people": len(bare), "bare": int(bare.sum())}
    for threshold in THRESHOLDS:
        said = probs >= threshold
        hits = int((said & bare).sum())
        result[f"@{threshold}"] = {
            "bare_recall": round(hits / max(int(bare.sum()), 1), 3),
            "bare_precision": round(hits / max(int(said.sum()), 1), 3),
            "accuracy": round(float((said == bare).mean()), 3),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--from", dest="source", choices=("person", "head"), default="person")
    args = parser.parse_args(argv)
    classifier = HeadClassifier(args.model)
    for folder in args.data:
        result = score(classifier, folder, args.source)
        print(folder, json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
