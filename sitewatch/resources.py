"""Where sitewatch finds its own files and the shared data sets.

The project's models and configs travel inside the package (``sitewatch.models`` is the
client's ``models/`` folder, ``sitewatch.configs`` its ``configs/``), so a wheel installed
anywhere finds them through ``importlib.resources``, as an editable checkout does. The
shared data sets and pretrained starting points are not shipped: they are looked up at
``$SITEWATCH_SHARED``, else in a ``shared`` folder beside the checkout or the current folder.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

SHARED_ENV = "SITEWATCH_SHARED"
#: The relative path that site configs use to name a shipped model ("models/x.onnx").
MODELS_PREFIX = "models/"


def _package_path(package: str, name: str) -> Path:
    # Wheels install unzipped and editable installs point at the checkout, so every
    # resource of ours is a plain file with a real path.
    return Path(str(resources.files(package).joinpath(name)))


def model_file(name: str) -> Path:
    """A model file shipped with sitewatch (``helmet-colour.json``, ``sitewatch-det.onnx``)."""
    return _package_path("sitewatch.models", name)


def config_file(name: str) -> Path:
    """A config shipped with sitewatch (``demo-site.yaml``, ``examples/calibrated-site.yaml``)."""
    return _package_path("sitewatch.configs", name)


def shipped_model(value: str) -> Path | None:
    """The shipped file a config's ``models/NAME`` means, or None for any other path."""
    if not value.startswith(MODELS_PREFIX) or "/" in value[len(MODELS_PREFIX) :]:
        return None
    return model_file(value[len(MODELS_PREFIX) :])


def _checkout_root() -> Path | None:
    """The source checkout this package runs from (editable install), if any."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else None


def shared_root() -> Path:
    """``$SITEWATCH_SHARED``, else ``shared`` beside the checkout, the cwd or its parent."""
    env = os.environ.get(SHARED_ENV)
    if env:
        return Path(env).expanduser()
    checkout = _checkout_root()
    candidates = [checkout.parent / "shared"] if checkout else []
    candidates += [Path.cwd() / "shared", Path.cwd().parent / "shared"]
    return next((c for c in candidates if c.is_dir()), candidates[0])
