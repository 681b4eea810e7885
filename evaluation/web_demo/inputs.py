"""Checking what a browser sends before a model sees it: files, sizes, model names.

Every problem becomes a `DemoInputError` whose message is shown in the page as is, so each one
says what was wrong with which file and what to do instead.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from dataset.images import ImageReadError, to_grayscale8
from evaluation.demo import IMAGE_SUFFIXES

ACCEPTED = "PNG, JPEG or TIFF (8- or 16-bit, grayscale or RGB)"


class DemoInputError(ValueError):
    """Input the demo cannot use; the message is meant for the person at the browser."""


def read_upload(path: str | Path, crop_size: int, max_bytes: int, max_pixels: int,
                display_name: str | None = None) -> Image.Image:
    """Read one uploaded scan as 8-bit grayscale, refusing what the model cannot use.

    The header is read before the pixels, so a huge image is refused without decoding it.

    Args:
        path: the uploaded file.
        crop_size: side of the square the model sees; smaller images are refused (stretching a tiny
            image up to the crop would show the model something that is not a scan).
        max_bytes: largest accepted file.
        max_pixels: largest accepted width x height.
        display_name: the name the user knows the file by (default: its file name).

    Returns:
        The scan in mode `L`.

    Raises:
        DemoInputError: not an image, empty, too large, too small, several frames, or unreadable.
    """
    path = Path(path)
    name = display_name or path.name
    if not path.is_file():
        raise DemoInputError(f"{name}: the upload did not arrive; upload it again")
    size = path.stat().st_size
    if size == 0:
        raise DemoInputError(f"{name}: the file is empty; upload an OCT B-scan as {ACCEPTED}")
    if size > max_bytes:
        raise DemoInputError(f"{name}: {size / 1e6:.1f} MB is larger than the {max_bytes / 1e6:.0f} MB this "
                             "demo accepts; export a single B-scan")
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise DemoInputError(f"{name}: {width}x{height} pixels is larger than the "
                                     f"{max_pixels / 1e6:.0f} megapixels this demo accepts; export a single "
                                     "B-scan at its native size")
            frames = int(getattr(image, "n_frames", 1) or 1)
            if frames > 1:  # a volume (multi-page TIFF) or an animation: which frame is meant is a guess
                raise DemoInputError(f"{name}: holds {frames} images (an OCT volume?); the model reads one "
                                     "B-scan at a time, so export the B-scan you want as its own file")
            if width < crop_size or height < crop_size:
                raise DemoInputError(f"{name}: {width}x{height} pixels is smaller than the {crop_size}x"
                                     f"{crop_size} crop the model sees; upload a B-scan at least {crop_size} "
                                     "pixels on each side")
            image.load()
            return to_grayscale8(image)
    except DemoInputError:
        raise
    except Image.DecompressionBombError:
        raise DemoInputError(f"{name}: the image is too large to decode safely; export a single "
                             "B-scan") from None
    except (UnidentifiedImageError, ImageReadError, OSError, SyntaxError, ValueError) as err:
        kind = "not an image" if isinstance(err, UnidentifiedImageError) else f"unreadable ({err})"
        raise DemoInputError(f"{name}: {kind}; upload an OCT B-scan as {ACCEPTED}") from None


def sample_files(folder: str | Path) -> list[Path]:
    """The sample scans shipped in a folder (e.g. `dataset/processed_images/`), sorted; [] if none."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
