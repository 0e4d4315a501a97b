"""Every table of the server, registered in one ``Base.metadata`` (Alembic, tests).

The table modules do not import each other; importing them here is what puts all of
them in the metadata that migrations compare against.
"""

from __future__ import annotations

from sitewatch.server.db import models, workers
from sitewatch.server.db.base import Base

metadata = Base.metadata

__all__ = ["Base", "metadata", "models", "workers"]
