"""Int8 variant of the shipped detector: ONNX Runtime static quantization (QDQ).

    .venv/bin/python -m scripts.train.quantize_detector [--onnx models/sitewatch-det.onnx]
        [--out models/sitewatch-det-int8.onnx] [--images DIR] [--calib-images 120]

Only Conv nodes are quantized (weights int8 per channel, activations uint8), calibrated on
letterboxed train images (every 8th of ``--images``, the prepared train split by default).
The Detect head's DFL stays float: quantizing the last Concat, which holds box pixels
(0..416) and class scores (0..1) in one tensor with one scale, zeroes every score. The
class names and input size metadata are kept, so ``Detector`` runs it like the fp32 file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from scripts.common import PROJECT_ROOT
from sitewatch.edge.detector import letterbox

CALIBRATION_SIZE = 416


def calibration_inputs(images: list[Path], input_name: str) -> list[dict[str, np.ndarray]]:
    """Square letterboxed RGB 0-1 NCHW inputs, one per readable image."""
    feeds = []
    for path in images:
        image = cv2.imread(str(path))
        if image is None:
            raise FileNotFoundError(f"calibration image {path} cannot be read")
        boxed, _ = letterbox(image, (CALIBRATION_SIZE, CALIBRATION_SIZE))
        x = boxed[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255
        feeds.append({input_name: np.ascontiguousarray(x)})
    return feeds


def quantize(onnx_path: Path, out: Path, images: list[Path]) -> Path:
    """Write the int8 (QDQ) model of ``onnx_path`` to ``out``."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not images:
        raise ValueError("no calibration images")
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # dynamic height/width: ORT's symbolic shape inference cannot resolve them
        quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared)).graph
        dfl = [node.name for node in graph.node if "/dfl" in node.name]
        feeds = calibration_inputs(images, graph.input[0].name)

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._feeds = iter(feeds)

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self._feeds, None)

        out.parent.mkdir(parents=True, exist_ok=True)
        quantize_static(
            str(prepared),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=dfl,
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onnx", type=Path, default=PROJECT_ROOT / "models" / "sitewatch-det.onnx")
    parser.add_argument(
        "--out", type=Path, default=PROJECT_ROOT / "models" / "sitewatch-det-int8.onnx"
    )
    parser.add_argument(
        "--images", type=Path, default=Path("/work/datasets/sitewatch-det/images/train")
    )
    parser.add_argument("--calib-images", type=int, default=120)
    args = parser.parse_args(argv)
    images = sorted(args.images.glob("*.jpg"))[::8][: args.calib_images]
    quantize(args.onnx, args.out, images)
    print(f"wrote {args.out} from {args.onnx.name}, calibrated on {len(images)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
