"""Rebuild a trainable Ultralytics checkpoint from the shipped ONNX detector.

The export fused every Conv+BatchNorm pair into one Conv with a bias, so the ONNX holds
all the weights the model needs, under the module names of Ultralytics' ``yolov5nu``
(``model.2.cv1.conv.weight`` ...). This script builds ``yolov5nu`` (nc = len(names),
names from the ONNX metadata), copies every Conv weight in, and un-fuses each BN so the
eval-mode output is the same function as the ONNX:

* ``--bn identity``: conv weight = fused weight, BN gamma = 1, beta = fused bias,
  running_mean = 0, running_var = 1 - eps (exact).
* ``--bn calibrated`` (default): the same function in eval mode, but each BN also gets
  the batch statistics of its conv output measured on real training images, so that in
  *train* mode (batch statistics) the network computes nearly what it computes in eval
  mode. With ``identity`` a train-mode BN would normalise every conv output to zero mean
  and unit variance, a different function from the one the weights were trained for, and
  the first epochs of a continuation would spend themselves undoing that. Per output
  channel with conv-output mean mu and std sigma (fused conv, bias removed):
  conv weight = fused weight / sigma, running_mean = mu / sigma, running_var = 1,
  gamma = sigma * sqrt(1 + eps), beta = fused bias + mu.

``--verify`` exports the rebuilt checkpoint again and compares its raw outputs with the
source ONNX on real frames (max abs difference printed; non-zero exit above ``--tol``).
The checkpoint is saved outside the repo in Ultralytics' format, so
``YOLO(path).train(...)`` continues from it.
"""

from __future__ import annotations

import argparse
import ast
import logging
import os
import sys
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np

os.environ.setdefault("YOLO_OFFLINE", "1")

from scripts.common import PROJECT_ROOT, shared_root
from sitewatch.edge.detector import letterbox

logger = logging.getLogger("onnx_to_checkpoint")
SHARED = shared_root()
ARCH_YAML = "yolov5nu.yaml"


def onnx_weights(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Initialisers (name -> array) and metadata of an ONNX file."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    meta = {p.key: p.value for p in model.metadata_props}
    return weights, meta


def read_image(path: Path) -> np.ndarray:
    """``cv2.imread`` of ``path`` (which answers None for a file it cannot read)."""
    image = cv2.imread(str(path))
    assert image is not None, f"cannot read {path}"
    return image


def to_input(image_bgr: np.ndarray, size: int) -> np.ndarray:
    """The detector's letterbox (edge.detector) -> 1x3xSxS float32 RGB 0..1."""
    image, _ = letterbox(image_bgr, (size, size))
    return np.asarray(cv2.dnn.blobFromImage(image, scalefactor=1 / 255.0, swapRB=True))


def training_images(split_file: Path, data_root: Path, count: int, seed: int = 0) -> list[Path]:
    keys = split_file.read_text().split()
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(keys), size=min(count, len(keys)), replace=False)
    paths = []
    for index in sorted(chosen):
        dataset, name = keys[index].split("/", 1)
        root = data_root / dataset / "images"
        found = list(root.glob(name)) or list(root.glob(f"*/{name}"))
        if found:
            paths.append(found[0])
    return paths


def video_frames(video: Path, count: int, step: int = 15) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames: list[np.ndarray] = []
    index = 0
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        if index % step == 0:
            frames.append(frame)
        index += 1
    capture.release()
    return frames


