"""Where the detector's model file is found.

The site config names a model (``model.path``, default ``models/sitewatch-det.onnx``, the
project's own person/head/helmet detector). A relative path is looked up beside the config
file, then in the current folder, then in the project root. While the project's own model
is not there, the default falls back to the COCO YOLOv8n model in ``../shared/models`` (or
``$SITEWATCH_SHARED/models``), which finds people but no heads or helmets; a warning says so.
A path the user chose explicitly never falls back: a missing file is an error later.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from edge.config import DEFAULT_MODEL_PATH, ModelConfig

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FALLBACK_MODEL = "models/yolov8n-coco-int8.onnx"


def shared_root() -> Path:
    """``$SITEWATCH_SHARED``, else ``../shared`` beside the project."""
    env = os.environ.get("SITEWATCH_SHARED")
    return Path(env) if env else PROJECT_ROOT.parent / "shared"


def _candidates(value: str, config_path: Path | None) -> list[Path]:
    path = Path(value).expanduser()
    if path.is_absolute():
        return [path]
    found = [config_path.parent / path] if config_path is not None else []
    return list(dict.fromkeys([*found, Path.cwd() / path, PROJECT_ROOT / path]))


def resolve_model_path(cfg: ModelConfig, config_path: Path | None = None) -> Path:
    """The model file to load for ``cfg`` (see the module docstring for the order)."""
    candidates = _candidates(cfg.path, config_path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if cfg.path == DEFAULT_MODEL_PATH:
        fallback = shared_root() / FALLBACK_MODEL
        if fallback.is_file():
            logger.warning(
                "model %s not found (looked at %s); using %s instead: it detects people "
                "but no heads or helmets, so helmet rules cannot fire",
                cfg.path,
                ", ".join(str(c) for c in candidates),
                fallback,
            )
            return fallback
    return candidates[0]
