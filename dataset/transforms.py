"""Scan transforms: a random augmented crop for training, a centre crop for evaluation.

Written with Pillow and NumPy because torchvision does not work with the pinned CPU torch build;
the operations are few and simple (rotate, crop, brightness/contrast, noise).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Augmentation:
    """Training-time augmentation strengths (all zero means none)."""

    rotation_degrees: float = 0.0
    crop_jitter: int = 0
    brightness: float = 0.0
    contrast: float = 0.0
    noise_std: float = 0.0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> "Augmentation":
        if not cfg:
            return cls()
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f"unknown augmentation option(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{k: cfg[k] for k in cfg})


class ScanTransform:
    """Resize a grayscale scan to the dataset's stored size, then crop a `crop_size` square.

    Args:
        crop_size: side of the square the model sees.
        image_size: (height, width) scans are brought to before cropping; None keeps them as read.
        augmentation: random augmentation for training; None gives a deterministic centre crop.
    """

    def __init__(self, crop_size: int, image_size: tuple[int, int] | None = None,
                 augmentation: Augmentation | None = None):
        self.crop_size = int(crop_size)
        self.image_size = tuple(image_size) if image_size else None
        self.augmentation = augmentation

    def __call__(self, image: Image.Image, rng: np.random.Generator | None = None) -> Image.Image:
        """Transform one `L` scan; `rng` drives the augmentation (a fresh one if None).

        Raises:
            ImageTooSmallError: the scan is narrower or lower than `crop_size` (a thumbnail or a
                broken export, which resizing would blow up into a meaningless scan).
        """
        if min(image.size) < self.crop_size:
            from dataset.images import ImageTooSmallError

            where = getattr(image, "filename", "") or "a scan"
            raise ImageTooSmallError(
                f"{where} is {image.width}x{image.height} px, smaller than the {self.crop_size}x{self.crop_size} "
                "crop the model sees; give scans at least that size (or lower dataset.crop_size)")
        if image.mode != "L":
            image = image.convert("L")
        if self.image_size and image.size != (self.image_size[1], self.image_size[0]):
            image = image.resize((self.image_size[1], self.image_size[0]), Image.BILINEAR)
        image = self._pad_to_crop(image)
        aug = self.augmentation
        if aug is None:
            return self._crop(image, 0, 0)
        rng = rng if rng is not None else np.random.default_rng()
        if aug.rotation_degrees:
            angle = float(rng.uniform(-aug.rotation_degrees, aug.rotation_degrees))
            image = image.rotate(angle, resample=Image.BILINEAR)
        dy, dx = (rng.integers(-aug.crop_jitter, aug.crop_jitter + 1, size=2) if aug.crop_jitter else (0, 0))
        image = self._crop(image, int(dy), int(dx))
        return self._photometric(image, aug, rng)

    def centre_crop_box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the evaluation crop for a scan of this size, after resizing;
        use it to crop lesion masks the same way as images."""
        if self.image_size:
            height, width = self.image_size
        top = max(0, (height - self.crop_size) // 2)
        left = max(0, (width - self.crop_size) // 2)
        return left, top, left + self.crop_size, top + self.crop_size

    def _pad_to_crop(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        if width >= self.crop_size and height >= self.crop_size:
            return image
        canvas = Image.new("L", (max(width, self.crop_size), max(height, self.crop_size)), 0)
        canvas.paste(image, ((canvas.width - width) // 2, (canvas.height - height) // 2))
        return canvas

    def _crop(self, image: Image.Image, dy: int, dx: int) -> Image.Image:
        width, height = image.size
        top = int(np.clip((height - self.crop_size) // 2 + dy, 0, height - self.crop_size))
        left = int(np.clip((width - self.crop_size) // 2 + dx, 0, width - self.crop_size))
        return image.crop((left, top, left + self.crop_size, top + self.crop_size))

    @staticmethod
    def _photometric(image: Image.Image, aug: Augmentation, rng: np.random.Generator) -> Image.Image:
        if not (aug.brightness or aug.contrast or aug.noise_std):
            return image
        pixels = np.asarray(image, dtype=np.float32) / 255.0
        if aug.contrast:
            mean = pixels.mean()
            pixels = (pixels - mean) * float(rng.uniform(1 - aug.contrast, 1 + aug.contrast)) + mean
        if aug.brightness:
            pixels = pixels * float(rng.uniform(1 - aug.brightness, 1 + aug.brightness))
        if aug.noise_std:
            pixels = pixels + rng.normal(0.0, aug.noise_std, size=pixels.shape).astype(np.float32)
        return Image.fromarray((np.clip(pixels, 0, 1) * 255).round().astype(np.uint8), mode="L")


def build_scan_transform(crop_size: int, augmentation: Mapping[str, Any] | None = None,
                         image_size: tuple[int, int] | None = None) -> ScanTransform:
    """Make the scan transform for a dataset config.

    Args:
        crop_size: `dataset.crop_size`.
        augmentation: `dataset.augmentation` for training; None for evaluation (centre crop).
        image_size: (`dataset.image_height`, `dataset.image_width`) to resize scans of other sizes.
    """
    aug = Augmentation.from_config(augmentation) if augmentation is not None else None
    return ScanTransform(crop_size, image_size=image_size, augmentation=aug)
