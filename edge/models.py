"""Where the detector's model file is found.

The site config names a model (``model.path``, default ``models/sitewatch-det.onnx``, the
project's own person/head/helmet detector). A relative path is looked up beside the config
file, then in the current folder; ``models/NAME`` is then the model shipped inside the
package (``sitewatch.resources``). While the project's own model
is not there, the default falls back to the COCO YOLOv8n model in ``../shared/models`` (or
``$SITEWATCH_SHARED/models``), which finds people but no heads or helmets; a warning says so.
A path the user chose explicitly never falls back: a missing file is an error later.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sitewatch.edge.config import DEFAULT_MODEL_PATH, ModelConfig
from sitewatch.resources import shared_root, shipped_model

logger = logging.getLogger(__name__)

FALLBACK_MODEL = "models/yolov8n-coco-int8.onnx"


def _candidates(value: str, config_path: Path | None) -> list[Path]:
    path = Path(value).expanduser()
    if path.is_absolute():
        return [path]
    found = [config_path.parent / path] if config_path is not None else []
    shipped = shipped_model(value)
    return list(dict.fromkeys([*found, Path.cwd() / path, *([shipped] if shipped else [])]))


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