def build_model(weights: dict[str, np.ndarray], names: dict[int, str]) -> Any:
    """yolov5nu with the fused conv weights, BN as identity (eval output == ONNX)."""
    import torch
    from ultralytics.nn.modules import Conv
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel(ARCH_YAML, nc=len(names), verbose=False)
    model.names = dict(names)
    # The class branch width c3 depends on nc at build time: a model fine-tuned from an
    # 80-class start keeps c3 = 80 (Ultralytics' BaseModel.load rebuilds it at the
    # source width). Match the ONNX's width.
    # ``model.model`` (the nn.Sequential parse_model builds) is untyped in Ultralytics; its
    # last layer is the Detect head, whose cv3 branches are indexed by position.
    head: Any = cast(torch.nn.Sequential, model.model)[-1]
    width = int(weights["model.24.cv3.0.0.conv.weight"].shape[0])
    if head.cv3[0][0].conv.out_channels != width:
        wide_model = DetectionModel(ARCH_YAML, nc=width, verbose=False)
        wide_head: Any = cast(torch.nn.Sequential, wide_model.model)[-1]
        wide = wide_head.cv3
        for branch in wide:
            branch[-1] = torch.nn.Conv2d(branch[-1].in_channels, len(names), 1)
        head.cv3 = wide
    state = model.state_dict()
    used: set[str] = set()
    with torch.no_grad():
        for module_name, module in model.named_modules():
            if isinstance(module, Conv) and hasattr(module, "bn"):
                w_key, b_key = f"{module_name}.conv.weight", f"{module_name}.conv.bias"
                w, b = torch.from_numpy(weights[w_key]), torch.from_numpy(weights[b_key])
                if w.shape != module.conv.weight.shape:
                    shape = tuple(module.conv.weight.shape)
                    raise ValueError(f"{w_key}: ONNX {tuple(w.shape)} vs model {shape}")
                module.conv.weight.copy_(w)
                bn = module.bn  # tracks running stats: running_mean/var are never None
                assert bn.running_mean is not None and bn.running_var is not None
                bn.weight.fill_(1.0)
                bn.bias.copy_(b)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                used.update((w_key, b_key))
            elif isinstance(module, torch.nn.Conv2d):
                for suffix in ("weight", "bias"):
                    key = f"{module_name}.{suffix}"
                    param = getattr(module, suffix)
                    if param is None:
                        continue
                    if key not in weights:
                        # a Conv2d inside a Conv module was handled above
                        continue
                    if tuple(weights[key].shape) != tuple(param.shape):
                        raise ValueError(f"{key}: shape mismatch")
                    param.copy_(torch.from_numpy(weights[key]))
                    used.add(key)
    conv_keys = {k for k in weights if k.endswith((".weight", ".bias"))}
    unused = sorted(conv_keys - used)
    if unused:
        raise ValueError(f"{len(unused)} ONNX weights not placed, first {unused[:3]}")
    missing = [k for k in state if k.endswith("conv.weight") and k not in used]
    if missing:
        raise ValueError(f"model weights not found in the ONNX: {missing[:3]}")
    logger.info("placed %d ONNX tensors into %s (nc=%d)", len(used), ARCH_YAML, len(names))
    return model


def calibrate_bn(model: Any, images: list[np.ndarray], batch: int = 16) -> int:
    """Rescale each Conv's weights/BN so train-mode BN ~ eval mode (see module doc)."""
    import torch
    from ultralytics.nn.modules import Conv

    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, Conv) and hasattr(m, "bn")]
    sums: dict[str, torch.Tensor] = {}
    sq_sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook(name: str) -> Any:
        def record(_module: Any, _inputs: Any, output: torch.Tensor) -> None:
            y = output.detach().double()
            sums[name] = sums.get(name, 0) + y.sum(dim=(0, 2, 3))
            sq_sums[name] = sq_sums.get(name, 0) + (y * y).sum(dim=(0, 2, 3))
            counts[name] = counts.get(name, 0) + y.shape[0] * y.shape[2] * y.shape[3]

        return record

    handles = [m.conv.register_forward_hook(hook(n)) for n, m in convs]
    model.eval()
    with torch.no_grad():
        for start in range(0, len(images), batch):
            model(torch.from_numpy(np.concatenate(images[start : start + batch])))
    for handle in handles:
        handle.remove()
    with torch.no_grad():
        for name, module in convs:
            mean = sums[name] / counts[name]
            std = (sq_sums[name] / counts[name] - mean * mean).clamp_min(1e-8).sqrt()
            std = std.clamp_min(1e-3)
            bn = module.bn  # tracks running stats: running_mean/var are never None
            assert bn.running_mean is not None and bn.running_var is not None
            module.conv.weight.div_(std.float().view(-1, 1, 1, 1))
            bn.running_mean.copy_((mean / std).float())
            bn.running_var.fill_(1.0)
            bn.weight.copy_((std * np.sqrt(1.0 + bn.eps)).float())
            bn.bias.add_(mean.float())
    return len(convs)


