"""CSV of the filtered event list, with the core's columns (``server.services.export``).

The page's filters include hazard states and "overdue", which the core's export filter
does not know, so the rows come from :func:`server.ui.queries.iter_events_for_csv` and
are written with the core's row format, times in ISO 8601 in the page's zone (with the
offset). The generator opens its own database session: a streamed response outlives
the request's dependencies.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sitewatch.server.db.models import User
from sitewatch.server.services.export import COLUMNS
from sitewatch.server.services.export import csv_row as export_row
from sitewatch.server.ui.queries import EventFilters, iter_events_for_csv

#: Rows written between two chunks of the response.
CHUNK_ROWS = 500


def csv_chunks(
    database: Any, *, user_id: int, filters: EventFilters, now: datetime, tz: ZoneInfo
) -> Iterator[str]:
    """The header, then the rows in chunks of :data:`CHUNK_ROWS` (BOM first, for Excel)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(COLUMNS)
    with database.session() as db:
        user = db.get(User, user_id)
        if user is None:
            return
        for index, event in enumerate(
            iter_events_for_csv(db, user=user, filters=filters, now=now, tz=tz), start=1
        ):
            writer.writerow(export_row(event, tz=tz))
            if index % CHUNK_ROWS == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()
