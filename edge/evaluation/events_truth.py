"""Event ground truth: what a human says should be flagged in one video.

A truth file is YAML::

    video: concrete-pour-crew.mp4      # file name, looked up next to the truth file,
                                       # then in ../shared/data/videos
    config: ../../../configs/demo-site.yaml   # optional site YAML (relative to this file)
    camera: pour-cam                   # optional camera id in that config
    labelled_fps: 2                    # how densely the frames were looked at
    method: "by eye from frames ..."   # how the labels were made
    events:
      - {rule: restricted_zone, start_s: 3.0, end_s: 7.5, zone: fresh-concrete, note: "..."}

Times are seconds from the start of the video. Errors name the file and the entry.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sitewatch.contract.events import RuleKind
from sitewatch.edge.errors import SitewatchError


class TruthError(SitewatchError, ValueError):
    """A truth file that cannot be used; the message names the file and the entry."""


class TrueEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: RuleKind
    start_s: float = Field(ge=0.0)
    end_s: float = Field(ge=0.0)
    zone: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TrueEvent:
        if self.end_s < self.start_s:
            raise ValueError(f"end_s ({self.end_s}) is before start_s ({self.start_s})")
        return self


class EventTruth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video: str = Field(min_length=1)
    config: str | None = None
    camera: str | None = None
    labelled_fps: float | None = Field(default=None, gt=0.0)
    method: str | None = None
    #: Rules that were labelled; rules not listed are not scored (default: every hazard
    #: rule; ``person`` events are informational and scored only when listed).
    rules: list[RuleKind] | None = None
    events: list[TrueEvent] = Field(default_factory=list)

    def scored_rules(self) -> list[RuleKind]:
        if self.rules is not None:
            return list(self.rules)
        return [rule for rule in RuleKind if rule.is_hazard]


def load_truth(path: Path) -> EventTruth:
    """Read and validate one truth file; raise TruthError naming file and entry."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise TruthError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise TruthError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise TruthError(f"{path}: expected a mapping at the top level")
    try:
        return EventTruth.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = _where(error["loc"], raw)
            problems.append(f"{where}: {error['msg']}")
        raise TruthError(f"{path}: " + "; ".join(problems)) from None


def _where(loc: tuple[int | str, ...], raw: dict[str, object]) -> str:
    """'events[2] (restricted_zone 3.0-7.5 s).end_s' style location of an error."""
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
        else:
            parts.append(str(item))
    if len(loc) >= 2 and loc[0] == "events" and isinstance(loc[1], int):
        events = raw.get("events")
        if isinstance(events, list) and loc[1] < len(events) and isinstance(events[loc[1]], dict):
            entry = events[loc[1]]
            parts[0] += f" ({entry.get('rule')} {entry.get('start_s')}-{entry.get('end_s')} s)"
    return ".".join(parts) or "(top level)"


def resolve_relative(truth_path: Path, value: str) -> Path:
    """A path from the truth file, relative to the file's folder unless absolute."""
    candidate = Path(value)
    return candidate if candidate.is_absolute() else Path(truth_path).parent / candidate
