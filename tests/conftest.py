"""Shared fixtures: where ../shared lies, and skips with a reason when it does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitewatch import resources

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    """$SITEWATCH_SHARED, else ../shared beside the clone (``sitewatch.resources``)."""
    return resources.shared_root()


def shared_file(relative: str) -> Path:
    """A file under ../shared, or skip the test naming what is missing."""
    path = shared_root() / relative
    if not path.exists():
        pytest.skip(f"needs {relative} from ../shared (not found at {path}); set SITEWATCH_SHARED")
    return path


@pytest.fixture
def shared() -> Path:
    root = shared_root()
    if not root.is_dir():
        pytest.skip(f"needs ../shared with data and models (not found at {root})")
    return root


@pytest.fixture
def coco_model() -> Path:
    return shared_file("models/yolov8n-coco-int8.onnx")


@pytest.fixture
def video_dir() -> Path:
    return shared_file("data/videos")
