"""Web demo input checks (fast, no model): what the page says about files it cannot use."""

import numpy as np
import pytest
from PIL import Image

from evaluation.web_demo.inputs import DemoInputError, read_upload
from evaluation.web_demo.launch import auth_pair

LIMITS = {"crop_size": 192, "max_bytes": 5_000_000, "max_pixels": 4_000_000}


def _scan(shape=(208, 256), dtype=np.uint8, high=255) -> np.ndarray:
    return np.random.default_rng(0).integers(0, high, size=shape, dtype=dtype)


@pytest.mark.parametrize("name, save", [
    ("gray8.png", lambda p: Image.fromarray(_scan()).save(p)),
    ("gray16.tif", lambda p: Image.fromarray(_scan(dtype=np.uint16, high=65535)).save(p)),
    ("gray16.png", lambda p: Image.fromarray(_scan(dtype=np.uint16, high=65535)).save(p)),
    ("rgb.jpg", lambda p: Image.fromarray(np.stack([_scan()] * 3, axis=-1)).save(p, quality=95)),
    ("rgb.tiff", lambda p: Image.fromarray(np.stack([_scan()] * 3, axis=-1)).save(p)),
    ("gray.jpg", lambda p: Image.fromarray(_scan()).save(p, quality=95)),
    ("gray8.tif", lambda p: Image.fromarray(_scan()).save(p)),
    ("rgba.png", lambda p: Image.fromarray(np.stack([_scan()] * 3 + [np.full((208, 256), 255, np.uint8)],
                                                    axis=-1)).save(p)),
    ("float.tif", lambda p: Image.fromarray(_scan().astype(np.float32) / 255).save(p)),
    ("jpeg_named.png", lambda p: Image.fromarray(_scan()).save(p, format="JPEG")),
])
def test_accepted_formats_become_8_bit_grayscale(tmp_path, name, save):
    path = tmp_path / name
    save(path)
    scan = read_upload(path, **LIMITS)
    assert scan.mode == "L" and scan.size == (256, 208)
    assert np.asarray(scan).max() > 128  # 16-bit scans are scaled down, not clipped to black or white


@pytest.mark.parametrize("name, write, message", [
    ("notes.txt", lambda p: p.write_text("not a scan"), "notes.txt: not an image"),
    ("empty.png", lambda p: p.write_bytes(b""), "empty.png: the file is empty"),
    ("truncated.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40), "truncated.png: "),
    ("tiny.png", lambda p: Image.fromarray(_scan((100, 300))).save(p),
     "100 pixels is smaller than the 192x192 crop"),
    ("huge.png", lambda p: Image.fromarray(np.zeros((2100, 2100), np.uint8)).save(p), "megapixels"),
    ("heavy.png", lambda p: p.write_bytes(b"\x89PNG" + b"\x01" * 5_000_001), "MB is larger than"),
    ("bomb.png", lambda p: Image.new("L", (15_000, 15_000)).save(p), "too large to decode safely"),
    ("volume.tif", lambda p: Image.fromarray(_scan()).save(p, save_all=True,
                                                           append_images=[Image.fromarray(_scan())]),
     "volume.tif: holds 2 images"),
    ("scan.pdf", lambda p: p.write_bytes(b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n"), "scan.pdf: not an image"),
])
def test_unusable_files_get_a_message_naming_the_file(tmp_path, name, write, message):
    path = tmp_path / name
    write(path)
    with pytest.raises(DemoInputError, match=message.replace("(", r"\(")):
        read_upload(path, **LIMITS)


def test_the_name_the_user_knows_is_used(tmp_path):
    path = tmp_path / "upload_3f2a"
    path.write_text("x")
    with pytest.raises(DemoInputError, match="^my_scan.png: not an image"):
        read_upload(path, display_name="my_scan.png", **LIMITS)


def test_auth_needs_both_user_and_password():
    assert auth_pair(None) is None and auth_pair({"user": None, "password": None}) is None
    assert auth_pair({"user": "ana", "password": "pw"}) == ("ana", "pw")
    with pytest.raises(ValueError, match="both user and password"):
        auth_pair({"user": "ana", "password": None})


def test_scans_with_the_same_file_name_keep_apart():
    from evaluation.web_demo.app import unique_names

    assert unique_names(["a.png", "b.png", "a.png", "a.png"]) == ["a.png", "b.png", "a.png (2)", "a.png (3)"]


def test_the_page_is_private_unless_asked():
    """Loopback only, no public share link, no login unless both user and password are given."""
    from support.configs import compose_overrides

    demo = compose_overrides("web_demo", ["paths=template"]).demo
    assert demo.host == "127.0.0.1" and demo.share is False and auth_pair(demo.auth) is None
    assert compose_overrides("web_demo", ["paths=template", "pretrained_models=retinavlm_base_192px"]) \
        .pretrained_models.name == "retinavlm_base_192px"
