"""Train the sitewatch detector (person, head, helmet) with Ultralytics, on CPU or GPU.

Step 2 and 3 of the recipe (step 1 is scripts/train/prepare_data.py, step 4
scripts/train/export_detector.py):

* ``transplant``: the official YOLOv5n v7.0 COCO checkpoint (../shared/models/
  yolov5n-coco.pt, yolov5-repo pickles) is read with stand-in classes for the yolov5
  repo's ``models.*`` / ``utils.*`` modules, and its backbone and neck weights (342 of
  349 tensors, everything but the anchor-based head) are loaded into Ultralytics'
  ``yolov5nu`` architecture, saved as an Ultralytics checkpoint.
* ``train``: fine-tunes that checkpoint on the prepared data; ``--time-h`` caps the run
  (Ultralytics then fits the epochs and the LR schedule into that time).

Nothing is downloaded: plots are off (no font download), AMP check is skipped on CPU and
YOLO_OFFLINE is set.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import sys
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts.common import shared_root

os.environ.setdefault("YOLO_OFFLINE", "1")

logger = logging.getLogger("train_detector")


ARCH_YAML = "yolov5nu.yaml"
YOLOV5_PACKAGES = ("models", "utils")


def _stand_in_unpickler() -> types.SimpleNamespace:
    """A pickle module whose Unpickler maps yolov5-repo classes to empty nn.Modules."""
    import torch

    class _Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if module.split(".")[0] in YOLOV5_PACKAGES:
                return type(name, (torch.nn.Module,), {"__module__": module})
            return super().find_class(module, name)

    return types.SimpleNamespace(Unpickler=_Unpickler, load=pickle.load, __name__="pickle")


def load_yolov5_state_dict(path: Path) -> dict[str, Any]:
    """The float32 state_dict of a yolov5-repo checkpoint (EMA weights when present)."""
    import torch

    checkpoint = torch.load(
        path, map_location="cpu", pickle_module=_stand_in_unpickler(), weights_only=False
    )
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise ValueError(f"{path}: not a yolov5 checkpoint (no 'model' entry)")
    model = checkpoint.get("ema") or checkpoint["model"]
    return {k: v.float() for k, v in model.state_dict().items()}


def save_checkpoint(model: Any, out: Path, docs: str) -> None:
    """Save ``model`` as an Ultralytics checkpoint that ``YOLO(out).train(...)`` accepts."""
    import torch
    from ultralytics import __version__

    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": model,
            "train_args": {},
            "date": datetime.now(UTC).isoformat(),
            "version": __version__,
            "license": "AGPL-3.0",
            "docs": docs,
        },
        out,
    )


def transplant(source: Path, out: Path, nc: int = 80) -> tuple[int, int]:
    """Write an Ultralytics checkpoint of ``yolov5nu`` holding ``source``'s matching
    weights; return (tensors transplanted, tensors in the source)."""
    from ultralytics.nn.tasks import DetectionModel

    source_sd = load_yolov5_state_dict(source)
    model = DetectionModel(ARCH_YAML, nc=nc, verbose=False)
    target_sd = model.state_dict()
    matched = {
        k: v for k, v in source_sd.items() if k in target_sd and target_sd[k].shape == v.shape
    }
    model.load_state_dict(matched, strict=False)
    save_checkpoint(
        model, out, f"yolov5nu with {len(matched)}/{len(source_sd)} tensors from {source.name}"
    )
    logger.info(
        "transplanted %d of %d tensors into %s -> %s", len(matched), len(source_sd), ARCH_YAML, out
    )
    return len(matched), len(source_sd)


def repeat_class_images(data_yaml: Path, class_id: int, copies: int) -> Path:
    """Write a data yaml whose train set lists every train image holding ``class_id``
    ``1 + copies`` times (symlinked copies with their label files), to balance a rare
    class; return its path. The val set is unchanged."""
    import yaml

    if copies < 1:
        return data_yaml
    spec = yaml.safe_load(data_yaml.read_text())
    root = Path(spec["path"])
    images, labels = root / spec["train"], root / "labels" / Path(spec["train"]).name
    holding = {}  # label file -> its text, for the train images with a class_id box
    for label in sorted(labels.glob("*.txt")):
        text = label.read_text()
        if any(int(line.split()[0]) == class_id for line in text.splitlines() if line.strip()):
            holding[label] = text
    train_dirs = [spec["train"]]
    for copy in range(1, copies + 1):
        name = f"{Path(spec['train']).name}-class{class_id}-copy{copy}"
        out_images, out_labels = root / "images" / name, root / "labels" / name
        out_images.mkdir(parents=True, exist_ok=True)
        out_labels.mkdir(parents=True, exist_ok=True)
        for label, text in holding.items():
            image = images / f"{label.stem}.jpg"
            link = out_images / image.name
            if not link.is_symlink():
                link.symlink_to(image.resolve())
            (out_labels / label.name).write_text(text)
        train_dirs.append(f"images/{name}")
    out = data_yaml.with_name(f"{data_yaml.stem}-class{class_id}x{copies + 1}.yaml")
    out.write_text(yaml.safe_dump({**spec, "train": train_dirs}, sort_keys=False))
    logger.info("train set with class %d images x%d -> %s", class_id, copies + 1, out)
    return out


def train(
    weights: Path,
    data_yaml: Path,
    *,
    project: Path,
    name: str,
    imgsz: int = 416,
    epochs: int = 60,
    time_h: float | None = None,
    batch: int = 16,
    workers: int = 2,
    device: str = "cpu",
    fraction: float = 1.0,
    close_mosaic: int = 5,
    seed: int = 0,
    **overrides: Any,
) -> Path:
    """Fine-tune ``weights`` on ``data_yaml``; return the run directory."""
    from ultralytics import YOLO

    model = YOLO(str(weights), task="detect")
    model.train(
        data=str(data_yaml),
        imgsz=imgsz,
        epochs=epochs,
        time=time_h,
        batch=batch,
        workers=workers,
        device=device,
        project=str(project),
        name=name,
        exist_ok=True,
        plots=False,
        amp=False,
        seed=seed,
        deterministic=False,
        fraction=fraction,
        close_mosaic=close_mosaic,
        patience=100,
        val=True,
        verbose=True,
        **overrides,
    )
    return project / name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    shared = shared_root()
    tp = sub.add_parser("transplant", help="yolov5n COCO weights -> yolov5nu checkpoint")
    tp.add_argument("--source", type=Path, default=shared / "models" / "yolov5n-coco.pt")
    tp.add_argument("--out", type=Path, default=Path("/work/runs/yolov5nu-coco-transplant.pt"))
    tr = sub.add_parser("train", help="fine-tune on the prepared data")
    tr.add_argument("--weights", type=Path, default=Path("/work/runs/yolov5nu-coco-transplant.pt"))
    tr.add_argument("--data", type=Path, default=Path("/work/datasets/sitewatch-det/data.yaml"))
    tr.add_argument("--project", type=Path, default=Path("/work/runs"))
    tr.add_argument("--name", default="sitewatch-det")
    tr.add_argument("--imgsz", type=int, default=416)
    tr.add_argument("--epochs", type=int, default=60)
    tr.add_argument("--time-h", type=float, default=None, help="cap in hours (overrides epochs)")
    tr.add_argument("--batch", type=int, default=16)
    tr.add_argument("--workers", type=int, default=2)
    tr.add_argument("--device", default="cpu")
    tr.add_argument("--close-mosaic", type=int, default=5)
    tr.add_argument("--lr0", type=float, default=None, help="with --optimizer: fixed start lr")
    tr.add_argument("--optimizer", default="auto")
    tr.add_argument("--warmup-epochs", type=float, default=3.0)
    tr.add_argument(
        "--repeat-class",
        type=int,
        default=None,
        help="class id whose train images are listed more than once (a rare class)",
    )
    tr.add_argument("--repeat-copies", type=int, default=1, help="extra copies per image")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "transplant":
        transplant(args.source, args.out)
    else:
        data = args.data
        if args.repeat_class is not None:
            data = repeat_class_images(data, args.repeat_class, args.repeat_copies)
        train(
            args.weights,
            data,
            project=args.project,
            name=args.name,
            imgsz=args.imgsz,
            epochs=args.epochs,
            time_h=args.time_h,
            batch=args.batch,
            workers=args.workers,
            device=args.device,
            close_mosaic=args.close_mosaic,
            optimizer=args.optimizer,
            warmup_epochs=args.warmup_epochs,
            **({"lr0": args.lr0} if args.lr0 is not None else {}),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
