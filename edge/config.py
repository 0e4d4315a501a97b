"""The site configuration: one YAML file loaded into one pydantic model tree.

Unknown keys are refused everywhere (``extra="forbid"``), and every error is reported with
its YAML path and line, e.g. ``cameras[0].zones.edges[1].polyline (line 42): ...``.
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from sitewatch.contract.events import HelmetColour, Identifier, Severity
from sitewatch.edge.errors import SitewatchError
from sitewatch.zones.config import CameraZones

DEFAULT_MODEL_PATH = "models/sitewatch-det.onnx"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteInfo(_Strict):
    id: Identifier
    name: str = ""
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {name!r} (use an IANA name such as 'Asia/Shanghai')"
            ) from None
        return name


class ModelConfig(_Strict):
    #: Relative paths are resolved against the config file's folder, then the project root.
    path: str = DEFAULT_MODEL_PATH
    #: Long side of the model input, for models with dynamic axes (a fixed input wins).
    #: Unset: the size the model was trained at (its ``imgsz`` metadata), else 640.
    input_size: int | None = Field(default=None, ge=32, le=2048, multiple_of=32)
    confidence: float = Field(default=0.35, gt=0.0, lt=1.0)
    iou: float = Field(default=0.5, gt=0.0, lt=1.0)
    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"], min_length=1)
    #: Intra-op threads per session; 0 lets onnxruntime choose (with several sessions:
    #: the usable cores split between them).
    threads: int = Field(default=0, ge=0, le=64)
    #: Sessions of the model detecting frames side by side (edge.detector_pool); 0 picks
    #: one single-threaded session per usable core (at most 4) for replay and evaluation on
    #: the CPU, and one session on an accelerator and for the live edge's cameras.
    sessions: int = Field(default=0, ge=0, le=16)
    #: Per-class confidence overrides, e.g. {head: 0.4}.
    class_confidence: dict[str, Annotated[float, Field(gt=0.0, lt=1.0)]] = Field(
        default_factory=dict
    )


class TrackingConfig(_Strict):
    track_activation_threshold: float = Field(default=0.3, gt=0.0, lt=1.0)
    lost_track_buffer_s: float = Field(default=2.0, gt=0.0, le=60.0)
    minimum_matching_threshold: float = Field(default=0.8, gt=0.0, le=1.0)
    minimum_consecutive_frames: int = Field(default=2, ge=1, le=30)


class AttributesConfig(_Strict):
    #: Helmet colour -> role; a helmet of any other colour is a plain "worker".
    role_by_colour: dict[HelmetColour, str] = Field(
        default_factory=lambda: {HelmetColour.RED: "party_member"}
    )
    #: The site issues orange helmets: red or yellow calls with an orange hue become
    #: ``orange``. Off by default, since the colour model was never shown orange and warm-lit
    #: red helmets have the same hue (see models/MODEL_CARD.md).
    orange_helmets: bool = False
    #: A person's helmet state is the majority over this many seconds of observations.
    helmet_window_s: float = Field(default=1.5, gt=0.0, le=30.0)
    #: Share of head/helmet box that must lie inside the person's upper body box.
    head_person_min_overlap: float = Field(default=0.6, gt=0.0, le=1.0)
    #: Helmet colour checks per tracked person and second, at most (a helmet does not
    #: change colour between frames; the state is still voted on every frame); 0 checks
    #: on every detected frame. The default matches the cameras' default detect_fps.
    colour_checks_per_s: float = Field(default=5.0, ge=0.0, le=1000.0)
    #: The second stage for small heads (``edge.head_classifier``): a person whose head
    #: the detector did not find has the crop where the head should be read. A frame
    #: votes bare when P(bare) reaches ``head_bare_min_p``, helmet when P(helmet) reaches
    #: ``head_helmet_min_p``; 1.0 (the default) never votes helmet from a crop: helmets are
    #: what the detector finds well, and crop reads of "helmet" on a missed bare head only
    #: delayed its alarm (red-white-helmets: 6 of 7 found, first alert 0.8 s after the
    #: person appears, against 5 of 7 and 1.7 s with helmet votes at 0.6).
    head_classifier: bool = True
    head_bare_min_p: float = Field(default=0.55, gt=0.5, le=1.0)
    head_helmet_min_p: float = Field(default=1.0, gt=0.5, le=1.0)
    #: Expected heads smaller than this (frame pixels) are not read: nothing to tell.
    head_min_px: float = Field(default=8.0, ge=1.0, le=200.0)


class RuleConfig(_Strict):
    enabled: bool = True
    min_duration_s: float = Field(default=2.0, ge=0.0, le=3600.0)
    #: After an event ends, the same track must wait this long before it can raise another.
    cooldown_s: float = Field(default=30.0, ge=0.0, le=86400.0)
    #: The hazard is over once it has not been seen for this long.
    end_after_s: float = Field(default=2.0, gt=0.0, le=3600.0)
    severity: Severity = Severity.MEDIUM


class NoHelmetRuleConfig(RuleConfig):
    #: A bare head seen for about 1.5 s in a crowd must be reported (issue 14): the helmet
    #: state is already a vote over ``attributes.helmet_window_s``, so 1 s of "bare" on top
    #: of it is enough (no extra false alarm on the labelled clips at 1 s vs 2 s).
    min_duration_s: float = Field(default=1.0, ge=0.0, le=3600.0)


class FallEdgeRuleConfig(RuleConfig):
    severity: Severity = Severity.HIGH
    #: Severity when the person near the edge wears no helmet.
    severity_without_helmet: Severity = Severity.CRITICAL


class RestrictedZoneRuleConfig(RuleConfig):
    min_duration_s: float = Field(default=1.0, ge=0.0, le=3600.0)
    severity: Severity = Severity.HIGH


class WorkingHours(_Strict):
    start: time
    end: time
    #: ISO weekdays, 1 = Monday.
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5, 6, 7]
    )

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHours:
        if self.end <= self.start:
            raise ValueError(f"working hours end {self.end} must be after start {self.start}")
        return self


class PostRuleConfig(RuleConfig):
    # the post's own max_unattended_s is the persistence
    min_duration_s: float = Field(default=0.0, ge=0.0, le=3600.0)
    working_hours: list[WorkingHours] = Field(
        default_factory=lambda: [WorkingHours(start=time(8), end=time(18))]
    )


class PartyMemberHelmetRuleConfig(RuleConfig):
    min_duration_s: float = Field(default=5.0, ge=0.0, le=3600.0)


class PersonRuleConfig(RuleConfig):
    """One informational event per tracked person; off unless a site asks for it."""

    enabled: bool = False
    min_duration_s: float = Field(default=1.0, ge=0.0, le=3600.0)
    end_after_s: float = Field(default=5.0, gt=0.0, le=3600.0)
    cooldown_s: float = Field(default=0.0, ge=0.0, le=86400.0)
    severity: Severity = Severity.LOW


class RulesConfig(_Strict):
    no_helmet: NoHelmetRuleConfig = Field(default_factory=NoHelmetRuleConfig)
    fall_edge: FallEdgeRuleConfig = Field(default_factory=FallEdgeRuleConfig)
    restricted_zone: RestrictedZoneRuleConfig = Field(default_factory=RestrictedZoneRuleConfig)
    post_unattended: PostRuleConfig = Field(default_factory=PostRuleConfig)
    party_member_helmet: PartyMemberHelmetRuleConfig = Field(
        default_factory=PartyMemberHelmetRuleConfig
    )
    person: PersonRuleConfig = Field(default_factory=PersonRuleConfig)


class MotionConfig(_Strict):
    """Motion gating (issue 19, ``edge.motion``): a frame without motion gets no model call.

    On by default: ``scripts/bench/motion_gate.py`` gives the same recall and precision on
    all five labelled clips with it on, and saves 86 % of the model calls on a still, empty
    stretch (a call every ``still_recheck_s``). A replay without a site file keeps it off
    (``edge.replay.default_site_config``), so its events stay those of every sampled frame.
    """

    enabled: bool = True
    #: Share of the small grey image's pixels that must change for a frame to move.
    threshold: float = Field(default=0.002, gt=0.0, lt=1.0)
    #: Grey-level change (0-255) that counts a pixel as changed (above sensor noise).
    pixel_threshold: int = Field(default=12, ge=1, le=254)
    #: Width in pixels of the image the test runs on.
    width: int = Field(default=160, ge=16, le=1920)
    #: A still scene still gets a model call this often.
    still_recheck_s: float = Field(default=2.0, gt=0.0, le=3600.0)
    #: Keep calling the model for this long after the last motion.
    hold_s: float = Field(default=1.0, ge=0.0, le=3600.0)
    #: Keep calling the model while its last call found a person (a person standing
    #: still is followed on every frame, as without gating).
    follow_people: bool = True


class CameraConfig(_Strict):
    id: Identifier
    name: str = ""
    #: rtsp://, http(s):// (MJPEG), a video file path, or a local camera index ("0").
    source: str = Field(min_length=1)
    #: Detections per second; frames in between are decoded but not run through the model.
    detect_fps: float = Field(default=5.0, gt=0.0, le=60.0)
    enabled: bool = True
    loop: bool = False  # loop a video file (demos)
    zones: CameraZones = Field(default_factory=CameraZones)


class ServerConnection(_Strict):
    url: str = Field(pattern=r"^https?://")
    #: The device token; prefer token_file so the secret stays out of the config.
    device_token: str | None = None
    token_file: str | None = None
    timeout_s: float = Field(default=10.0, gt=0.0, le=300.0)
    #: Seconds between pulls of the zones the server manages for the site's cameras
    #: (``GET /api/v1/site-config``); a heartbeat reply naming a newer version pulls at once.
    zones_sync_interval_s: float = Field(default=30.0, gt=0.0, le=86400.0)


class ClipConfig(_Strict):
    pre_s: float = Field(default=5.0, ge=0.0, le=60.0)
    post_s: float = Field(default=5.0, ge=0.0, le=60.0)


class OutboxConfig(_Strict):
    path: str = "spool"
    max_bytes: int = Field(default=2 * 1024**3, gt=0)


class PrivacyConfig(_Strict):
    #: Blur the faces of people who are not enrolled workers in media leaving the box.
    blur_unknown_faces: bool = True


class FacesConfig(_Strict):
    #: Face detection and recognition on person tracks (off unless a site turns it on).
    enabled: bool = False
    #: Folder of the YuNet/SFace ONNX files; default $SITEWATCH_SHARED/models or ../shared.
    models_dir: str | None = None
    #: Look for faces on every n-th processed frame.
    detect_every_n_frames: int = Field(default=2, ge=1, le=100)
    min_face_px: int = Field(default=12, ge=4, le=1000)
    #: SFace cosine similarity to count as the same person (0.363 per OpenCV Zoo).
    match_threshold: float = Field(default=0.363, gt=0.0, lt=1.0)
    #: A track gets a worker's identity when this many of its last vote_window faces match.
    votes: int = Field(default=3, ge=1, le=100)
    vote_window: int = Field(default=5, ge=1, le=100)
    #: Workers enrolled on the box (.npz from `sitewatch faces enrol`); used together with
    #: the server's register when the site has a server (the server's entry wins for a
    #: worker id in both; a worker removed on the server is removed from this file too).
    register_path: str | None = None
    #: Seconds between pulls of the server's worker register (with a server: configured).
    register_sync_interval_s: float = Field(default=60.0, gt=0.0, le=86400.0)

    @model_validator(mode="after")
    def _votes_fit(self) -> FacesConfig:
        if self.votes > self.vote_window:
            raise ValueError(f"votes ({self.votes}) cannot exceed vote_window ({self.vote_window})")
        return self


#: An MQTT topic level prefix: no wildcards, no empty levels, no leading or trailing "/".
_TOPIC_PREFIX = r"^[^/#+\s]+(?:/[^/#+\s]+)*$"


class MqttAlertsConfig(_Strict):
    """The box publishes every event to the site's MQTT broker (edge.alerts)."""

    enabled: bool = False
    host: str | None = Field(default=None, min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    #: CA bundle for the broker's certificate (tls on); unset: the system's CAs.
    ca_file: str | None = None
    #: Unset: ``sitewatch-<site id>``; two boxes must not share one.
    client_id: str | None = Field(default=None, min_length=1, max_length=128)
    topic_prefix: str = Field(default="sitewatch", pattern=_TOPIC_PREFIX)
    qos: int = Field(default=1, ge=0, le=2)
    #: The broker publishes the box's last will this long (x1.5) after the box goes silent.
    keepalive_s: int = Field(default=30, ge=1, le=3600)

    @model_validator(mode="after")
    def _usable(self) -> MqttAlertsConfig:
        if self.enabled and not self.host:
            raise ValueError("alerts.mqtt.host is required when mqtt is enabled")
        if self.password is not None and self.username is None:
            raise ValueError("a broker password needs a username")
        return self


class WebhookAlertsConfig(_Strict):
    """The box POSTs every event to a local URL (a speaker or a light tower's controller)."""

    enabled: bool = False
    url: str | None = Field(default=None, pattern=r"^https?://")
    timeout_s: float = Field(default=2.0, gt=0.0, le=60.0)
    #: Signs the body: header ``X-Sitewatch-Signature: sha256=<HMAC-SHA256 hex>``.
    secret: SecretStr | None = None

    @model_validator(mode="after")
    def _usable(self) -> WebhookAlertsConfig:
        if self.enabled and not self.url:
            raise ValueError("alerts.webhook.url is required when the webhook is enabled")
        return self


class AlertsConfig(_Strict):
    """Alerts straight from the box, without the server; both off by default."""

    mqtt: MqttAlertsConfig = Field(default_factory=MqttAlertsConfig)
    webhook: WebhookAlertsConfig = Field(default_factory=WebhookAlertsConfig)


class SiteConfig(_Strict):
    site: SiteInfo
    model: ModelConfig = Field(default_factory=ModelConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    attributes: AttributesConfig = Field(default_factory=AttributesConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    cameras: list[CameraConfig] = Field(default_factory=list)
    server: ServerConnection | None = None
    clips: ClipConfig = Field(default_factory=ClipConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    faces: FacesConfig = Field(default_factory=FacesConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    motion: MotionConfig = Field(default_factory=MotionConfig)

    @field_validator("cameras")
    @classmethod
    def _unique_camera_ids(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        ids = [c.id for c in cameras]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"camera ids must be unique, repeated: {repeated}")
        return cameras

    def camera(self, camera_id: str) -> CameraConfig:
        for camera in self.cameras:
            if camera.id == camera_id:
                return camera
        raise KeyError(f"no camera {camera_id!r} in site {self.site.id!r}")


class ConfigError(SitewatchError, ValueError):
    """A config file that cannot be used; the message lists every problem with its line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(
            f"{source}: " + "; ".join(problems)
            if len(problems) == 1
            else f"{source}: {len(problems)} problems:\n  " + "\n  ".join(problems)
        )


def load_config(path: str | Path) -> SiteConfig:
    """Read and validate a site YAML file; raises ConfigError naming the path and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read: {exc}"]) from None
    return parse_config(text, source=str(path))


def parse_config(text: str, *, source: str = "<config>") -> SiteConfig:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"invalid YAML{where}: {problem}"]) from None
    if not isinstance(data, dict):
        raise ConfigError(source, ["the file must hold a mapping (site:, cameras:, ...)"])
    lines = _line_index(node)
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(err, lines) for err in exc.errors()]) from None


def _describe(error: Any, lines: dict[tuple[str | int, ...], int]) -> str:
    loc: tuple[str | int, ...] = ()
    for part in error["loc"]:
        # a key of the file is kept even when it looks like a tag ("float", "a[b]")
        if (*loc, part) in lines or not _is_pydantic_tag(part):
            loc = (*loc, part)
    line = _nearest_line(loc, lines)
    where = _format_loc(loc) or "(top level)"
    at = f" (line {line})" if line else ""
    msg = re.sub(r"^Value error, ", "", error["msg"])
    return f"{where}{at}: {msg}"


def _is_pydantic_tag(part: str | int) -> bool:
    # Union members appear in locations as type names ("float", "function-after[...]").
    return isinstance(part, str) and ("[" in part or part in {"float", "int", "str"})


def _format_loc(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _nearest_line(
    loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]
) -> int | None:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def _line_index(root: yaml.Node | None) -> dict[tuple[str | int, ...], int]:
    """Map every YAML path (keys and list indices) to its 1-based line number."""
    index: dict[tuple[str | int, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str | int, ...]) -> None:
        index.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = (key_node.value,)
                index[path + key] = key_node.start_mark.line + 1
                walk(value_node, path + key)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    if root is not None:
        walk(root, ())
    return index


def resolve_path(value: str, *, config_path: Path | None) -> Path:
    """A relative path in the config is looked up next to the config, then in the cwd."""
    candidate = Path(value).expanduser()
    if candidate.is_absolute():
        return candidate
    if config_path is not None:
        beside = config_path.parent / candidate
        if beside.exists():
            return beside
    return Path.cwd() / candidate
