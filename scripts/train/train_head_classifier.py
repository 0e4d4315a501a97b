"""Train the head classifier: is the head in a crop bare or under a hard hat?

The second stage of :mod:`edge.head_classifier`. Training crops come from the head and
helmet boxes of the shared photo sets (helmet-colour and hard-hat-workers train split,
construction-site-safety less its evaluation views), cut as the edge cuts them
(``edge.head_crops``: ``CROP_PER_HEAD`` head sizes, jittered by where a head sits in a
person box) and then brought down to CCTV resolution: each head is shrunk to 8-40 px
(log-uniform) before it is resized to the classifier's input, then blurred, darkened (dusk),
JPEG-compressed or made grey at random; helmets' hues are turned at random (the photo sets
have no pink helmets). A third class, "none", learns places without a head (the body
below a head, background, blank patches), so that a crop that misses the head is not
called bare. Crops are drawn afresh every epoch. The model is a small CNN (210 k parameters)
trained with PyTorch on the CPU in minutes and exported to ONNX.

Measured by ``python -m scripts.train.eval_head_classifier`` on our CCTV labels (never
trained on) and on the photo val split.

    python -m scripts.train.train_head_classifier --out models/head-classifier.onnx
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from scripts.common import MODELS_DIR, shared_root
from scripts.train.prepare_data import (
    HEAD,
    HELMET,
    Sample,
    apply_split_file,
    find_samples,
    read_source_boxes,
)
from sitewatch.edge.head_crops import CROP_PER_HEAD, CROP_SIDE, crop_boxes, cut_crops

if TYPE_CHECKING:
    import torch

logger = logging.getLogger("train_head_classifier")

#: Class order of the model's output.
CLASSES = ("bare", "helmet", "none")
NONE = 2
#: "none" crops an image gives per epoch: a head's place that holds no head (a body
#: below the head, background, a blank or dark patch), so that the classifier has an
#: answer other than bare or helmet for a person box whose head is elsewhere.
NONE_PER_IMAGE = 2
MIN_HEAD_PX = 8
#: Standard deviation of the training crops' offset, in head sizes: the expected head of
#: a person box misses the labelled head by about this much on our walkway labels.
JITTER_PER_HEAD = 0.2
SPLIT_DIR = MODELS_DIR / "data-split"


def head_boxes(sample: Sample, width: int, height: int) -> list[tuple[np.ndarray, int]]:
    """(pixel xyxy, class index in CLASSES) of each head or helmet box of ``sample``."""
    out = []
    for box in read_source_boxes(sample):
        if box.class_id not in (HEAD, HELMET):
            continue
        cx, cy, w, h = box.cxcywh
        xyxy = np.array(
            [
                (cx - w / 2) * width,
                (cy - h / 2) * height,
                (cx + w / 2) * width,
                (cy + h / 2) * height,
            ],
            dtype=np.float32,
        )
        out.append((xyxy, 0 if box.class_id == HEAD else 1))
    return out


def shift_hue(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``crop`` with its hues turned by a random angle: helmets come in colours the photo
    sets lack (pink at our turnstile), and the shape is what tells a helmet."""
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + int(rng.integers(0, 180))) % 180).astype(
        np.uint8
    )
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def degrade(crop: np.ndarray, head_px: float, rng: np.random.Generator) -> np.ndarray:
    """``crop`` as a camera would see a head of ``head_px`` pixels, with noise of the site."""
    side = crop.shape[0]
    target = max(4, round(head_px * CROP_PER_HEAD))  # the crop holds CROP_PER_HEAD heads
    if target < side:
        small = cv2.resize(crop, (target, target), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5:  # a CCTV encoder's loss at that size
            ok, data = cv2.imencode(
                ".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 85))]
            )
            decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else None
            if decoded is not None:
                small = decoded
        crop = cv2.resize(small, (side, side), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.3:
        crop = cv2.GaussianBlur(crop, (3, 3), float(rng.uniform(0.3, 1.2)))
    out = crop.astype(np.float32)
    if rng.random() < 0.5:  # dusk, backlight, overexposure
        gain, gamma = rng.uniform(0.45, 1.3), rng.uniform(0.7, 1.6)
        out = 255.0 * np.clip((out / 255.0) ** gamma * gain, 0, 1)
    if rng.random() < 0.12:  # greyscale / infrared cameras
        grey = out @ np.array([0.114, 0.587, 0.299], dtype=np.float32)
        out = np.repeat(grey[..., None], 3, axis=2)
    out += rng.normal(0, rng.uniform(0, 6), out.shape)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.clip(out, 0, 255).astype(np.uint8)


def make_crops(
    samples: list[Sample], copies: int, seed: int, *, augment: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(N, S, S, 3) uint8 crops and (N,) labels; bare heads get twice the copies."""
    rng = np.random.default_rng(seed)
    crops: list[np.ndarray] = []
    labels: list[int] = []
    for sample in samples:
        image = cv2.imread(str(sample.image))
        if image is None:
            continue
        height, width = image.shape[:2]
        for xyxy, label in head_boxes(sample, width, height):
            size = float(max(xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]))
            if size < MIN_HEAD_PX:
                continue
            n = (copies * (2 if label == 0 else 1)) if augment else 1
            for _ in range(n):
                box = xyxy.copy()
                if augment:  # where a person box puts the head: off by up to ~1/3 head
                    shift = rng.normal(0, JITTER_PER_HEAD * size, 2).astype(np.float32)
                    box[[0, 2]] += shift[0]
                    box[[1, 3]] += shift[1]
                per_head = CROP_PER_HEAD * (rng.uniform(0.85, 1.2) if augment else 1.0)
                crop = cut_crops(image, crop_boxes(box[None], per_head))[0]
                if augment:
                    if rng.random() < (0.6 if label == 1 else 0.15):
                        crop = shift_hue(crop, rng)
                    head_px = math.exp(rng.uniform(math.log(8), math.log(40)))
                    crop = degrade(crop, min(head_px, size), rng)
                crops.append(crop)
                labels.append(label)
        if augment:
            for crop in none_crops(image, sample, rng):
                crops.append(crop)
                labels.append(NONE)
    return np.stack(crops), np.array(labels, dtype=np.int64)


def none_crops(image: np.ndarray, sample: Sample, rng: np.random.Generator) -> list[np.ndarray]:
    """Crops of places without a head: below a head (the body), anywhere away from the
    heads, or a flat patch (dark or light, as a featureless part of a frame)."""
    height, width = image.shape[:2]
    heads = [xyxy for xyxy, _ in head_boxes(sample, width, height)]
    out = []
    for _ in range(NONE_PER_IMAGE):
        size = float(rng.uniform(8, 60))
        if heads and rng.random() < 0.5:  # the body under a head, or beside it
            head = heads[int(rng.integers(len(heads)))]
            size = float(max(head[2] - head[0], head[3] - head[1]))
            dx, dy = rng.uniform(-0.3, 0.3) * size, rng.uniform(1.5, 3.0) * size
            box = head + np.array([dx, dy, dx, dy], dtype=np.float32)
        else:
            x, y = rng.uniform(0, max(width - size, 1)), rng.uniform(0, max(height - size, 1))
            box = np.array([x, y, x + size, y + size], dtype=np.float32)
            if any(_overlaps(box, head) for head in heads):
                continue
        crop = cut_crops(image, crop_boxes(box[None], CROP_PER_HEAD))[0]
        if rng.random() < 0.15:
            crop = np.full_like(crop, int(rng.integers(0, 256)))
        out.append(degrade(crop, min(size, math.exp(rng.uniform(math.log(8), math.log(40)))), rng))
    return out


def _overlaps(box: np.ndarray, head: np.ndarray) -> bool:
    """True when ``box``'s crop would hold much of ``head``."""
    crop = crop_boxes(box[None], CROP_PER_HEAD)[0]
    ix = max(0.0, min(crop[2], head[2]) - max(crop[0], head[0]))
    iy = max(0.0, min(crop[3], head[3]) - max(crop[1], head[1]))
    area = max(float((head[2] - head[0]) * (head[3] - head[1])), 1.0)
    return ix * iy / area > 0.3


def build_model() -> torch.nn.Module:
    """A small CNN: four conv blocks (stride 2), global average pool, two logits."""
    import torch.nn as nn

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    return nn.Sequential(
        block(3, 16),
        block(16, 32),
        block(32, 64),
        block(64, 96),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(96, len(CLASSES)),
    )


def to_tensor(crops: np.ndarray) -> torch.Tensor:
    """BGR uint8 (N, S, S, 3) -> RGB float (N, 3, S, S) in 0-1, as the edge feeds ONNX."""
    import torch

    return (
        torch.from_numpy(np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2))).float()
        / 255.0
    )


def train(
    samples: list[Sample], *, copies: int, epochs: int, seed: int, log: Path | None
) -> torch.nn.Module:
    """Train for ``epochs``, each on a fresh draw of augmented crops (seeded per epoch)."""
    import torch

    torch.manual_seed(seed)
    crops, labels = make_crops(samples, copies, seed)
    counts = np.bincount(labels, minlength=len(CLASSES))
    logger.info(
        "%d crops an epoch (%d bare, %d helmet, %d none), %d images",
        len(crops),
        *counts,
        len(samples),
    )
    model = build_model()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * math.ceil(len(crops) / 128)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=steps)
    # Classes weighted to balance (bare heads are the rarer class).
    weights = torch.tensor(counts.sum() / (len(CLASSES) * counts), dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=0.05)
    rows = []
    for epoch in range(epochs):
        if epoch:
            crops, labels = make_crops(samples, copies, seed + epoch)
        x_all, y_all = to_tensor(crops), torch.from_numpy(labels)
        model.train()
        order = torch.randperm(len(crops))
        total, correct, seen, started = 0.0, 0, 0, time.monotonic()
        for start in range(0, len(order), 128):
            index = order[start : start + 128]
            x, y = x_all[index], y_all[index]
            optimiser.zero_grad()
            logits = model(x)
            loss = loss_fn(logits, y)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(index)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(index)
        row = {
            "epoch": epoch + 1,
            "loss": total / seen,
            "train_acc": correct / seen,
            "seconds": round(time.monotonic() - started, 1),
        }
        rows.append(row)
        logger.info(
            "epoch %d: loss %.4f, train accuracy %.3f (%.0f s)",
            row["epoch"],
            row["loss"],
            row["train_acc"],
            row["seconds"],
        )
    if log is not None:
        log.write_text(json.dumps(rows, indent=1))
    return model.eval()


