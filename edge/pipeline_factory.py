"""The pipelines a live box runs, one per camera, sharing one detector."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from sitewatch.contract.events import Event
from sitewatch.edge.config import CameraConfig, SiteConfig
from sitewatch.edge.pipeline import CameraPipeline, FrameResult
from sitewatch.zones.config import CameraZones

if TYPE_CHECKING:
    from sitewatch.edge.faces.site_register import SiteRegister
    from sitewatch.edge.faces.stage import FaceStage


class Pipeline(Protocol):
    """What a camera worker needs of :class:`~sitewatch.edge.pipeline.CameraPipeline`."""

    #: The camera's face stage (faces on), for privacy blur and the register swap.
    faces: FaceStage | None

    def process(self, frame_bgr: np.ndarray, now: datetime) -> FrameResult: ...

    def finish(self, now: datetime) -> list[Event]: ...

    def replace_zones(self, zones: CameraZones, now: datetime) -> list[Event]: ...


PipelineFactory = Callable[[SiteConfig, CameraConfig], Pipeline]


def default_pipeline_factory(
    config_path: Path | None, face_register: SiteRegister | None = None
) -> PipelineFactory:
    """Real pipelines sharing one detector (one ONNX session for every camera, unless
    model.sessions asks for a pool: then a camera's thread borrows the next idle one).

    With ``face_register`` (faces on), each camera's face stage starts from its register
    and the party_member_helmet rule asks it for the party members at every frame.
    """
    from sitewatch.edge.detector_pool import FrameDetector, load_detector
    from sitewatch.edge.faces.stage import FaceStage

    detectors: dict[str, FrameDetector] = {}

    def build(site: SiteConfig, camera: CameraConfig) -> Pipeline:
        if "model" not in detectors:
            detectors["model"] = load_detector(site.model, config_path, concurrent_callers=True)
        faces = None
        if site.faces.enabled and face_register is not None:
            faces = FaceStage(site.faces, register=face_register.register, config_path=config_path)
        return CameraPipeline(
            site,
            camera,
            detectors["model"],
            frame_rate=camera.detect_fps,
            faces=faces,
            party_member_ids=(
                face_register.party_member_ids if face_register is not None else frozenset()
            ),
            config_path=config_path,
        )

    return build
