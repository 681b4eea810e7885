"""Small deterministic scans for tests: noise, or noise with one bright lesion and its mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_scan(path: Path, seed: int, size: tuple[int, int] = (208, 256), mode: str = "L") -> Path:
    """Write a noise scan (seeded) as an 8-bit grayscale, 16-bit grayscale (`I;16`) or `RGB` image."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=size, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        Image.fromarray(pixels.astype(np.uint16) * 257).save(path)
    elif mode == "RGB":
        Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(path)
    else:
        Image.fromarray(pixels, mode="L").save(path)
    return path


def lesion_scan(seed: int, size: tuple[int, int] = (208, 256)) -> tuple[Image.Image, np.ndarray]:
    """A noisy scan with one bright rectangle and that rectangle's boolean mask."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(20, 90, size=size).astype(np.uint8)
    top, left = int(rng.integers(40, size[0] - 60)), int(rng.integers(40, size[1] - 70))
    mask = np.zeros(size, bool)
    mask[top:top + 20, left:left + 30] = True
    pixels[mask] = 230
    return Image.fromarray(pixels, mode="L"), mask


def view_of(scan: Image.Image, crop: int = 192) -> Image.Image:
    """The model's view of a 208x256 scan: its centre crop."""
    top, left = (scan.height - crop) // 2, (scan.width - crop) // 2
    return scan.crop((left, top, left + crop, top + crop))