def export(model: torch.nn.Module, out: Path) -> None:
    import torch

    dummy = torch.zeros(1, 3, CROP_SIDE, CROP_SIDE)
    torch.onnx.export(
        model,
        (dummy,),
        str(out),
        input_names=["images"],
        output_names=["logits"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    import onnx

    proto = onnx.load(str(out))
    meta = proto.metadata_props.add()
    meta.key, meta.value = "classes", json.dumps(list(CLASSES))
    meta = proto.metadata_props.add()
    meta.key, meta.value = "crop", json.dumps({"side": CROP_SIDE, "per_head": CROP_PER_HEAD})
    onnx.save(proto, str(out))


def training_samples(data_root: Path) -> list[Sample]:
    found = find_samples(data_root)
    split = apply_split_file(found, SPLIT_DIR)
    return split["train"] + found["css"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODELS_DIR / "head-classifier.onnx")
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--copies", type=int, default=2, help="augmented crops per helmet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="use the first N images (a smoke run)")
    parser.add_argument("--log", type=Path, default=None, help="per-epoch JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    samples = training_samples(shared_root() / "data")
    if args.limit:
        samples = samples[: args.limit]
    model = train(samples, copies=args.copies, epochs=args.epochs, seed=args.seed, log=args.log)
    export(model, args.out)
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
