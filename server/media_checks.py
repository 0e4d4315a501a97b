"""Content checks of uploaded media: is a file really the image or clip it claims to be?

:func:`check_image` reads the image header first (Pillow reads only the header on open)
and refuses a size over the limits before a single pixel is decoded, so a 600-byte JPEG
that declares 20000 x 20000 costs nothing; within the limits the whole image is decoded,
so a truncated file or JPEG magic followed by HTML is refused too. JPEG, PNG and HEIF
(HEIC, through pillow-heif, which also reads the size from the header on open and
decodes only on ``load``) are known. :func:`check_photo` checks a photo the same way and
converts it to an upright JPEG without EXIF when it is not a JPEG already upright.

:func:`check_clip` opens a clip with PyAV as MP4 only (no format probing), and requires
an H.264 video stream with a frame size within the limits (checked before decoding), a
positive duration within ``max_clip_seconds``, a first frame that decodes and every
sample the clip's index lists present in the file (a cut-off upload is refused).

Both raise :class:`MediaProblem` with a reason a user can read, and an HTTP status: 413
when the declared size is over a limit, 422 when the content is broken or of the wrong
kind.
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

#: Quality of the JPEG a converted photo (PNG, HEIC, a turned JPEG) is stored as.
JPEG_QUALITY = 90
_EXIF_ORIENTATION = 0x0112
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
class PhotoInfo:
    """A checked photo: its format as uploaded, the size stored, and whether it was
    converted to an upright JPEG (written to the target of :func:`check_photo`)."""

    format: str
    width: int
    height: int
    converted: bool = False


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
    (Pillow format names: ``JPEG``, ``PNG``, ``HEIF``) within ``limits``; MediaProblem
    otherwise.

    The size comes from the header and is checked before anything is decoded.
    """
    with _decoded(source, limits=limits, formats=formats, what=what) as image:
        return ImageInfo(format=str(image.format), width=image.width, height=image.height)


def check_photo(
    source: Path,
    target: Path,
    *,
    limits: MediaLimits,
    formats: Sequence[str] = ("JPEG", "PNG", "HEIF"),
    what: str = "photo",
    quality: int = JPEG_QUALITY,
) -> PhotoInfo:
    """Check ``source`` as :func:`check_image` does (one decode), and write it to
    ``target`` as an upright JPEG unless it is a JPEG already upright.

    The converted JPEG has the EXIF orientation applied (phones store turned pictures
    with an orientation tag; libheif applies a HEIC's own rotation while decoding),
    transparency flattened on white, its ICC colour profile kept, and no EXIF at all
    (no GPS position, no camera serial). A JPEG without an orientation tag is left as it
    is (``converted`` False, nothing is written).
    """
    with _decoded(source, limits=limits, formats=formats, what=what) as image:
        turn = _upright_turn(_orientation(image))
        if image.format == "JPEG" and turn is None:
            return PhotoInfo(format="JPEG", width=image.width, height=image.height)
        kind = str(image.format)
        icc_profile = image.info.get("icc_profile")
        upright: Image.Image = image.transpose(turn) if turn is not None else image
        flat = _flattened(upright)
        try:
            flat.save(target, format="JPEG", quality=quality, icc_profile=icc_profile or None)
        except (OSError, ValueError) as exc:
            raise MediaProblem(f"{what}: its {kind} cannot be converted to JPEG: {exc}") from None
        return PhotoInfo(format=kind, width=flat.width, height=flat.height, converted=True)


@contextmanager
def _decoded(
    source: Path | bytes, *, limits: MediaLimits, formats: Sequence[str], what: str
) -> Iterator[Image.Image]:
    """``source`` opened with Pillow, its header size checked against ``limits``, then
    decoded whole; MediaProblem when it is not one of ``formats`` or is broken."""
    from PIL import Image, UnidentifiedImageError

    if "HEIF" in formats:
        _register_heif()
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
        except (OSError, SyntaxError, ValueError, EOFError, RuntimeError) as exc:
            raise MediaProblem(f"{what} is a broken or truncated {image.format}: {exc}") from None
        if image.size != (width, height):  # pillow-heif takes the decoded size
            check_size(image.width, image.height, limits, what)
        yield image


@functools.cache
def _register_heif() -> None:
    """Teach Pillow HEIF/HEIC (pillow-heif; reads the size from the header on open and
    decodes on ``load``, like Pillow's own formats)."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def _orientation(image: Image.Image) -> int | None:
    """The EXIF orientation of ``image`` (1..8), None when absent or unreadable."""
    try:
        value = image.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # a malformed EXIF block: no orientation
        return None
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def _upright_turn(orientation: int | None) -> Image.Transpose | None:
    """The turn that makes a picture of EXIF ``orientation`` upright (None: it is)."""
    from PIL import Image

    return {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation or 1)


def _flattened(image: Image.Image) -> Image.Image:
    """``image`` in a mode JPEG stores (RGB or L), transparency composed on white."""
    from PIL import Image

    if image.mode in ("RGB", "L"):
        return image
    if image.mode.startswith("I"):  # 16/32-bit grey (PNG): scaled to 8 bits
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        white.alpha_composite(rgba)
        return white.convert("RGB")
    return image.convert("RGB")


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
