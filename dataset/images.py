"""Reading OCT scans from disk as 8-bit grayscale, whatever their stored bit depth or mode."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dataset.errors import InputError


class ImageReadError(InputError):
    """A scan is missing or cannot be decoded; the message names the file.

    Attributes:
        reason: what is wrong, without the file name (for lists that name the file already).
    """

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


class ImageTooSmallError(ImageReadError, InputError):
    """A scan is smaller than the square crop the model sees (e.g. a 4x4-pixel image)."""


# What Pillow raises for a file it cannot identify, decode or verify.
_UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


@contextmanager
def _open_image(path: Path, problem: str) -> Iterator[Image.Image]:
    """Open `path` with Pillow; a missing file, or a failure while it is open, raises an
    `ImageReadError` that names the file ("{problem} {path}: {error}")."""
    if not path.is_file():
        raise ImageReadError(f"image file not found: {path}", reason="file not found")
    if path.stat().st_size == 0:
        empty = "the file is empty (0 bytes)"
        raise ImageReadError(f"{problem} {path}: {empty}", reason=empty)
    try:
        with Image.open(path) as image:
            yield image
    except _UNREADABLE as err:
        # Pillow's messages repeat the path ("cannot identify image file '/x.png'"); say it once.
        detail = str(err).replace(f"'{path}'", "").replace(str(path), "").strip(" :") or type(err).__name__
        raise ImageReadError(f"{problem} {path}: {detail}", reason=f"{problem}: {detail}") from err


def load_scan(path: str | Path) -> Image.Image:
    """Load a scan as an 8-bit grayscale (`L`) PIL image.

    8-bit grayscale is returned as is; 16-bit grayscale is scaled from its full range (0-65535) to
    0-255; RGB, palette and alpha images are converted to luminance; float images are min-max
    scaled.

    Args:
        path: image file (PNG, TIFF, JPEG, ... anything Pillow reads).

    Returns:
        The scan in mode `L`.

    Raises:
        ImageReadError: the file is missing or not a readable image.
    """
    with _open_image(Path(path), "cannot read image") as image:
        image.load()
        return to_grayscale8(image)


def to_grayscale8(image: Image.Image) -> Image.Image:
    """Convert any Pillow image to 8-bit grayscale (see `load_scan` for the scaling rules)."""
    if image.mode == "L":
        return image.copy()
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        pixels = np.asarray(image, dtype=np.float64)
        # 16-bit scans use the full range; 32-bit integer images are treated the same way.
        return Image.fromarray(np.clip(pixels / 257.0, 0, 255).round().astype(np.uint8), mode="L")
    if image.mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        finite = np.isfinite(pixels)
        pixels = np.where(finite, pixels, np.nanmin(np.where(finite, pixels, np.nan)) if finite.any() else 0.0)
        low, high = float(pixels.min()), float(pixels.max())
        scaled = (pixels - low) / (high - low) * 255.0 if high > low else np.zeros_like(pixels)
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L")
    return image.convert("L")


def check_image_readable(path: str | Path) -> None:
    """Cheap integrity check (header and checksums) without decoding pixels fully.

    Raises:
        ImageReadError: the file is missing or corrupt.
    """
    with _open_image(Path(path), "corrupt image") as image:
        image.verify()


def check_scan_sizes(paths, ids, crop_size: int) -> None:
    """Check from the file headers alone (fast) that every scan is at least `crop_size` square.

    Args:
        paths: image files.
        ids: the rows' image ids, to name them.
        crop_size: `dataset.crop_size`.

    Raises:
        ImageTooSmallError: every too-small scan named with its size (before any training starts).
    """
    small = []
    for image_id, path in zip(ids, paths):
        try:
            with Image.open(path) as image:
                width, height = image.size
        except _UNREADABLE as err:
            raise ImageReadError(f"cannot read image {path} (row {image_id}): {err}") from err
        if min(width, height) < crop_size:
            small.append(f"{image_id} ({width}x{height} px)")
    if small:
        raise ImageTooSmallError(f"{len(small)} scan(s) are smaller than the {crop_size}x{crop_size} crop the model "
                                 f"sees: {', '.join(small[:10])}{' ...' if len(small) > 10 else ''}; give scans at "
                                 "least that size (or lower dataset.crop_size)")
