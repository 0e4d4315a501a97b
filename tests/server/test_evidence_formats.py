"""Evidence photos from phones (issue 18): JPEG, PNG and HEIC/HEIF accepted, PNG and HEIC
stored as upright JPEGs without EXIF, pixel limits read from every header before
decoding, and device media still JPEG/MP4 only."""

from __future__ import annotations

import io
import os
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pillow_heif
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFile
from sqlalchemy import select

from sitewatch.server.db.models import Media, MediaKind, Role
from sitewatch.server.media import HEIF, JPEG, MP4, PNG, sniff
from sitewatch.server.media_checks import MediaLimits, MediaProblem, check_image, check_photo
from tests.server.conftest import ServerEnv, event_json, post_event

pillow_heif.register_heif_opener()

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)
GPS_IFD, ORIENTATION = 0x8825, 0x0112
UPRIGHT = (64, 48)
#: Pillow's format name -> (file name, content type the phone's browser claims)
NAMES = {"PNG": ("p.png", "image/png"), "HEIF": ("IMG_0001.HEIC", "image/heic")}
NAMES["JPEG"] = ("IMG_0002.JPG", "image/jpeg")


def _picture(mode: str = "RGB") -> Image.Image:
    """The upright scene: red, a blue 16 px square top left (transparent bottom right
    when ``mode`` has alpha)."""
    image = Image.new(mode, UPRIGHT, RED if mode == "RGB" else (*RED, 255))
    image.paste(BLUE if mode == "RGB" else (*BLUE, 255), (0, 0, 16, 16))
    if mode == "RGBA":
        image.paste((0, 255, 0, 0), (48, 32, 64, 48))
    return image


def _exif(orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    if orientation is not None:
        exif[ORIENTATION] = orientation
    exif[GPS_IFD] = {1: "N", 2: (31.0, 14.0, 2.5), 3: "E", 4: (121.0, 28.0, 10.0)}
    return exif.tobytes()


def _encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _phone_photo(fmt: str, *, mode: str = "RGB", orientation: int | None = None) -> bytes:
    """``_picture`` as a phone stores it: with GPS in its EXIF, and with orientation 6
    the pixels turned a quarter left and the tag saying "turn right to view"."""
    image = _picture(mode)
    if orientation == 6:
        image = image.transpose(Image.Transpose.ROTATE_90)
    return _encode(image, fmt, exif=_exif(orientation), quality=95)


def _noise(fmt: str, size: tuple[int, int] = (64, 64)) -> bytes:
    """A picture that compresses badly (its data is most of the file)."""
    return _encode(Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)), fmt)


def _png_declaring(png: bytes, width: int, height: int) -> bytes:
    """``png`` with its IHDR saying ``width`` x ``height`` (checksum fixed)."""
    ihdr = png[12:16] + width.to_bytes(4, "big") + height.to_bytes(4, "big") + png[24:29]
    return png[:12] + ihdr + zlib.crc32(ihdr).to_bytes(4, "big") + png[33:]


def _heif_declaring(heif: bytes, width: int, height: int) -> bytes:
    """``heif`` (64 x 64: no clean-aperture crop) with its ``ispe`` box patched."""
    at = heif.index(b"ispe")
    assert heif.count(b"ispe") == 1 and b"clap" not in heif
    return heif[: at + 8] + width.to_bytes(4, "big") + height.to_bytes(4, "big") + heif[at + 16 :]


def _assert_scene(jpeg: bytes, *, corner: tuple[int, int, int] = RED) -> None:
    """``jpeg`` is the upright scene: a JPEG of 64 x 48, blue top left, without EXIF."""
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.format == "JPEG" and image.size == UPRIGHT
        assert not image.getexif(), dict(image.getexif())  # no GPS, no maker, no orientation
        assert b"Exif" not in jpeg[:4096]
        rgb = image.convert("RGB")
        for (x, y), want in {(4, 4): BLUE, (40, 8): RED, (4, 40): RED, (60, 44): corner}.items():
            got = rgb.getpixel((x, y))
            assert isinstance(got, tuple)
            assert all(abs(g - w) < 40 for g, w in zip(got, want, strict=True)), ((x, y), got)


# -- through the API --------------------------------------------------------------------