def save_checkpoint(model: Any, out: Path, source: Path, bn_mode: str) -> None:
    from scripts.train.train_detector import save_checkpoint as save_ultralytics

    model.float()
    for param in model.parameters():
        param.requires_grad_(True)
    docs = f"yolov5nu rebuilt from {source.name} (fused conv weights, BN {bn_mode})"
    save_ultralytics(model, out, docs)


def identity_checkpoint(onnx_path: Path, out: Path) -> Path:
    """Write the exact (``--bn identity``) checkpoint of ``onnx_path`` to ``out``."""
    weights, meta = onnx_weights(onnx_path)
    save_checkpoint(
        build_model(weights, ast.literal_eval(meta["names"])), out, onnx_path, "identity"
    )
    return out


def max_output_diff(onnx_a: Path, onnx_b: Path, frames: list[np.ndarray], size: int) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess_a = ort.InferenceSession(str(onnx_a), opts, providers=["CPUExecutionProvider"])
    sess_b = ort.InferenceSession(str(onnx_b), opts, providers=["CPUExecutionProvider"])
    worst = 0.0
    for frame in frames:
        x = to_input(frame, size)
        out_a = sess_a.run(None, {sess_a.get_inputs()[0].name: x})[0]
        out_b = sess_b.run(None, {sess_b.get_inputs()[0].name: x})[0]
        worst = max(worst, float(np.abs(out_a - out_b).max()))
    return worst


def train_eval_gap(model: Any, images: list[np.ndarray]) -> tuple[float, float]:
    """Mean and max abs difference of the class scores, train-mode vs eval-mode BN."""
    import copy

    import torch

    probe = copy.deepcopy(model)
    x = torch.from_numpy(np.concatenate(images))
    with torch.no_grad():
        probe.eval()
        eval_out = probe(x)[0]
        probe.train()
        for module in probe.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = 0.0  # keep running stats for a later eval
        train_feats = probe(x)
        detect = probe.model[-1]
        train_out = detect._inference(train_feats) if hasattr(detect, "_inference") else None
    if train_out is None:
        return float("nan"), float("nan")
    nc = len(model.names)
    gap = (eval_out[:, -nc:] - train_out[:, -nc:]).abs()
    return float(gap.mean()), float(gap.max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onnx", type=Path, default=PROJECT_ROOT / "models" / "sitewatch-det.onnx")
    parser.add_argument("--out", type=Path, default=Path("/work/runs/reconstructed.pt"))
    parser.add_argument("--bn", choices=("calibrated", "identity"), default="calibrated")
    parser.add_argument("--data-root", type=Path, default=SHARED / "data")
    parser.add_argument(
        "--split", type=Path, default=PROJECT_ROOT / "models" / "data-split" / "train.txt"
    )
    parser.add_argument("--calib-images", type=int, default=128)
    parser.add_argument("--verify", action="store_true")
    parser.add_argument(
        "--video", type=Path, default=SHARED / "data" / "videos" / "concrete-pour-crew.mp4"
    )
    parser.add_argument("--tol", type=float, default=1e-3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    weights, meta = onnx_weights(args.onnx)
    names = ast.literal_eval(meta["names"])
    size = ast.literal_eval(meta.get("imgsz", "[320, 320]"))[0]
    model = build_model(weights, names)
    paths = training_images(args.split, args.data_root, args.calib_images + 16)
    images = [to_input(read_image(p), size) for p in paths]
    if args.bn == "calibrated":
        n = calibrate_bn(model, images[:-16])
        logger.info("calibrated %d BN layers on %d training images", n, len(images) - 16)
    mean_gap, max_gap = train_eval_gap(model, images[-16:])
    logger.info(
        "train-mode vs eval-mode class scores on 16 held-out images: mean abs gap %.4f, max %.4f",
        mean_gap,
        max_gap,
    )
    save_checkpoint(model, args.out, args.onnx, args.bn)
    logger.info("saved %s", args.out)
    if args.verify:
        from scripts.train.export_detector import export

        check = args.out.with_suffix(".verify.onnx")
        export(args.out, check, size)
        frames = video_frames(args.video, 20)
        frames += [read_image(p) for p in paths[:10]]
        diff = max_output_diff(args.onnx, check, frames, size)
        print(f"max abs output difference vs {args.onnx.name} on {len(frames)} frames: {diff:.3g}")
        if not diff <= args.tol:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
