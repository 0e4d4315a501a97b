"""The one base class of the edge's errors.

Every error the edge raises on bad input (a config, a model file, a video, a token, a
spool, a register) is a :class:`SitewatchError`, so a command line can catch them all in
one place and print one clean line. Each also keeps its standard base (``ValueError``,
``RuntimeError``, ``FileNotFoundError``) for code that catches those.
"""

from __future__ import annotations


class SitewatchError(Exception):
    """A problem the message explains to the user (it names what was wrong and where)."""