def _assigned(env: ServerEnv) -> tuple[TestClient, str]:
    """A reviewer and the URL of a confirmed event whose hazard waits for evidence."""
    device = env.device("site-a")
    body = event_json("site-a")
    assert post_event(device, body).status_code == 201
    reviewer = env.user(f"rev-{uuid.uuid4().hex[:6]}", Role.REVIEWER, ["site-a"])
    url = f"/api/v1/events/{body['event_id']}"
    assert reviewer.post(f"{url}/verdict", json={"verdict": "confirmed"}).status_code == 200
    deadline = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    assign = {"responsible": "Foreman Li", "deadline": deadline}
    assert reviewer.post(f"{url}/hazard", json=assign).status_code == 200
    return reviewer, url


def _upload(reviewer: TestClient, url: str, photo: bytes, fmt: str) -> Any:
    name, content_type = NAMES[fmt]
    return reviewer.post(
        f"{url}/hazard/evidence",
        files={"file": (name, photo, content_type)},
        data={"note": "rail fixed"},
    )


def _evidence_row(env: ServerEnv, url: str) -> Media | None:
    event_id = uuid.UUID(url.split("/")[-1])
    with env.database.session() as db:
        return db.scalar(
            select(Media).where(Media.event_id == event_id, Media.kind == MediaKind.EVIDENCE)
        )


def _stored_files(env: ServerEnv) -> list[Path]:
    return sorted(p for p in env.settings.resolved_media_dir.rglob("*") if p.is_file())


@pytest.mark.parametrize("fmt", ["PNG", "HEIF"])
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_png_and_heic_evidence_is_stored_as_jpeg_without_exif(
    server_env: ServerEnv, fmt: str, mode: str
) -> None:
    reviewer, url = _assigned(server_env)
    photo = _phone_photo(fmt, mode=mode)
    with Image.open(io.BytesIO(photo)) as sent:  # the fixture carries what the server drops
        assert sent.format == fmt and GPS_IFD in sent.getexif()
    answer = _upload(reviewer, url, photo, fmt)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "rectified"

    download = reviewer.get(f"{url}/media/evidence")
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/jpeg"
    _assert_scene(download.content, corner=WHITE if mode == "RGBA" else RED)
    row = _evidence_row(server_env, url)
    assert row is not None and row.content_type == "image/jpeg"
    assert row.stored_name.endswith(".jpg") and row.size_bytes == len(download.content)
    [stored] = _stored_files(server_env)  # the upload itself is not kept, nor staged
    assert stored.read_bytes() == download.content


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "HEIF"])
def test_a_turned_phone_photo_is_stored_upright(server_env: ServerEnv, fmt: str) -> None:
    reviewer, url = _assigned(server_env)
    photo = _phone_photo(fmt, orientation=6)
    with Image.open(io.BytesIO(photo)) as sent:
        # what a viewer ignoring the tag shows: 48 x 64, the blue square top right
        # (pillow-heif turns a HEIC as its irot box says already on open)
        assert sent.format == fmt
        assert sent.size == (UPRIGHT if fmt == "HEIF" else (48, 64))
    answer = _upload(reviewer, url, photo, fmt)
    assert answer.status_code == 200, answer.text
    download = reviewer.get(f"{url}/media/evidence")
    _assert_scene(download.content)
    row = _evidence_row(server_env, url)
    assert row is not None and row.content_type == "image/jpeg"


def test_an_upright_jpeg_is_kept_byte_for_byte(server_env: ServerEnv) -> None:
    reviewer, url = _assigned(server_env)
    photo = _phone_photo("JPEG")  # no orientation tag: nothing to turn
    assert _upload(reviewer, url, photo, "JPEG").status_code == 200
    assert reviewer.get(f"{url}/media/evidence").content == photo


