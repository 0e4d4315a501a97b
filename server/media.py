"""Media storage (snapshots, clips, face thumbnails, rectification photos).

:class:`MediaStore` is the interface; :class:`LocalMediaStore` keeps files in a folder.
Keys are built by the server from validated parts (``site/event-uuid/kind-sha.ext``),
never from a client's file name, and every key is checked again before it touches the
disk, so a path traversal cannot happen even if a caller forgets.

Uploads are first written to a temporary file (:func:`receive_upload`), checked for size
and magic bytes (then for content, :mod:`server.media_checks`), and only then moved into
place with an atomic rename: nothing is ever half-written under a real key. Temporary
files a crash left behind are removed when a :class:`LocalMediaStore` is created.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from sitewatch.server.media_checks import MediaProblem

logger = logging.getLogger(__name__)

_KEY_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_CHUNK_BYTES = 1024 * 1024
#: Staged uploads older than this are leftovers of a crash (an upload writes its file
#: continuously, so a live one is never this old).
STALE_PART_S = 3600.0


class MediaError(ValueError):
    """A media key or upload that is refused; ``status`` is the HTTP code to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ContentKind:
    content_type: str
    extension: str


JPEG = ContentKind("image/jpeg", "jpg")
PNG = ContentKind("image/png", "png")
MP4 = ContentKind("video/mp4", "mp4")
#: HEIC and other HEIF still images (phones' photos); only evidence accepts them, and the
#: server stores them converted to JPEG.
HEIF = ContentKind("image/heif", "heif")

#: Major brands (``ftyp``) of HEIF still images: HEIC (HEVC-coded) and generic HEIF.
#: MP4 files start with an ``ftyp`` box too; its brand tells the two apart.
HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)


def sniff(head: bytes) -> ContentKind | None:
    """The content kind from the first bytes of a file, or None if unknown."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return HEIF if head[8:12] in HEIF_BRANDS else MP4
    return None


def check_key(key: str) -> str:
    """``key`` if it is a relative path of safe parts; MediaError otherwise."""
    parts = key.split("/")
    if not 1 <= len(parts) <= 4 or not all(_KEY_PART.match(p) and ".." not in p for p in parts):
        raise MediaError(f"unsafe media key {key!r}", status=400)
    return key


@dataclass(frozen=True)
class ReceivedFile:
    """An upload checked and parked in a temporary file, ready for ``MediaStore.put``."""

    path: Path
    size_bytes: int
    sha256: str
    kind: ContentKind
    #: True once the content was checked (``services.media.receive_media``); ``problem``
    #: then says what is wrong with it, None when it is what it claims to be.
    checked: bool = False
    problem: MediaProblem | None = None


class MediaStore(Protocol):
    """Where media bytes live. An S3-compatible store implements the same methods."""

    def staging_dir(self) -> Path:
        """A folder for temporary files on the same file system as the store."""
        ...

    def put(self, key: str, received: ReceivedFile) -> None:
        """Move a received file under ``key`` (atomic; replaces any previous file)."""
        ...

    def open(self, key: str) -> BinaryIO: ...

    def local_path(self, key: str) -> Path | None:
        """The file on disk when the store is local (lets the server use sendfile/Range)."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if something was deleted."""
        ...


class LocalMediaStore:
    """Media in a folder: ``root/site/event/kind-sha.ext``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(self.staging_dir())

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise MediaError(f"media key {key!r} leaves the media folder", status=400)
        return path

    def staging_dir(self) -> Path:
        staging = self.root / ".incoming"
        staging.mkdir(exist_ok=True)
        return staging

    def put(self, key: str, received: ReceivedFile) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(received.path, target)

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True


def remove_stale_parts(
    staging_dir: Path, *, max_age_s: float = STALE_PART_S, now: float | None = None
) -> int:
    """Delete the ``*.part`` files in ``staging_dir`` not written to for ``max_age_s``
    (left by a crash or a kill mid-upload); returns how many were removed."""
    cutoff = (time.time() if now is None else now) - max_age_s
    removed = 0
    for path in staging_dir.glob("*.part"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # removed meanwhile (its upload finished, or another process)
        except OSError as exc:
            logger.warning("cannot remove stale upload %s: %s", path, exc)
    if removed:
        logger.info("removed %d stale upload file(s) from %s", removed, staging_dir)
    return removed


def receive_upload(
    source: BinaryIO,
    *,
    staging_dir: Path,
    max_bytes: int,
    allowed: tuple[ContentKind, ...],
    what: str,
) -> ReceivedFile:
    """Copy ``source`` into a temporary file, checking size and magic bytes on the way.

    Raises MediaError 413 when larger than ``max_bytes``, 415 when the bytes are not one
    of ``allowed``, 400 when empty. The temporary file is removed on any failure.
    """
    digest = hashlib.sha256()
    size = 0
    kind: ContentKind | None = None
    fd, name = tempfile.mkstemp(dir=staging_dir, prefix="up-", suffix=".part")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_CHUNK_BYTES):
                if kind is None:
                    kind = _check_kind(chunk, allowed, what)
                size += len(chunk)
                if size > max_bytes:
                    raise MediaError(f"{what} is larger than the limit of {max_bytes} bytes", 413)
                digest.update(chunk)
                out.write(chunk)
        if kind is None:
            raise MediaError(f"{what} is empty", status=400)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return ReceivedFile(path=path, size_bytes=size, sha256=digest.hexdigest(), kind=kind)


def _check_kind(head: bytes, allowed: tuple[ContentKind, ...], what: str) -> ContentKind:
    kind = sniff(head)
    if kind not in allowed:
        wanted = " or ".join(k.content_type for k in allowed)
        raise MediaError(f"{what} must be {wanted} (checked by its first bytes)", status=415)
    return kind
