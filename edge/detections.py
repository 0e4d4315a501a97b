"""The one object that carries a frame's detections through every stage.

sitewatch uses ``supervision.Detections`` (parallel numpy arrays: ``xyxy (N,4)``,
``confidence (N,)``, ``class_id (N,)``, ``tracker_id (N,)`` and a ``data`` dict of
per-box arrays) rather than a type of its own, so trackers, zones and annotators of that
library take it as it is. These are the names of the classes and the ``data`` keys that
sitewatch's stages add; each stage returns a new object instead of mutating its input.
"""

from __future__ import annotations

import supervision as sv

Detections = sv.Detections

# Canonical class names. A model may have more classes; these are the ones sitewatch uses.
PERSON = "person"
HEAD = "head"  # a bare head (no hard hat)
HELMET = "helmet"  # a head wearing a hard hat

# data keys
CLASS_NAME = "class_name"  # str per box, always present after the detector
HELMET_STATE = "helmet_state"  # HelmetState value per person box, after attributes
HELMET_COLOUR = "helmet_colour"  # HelmetColour value or "" per box
ROLE = "role"  # role string or "" per person box (e.g. "party_member")
HEAD_XYXY = "head_xyxy"  # (N,4) float: the head/helmet box assigned to each person, NaN if none
WORKER_ID = "worker_id"  # recognised worker id or "" per person box (faces)