BROKEN: dict[str, tuple[str, bytes]] = {
    "png-truncated": ("PNG", _noise("PNG")[:-2000]),
    "png-half": ("PNG", _noise("PNG")[:6000]),
    "heif-truncated": ("HEIF", _noise("HEIF")[:-10]),
    "heif-half": ("HEIF", _noise("HEIF")[: len(_noise("HEIF")) // 2]),
    "heic-brand-garbage": (
        "HEIF",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1" + os.urandom(600),
    ),
    "mif1-brand-garbage": ("HEIF", b"\x00\x00\x00\x10ftypmif1\x00\x00\x00\x00" + os.urandom(600)),
}


@pytest.mark.parametrize("fmt, photo", BROKEN.values(), ids=BROKEN.keys())
def test_broken_png_or_heic_evidence_is_422_naming_its_kind(
    server_env: ServerEnv, fmt: str, photo: bytes
) -> None:
    assert sniff(photo[:64]) == {"PNG": PNG, "HEIF": HEIF}[fmt]
    reviewer, url = _assigned(server_env)
    answer = _upload(reviewer, url, photo, fmt)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith("evidence photo") and fmt in detail, detail
    assert reviewer.get(f"{url}/hazard").json()["status"] == "assigned"
    assert _stored_files(server_env) == []


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoding the pixels of any image (Pillow's formats, or HEIF) fails the test."""

    def refuse(*_args: Any) -> Any:
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    monkeypatch.setattr(pillow_heif.HeifImage, "data", property(refuse))


SIZES = [(20000, 20000), (9000, 9000), (13000, 8)]


@pytest.mark.parametrize("fmt", ["PNG", "HEIF"])
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_png_or_heic_declaring_too_many_pixels_is_413_before_decoding(
    server_env: ServerEnv, fmt: str, size: tuple[int, int], no_decoding: None
) -> None:
    declare = _png_declaring if fmt == "PNG" else _heif_declaring
    bomb = declare(_encode(Image.new("RGB", (64, 64), RED), fmt), *size)
    with pytest.raises(MediaProblem) as refused:
        check_image(bomb, limits=MediaLimits(), formats=[fmt], what="photo")
    assert refused.value.status == 413 and "pixels" in refused.value.reason
    reviewer, url = _assigned(server_env)
    answer = _upload(reviewer, url, bomb, fmt)
    assert answer.status_code == 413, answer.text
    assert "pixels" in answer.json()["detail"]
    assert _stored_files(server_env) == []


@pytest.mark.parametrize("fmt", ["PNG", "HEIF"])
def test_the_declared_size_is_what_is_decoded(fmt: str) -> None:
    """A header within the limits over a smaller picture does not pass either."""
    declare = _png_declaring if fmt == "PNG" else _heif_declaring
    liar = declare(_encode(Image.new("RGB", (64, 64), RED), fmt), 2000, 2000)
    with pytest.raises(MediaProblem) as refused:
        check_image(liar, limits=MediaLimits(), formats=[fmt])
    assert refused.value.status == 422


def test_limits_of_the_settings_apply_to_png_and_heic(
    server_env: ServerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_env.settings, "max_image_side", 32)
    reviewer, url = _assigned(server_env)
    for fmt in ("PNG", "HEIF"):
        assert _upload(reviewer, url, _phone_photo(fmt), fmt).status_code == 413
    monkeypatch.setattr(server_env.settings, "max_image_side", 64)
    assert _upload(reviewer, url, _phone_photo("HEIF"), "HEIF").status_code == 200


# -- device media stay JPEG / MP4 ------------------------------------------------------


def test_sniffing_tells_heif_from_mp4_by_the_brand(mp4_bytes: bytes) -> None:
    assert sniff(mp4_bytes[:64]) == MP4
    for brand in (b"isom", b"mp42", b"avc1", b"iso5", b"M4V "):
        assert sniff(b"\x00\x00\x00\x18ftyp" + brand + b"\x00" * 12) == MP4
    for brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1"):
        assert sniff(b"\x00\x00\x00\x18ftyp" + brand + b"\x00" * 12) == HEIF
    assert sniff(b"\x00\x00\x00\x18ftypmsf1") == HEIF
    assert sniff(_phone_photo("HEIF")) == HEIF and sniff(_phone_photo("PNG")) == PNG
    assert sniff(_phone_photo("JPEG")) == JPEG


@pytest.mark.parametrize("kind", ["snapshot", "snapshot_clean", "face", "clip"])
def test_a_heic_as_device_media_is_415(server_env: ServerEnv, kind: str) -> None:
    device = server_env.device("site-a")
    body = event_json("site-a")
    assert post_event(device, body).status_code == 201
    url = f"/api/v1/events/{body['event_id']}/media/{kind}"
    for photo, name in ((_phone_photo("HEIF"), "s.heic"), (_phone_photo("PNG"), "s.png")):
        answer = device.put(url, files={"file": (name, photo, "image/jpeg")})
        assert answer.status_code == 415, answer.text
    assert _stored_files(server_env) == []


def test_an_upright_jpeg_is_not_rewritten(tmp_path: Path, jpeg_bytes: bytes) -> None:
    source, target = tmp_path / "up.part", tmp_path / "up-jpg.part"
    source.write_bytes(jpeg_bytes)
    info = check_photo(source, target, limits=MediaLimits(), what="photo")
    assert (info.format, info.converted, target.exists()) == ("JPEG", False, False)
    source.write_bytes(_phone_photo("HEIF", orientation=6))
    info = check_photo(source, target, limits=MediaLimits(), what="photo")
    assert (info.format, info.converted, info.width, info.height) == ("HEIF", True, 64, 48)
    _assert_scene(target.read_bytes())
