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
    ("tiny.png", lambda p: Image.fromarray(_scan((100, 300))).save(p), "100 pixels is smaller than the 192x192 crop"),
    ("huge.png", lambda p: Image.fromarray(np.zeros((2100, 2100), np.uint8)).save(p), "megapixels"),
    ("heavy.png", lambda p: p.write_bytes(b"\x89PNG" + b"\x01" * 5_000_001), "MB is larger than"),
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
