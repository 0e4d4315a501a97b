"""The one rule for identifiers (sites, cameras, devices, workers).

Ids travel in URLs, media file paths, metrics labels and file names on the box, so they
are short ASCII names that start with a letter or digit and never hold ``..``: every
place that creates or accepts an id checks this same rule, and an id the API accepts is
one the media store and the box can use.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

MAX_ID_LENGTH = 64
#: Without look-arounds (pydantic's regex engine has none): a dot is always followed by
#: another character than a dot, or ends the id.
ID_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_-]|\.[A-Za-z0-9_-])*\.?$"
_ID = re.compile(ID_PATTERN)
ID_RULE = "1-64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit, without '..'"

Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]


def is_identifier(value: str) -> bool:
    return _ID.fullmatch(value) is not None


def check_identifier(value: str, what: str) -> str:
    """``value`` if it follows the id rule; ValueError naming ``what`` otherwise."""
    if len(value) > MAX_ID_LENGTH or not is_identifier(value):
        raise ValueError(f"{what} {value!r} is not a valid id ({ID_RULE})")
    return value
