"""Content checks of uploaded media: is a file really the image or clip it claims to be?

:func:`check_image` reads the image header first (Pillow reads only the header on open)
and refuses a size over the limits before a single pixel is decoded, so a 600-byte JPEG
that declares 20000 x 20000 costs nothing; within the limits the whole image is decoded,
so a truncated file or JPEG magic followed by HTML is refused too.

:func:`check_clip` opens a clip with PyAV as MP4 only (no format probing), and requires
an H.264 video stream with a frame size within the limits (checked before decoding), a
positive duration within ``max_clip_seconds``, a first frame that decodes and every
sample the clip's index lists present in the file (a cut-off upload is refused).

Both raise :class:`MediaProblem` with a reason a user can read, and an HTTP status: 413
when the declared size is over a limit, 422 when the content is broken or of the wrong
kind.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

#: Packets fed to the decoder at most while waiting for a clip's first frame.
_FIRST_FRAME_PACKETS = 64


class MediaProblem(ValueError):
    """Media bytes that are not what they claim; ``reason`` says what is wrong."""

    def __init__(self, reason: str, status: int = 422) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class MediaLimits:
    """Largest image or clip frame accepted, and the longest clip."""

    max_pixels: int = 40_000_000
    max_side: int = 12_000
    max_clip_seconds: float = 600.0


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int


@dataclass(frozen=True)
class ClipInfo:
    codec: str
    width: int
    height: int
    duration_s: float


def check_size(width: int, height: int, limits: MediaLimits, what: str) -> None:
    """MediaProblem 413 when ``width`` x ``height`` is over the limits, 422 when empty."""
    if width <= 0 or height <= 0:
        raise MediaProblem(f"{what} declares an empty frame size ({width} x {height})")
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise MediaProblem(
            f"{what} is {width} x {height} pixels, over the limit of {limits.max_pixels} "
            f"pixels and {limits.max_side} pixels a side",
            status=413,
        )


def check_image(
    source: Path | bytes,
    *,
    limits: MediaLimits,
    formats: Sequence[str] = ("JPEG",),
    what: str = "image",
) -> ImageInfo:
    """Check that ``source`` (a file or its bytes) is a whole image of one of ``formats``
    (Pillow format names) within ``limits``; MediaProblem otherwise.

    The size comes from the header and is checked before anything is decoded.
    """
    from PIL import Image, UnidentifiedImageError

    kinds = " or ".join(formats)
    file = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with warnings.catch_warnings():
            # Pillow warns over ~89 Mpx on open; the limits below decide, not the warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(file, formats=list(formats))
    except Image.DecompressionBombError as exc:
        raise MediaProblem(f"{what} declares too many pixels: {exc}", status=413) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise MediaProblem(f"{what} is not a {kinds} image that can be read") from None
    with image:
        width, height = image.size
        check_size(width, height, limits, what)
        try:
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise MediaProblem(f"{what} is a broken or truncated {image.format}: {exc}") from None
        return ImageInfo(format=str(image.format), width=width, height=height)


def check_clip(path: Path, *, limits: MediaLimits, what: str = "clip") -> ClipInfo:
    """Check that ``path`` is a complete H.264 MP4 within ``limits``; MediaProblem otherwise."""
    import av

    try:
        # format="mp4": the MP4 demuxer only, whatever the bytes look like to FFmpeg
        with av.open(str(path), format="mp4") as container:
            if not container.streams.video:
                raise MediaProblem(f"{what} has no video stream")
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            if codec != "h264":
                raise MediaProblem(f"{what} is {codec} video; clips must be H.264")
            width, height = stream.codec_context.width, stream.codec_context.height
            check_size(width, height, limits, what)
            duration = _duration_s(stream.duration, stream.time_base, container.duration)
            if duration <= 0:
                raise MediaProblem(f"{what} has no duration")
            if duration > limits.max_clip_seconds:
                raise MediaProblem(
                    f"{what} lasts {duration:.0f} s, over the limit of "
                    f"{limits.max_clip_seconds:.0f} s"
                )
            packets = decoded = 0
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's end-of-stream marker
                packets += 1
                if not decoded and packets <= _FIRST_FRAME_PACKETS:
                    decoded = len(stream.codec_context.decode(packet))
            if not decoded and packets:
                decoded = len(stream.codec_context.decode(None))
            if not decoded:
                raise MediaProblem(f"{what} has no frame that can be decoded")
            if stream.frames and packets < stream.frames:
                raise MediaProblem(
                    f"{what} is truncated: {packets} of its {stream.frames} frames are in the file"
                )
    except av.FFmpegError as exc:
        raise MediaProblem(f"{what} is not a readable MP4 clip ({exc.strerror})") from None
    return ClipInfo(codec=codec, width=width, height=height, duration_s=duration)


def _duration_s(
    stream_duration: int | None, time_base: Fraction | None, container_duration: int | None
) -> float:
    if stream_duration and time_base:
        return float(stream_duration * time_base)
    if container_duration:
        return container_duration / 1_000_000  # AV_TIME_BASE
    return 0.0
