"""What the scripts share: the checkout's folders and the shared data sets.

sitewatch itself is imported as the installed package (``scripts/setup.sh`` installs the
checkout in editable mode), so no script edits ``sys.path``.
"""

from __future__ import annotations

from pathlib import Path

from sitewatch.resources import shared_root

#: The checkout's root: scripts only run from a checkout (models/ and data splits live here).
PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = PROJECT_ROOT / "models"

__all__ = ["MODELS_DIR", "PROJECT_ROOT", "shared_root"]
