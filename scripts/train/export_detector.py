"""Export a trained checkpoint to ONNX fp32 (step 4 of the recipe) and record its sha256.

Class names travel in the ONNX metadata (Ultralytics writes ``names``, ``imgsz``,
``stride``). By default the input has dynamic height and width, so that the edge
letterboxes each camera to the smallest stride-aligned rectangle (a 16:9 camera at 416 runs
at 416x256, about 40 % less work than 416x416; ``edge.detector.rect_input_wh``), and
``imgsz`` records the training size the detector uses by default; ``--fixed`` exports a
square fixed input instead. Opset 17 runs in onnxruntime >= 1.18.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")
from scripts.common import PROJECT_ROOT


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export(weights: Path, out: Path, imgsz: int, opset: int = 17, dynamic: bool = True) -> str:
    """Export ``weights`` to ``out``; return its sha256."""
    from ultralytics import YOLO

    exported = Path(
        YOLO(str(weights)).export(
            format="onnx", imgsz=imgsz, opset=opset, dynamic=dynamic, simplify=False, half=False
        )
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(exported, out)
    return sha256(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--weights", type=Path, default=Path("/work/runs/sitewatch-det-320/weights/best.pt")
    )
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "models" / "sitewatch-det.onnx")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--fixed", action="store_true", help="fixed square input (no rect)")
    args = parser.parse_args(argv)
    digest = export(args.weights, args.out, args.imgsz, args.opset, dynamic=not args.fixed)
    print(f"{args.out} sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
