"""The scanner: multiplicative speckle, a noisy background, log compression and the per-scan
brightness, contrast and sharpness variation of real devices, linked to a quality index."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Dynamic range (decades of linear intensity) spanned by log reflectivity 0..1.
DYNAMIC_RANGE = 2.6


@dataclass(frozen=True)
class ScannerSettings:
    """Acquisition settings of one scan; lower quality means fewer averaged frames (stronger
    speckle), more background noise, less contrast and more darkening towards the scan edges."""

    speckle: float
    noise: float
    gain: float
    contrast: float
    edge_falloff: float

    @classmethod
    def sample(cls, quality: float, rng: np.random.Generator) -> ScannerSettings:
        """Settings for a scan with quality index `quality` (0-100)."""
        q = float(np.clip(quality, 0, 100)) / 100.0
        frames = 1.0 + 4.0 * q ** 2 * rng.uniform(0.8, 1.2)
        return cls(speckle=1.0 / np.sqrt(frames),
                   noise=0.06 + 0.22 * (1.0 - q) * rng.uniform(0.7, 1.3),
                   gain=rng.uniform(-0.05, 0.05),
                   contrast=(0.85 + 0.25 * q) * rng.uniform(0.93, 1.07),
                   edge_falloff=rng.uniform(0.0, 0.3) * (1.2 - q))


def acquire(log_reflectivity: np.ndarray, settings: ScannerSettings, rng: np.random.Generator) -> np.ndarray:
    """Simulate acquisition of a log-reflectivity map and return an 8-bit image.

    Args:
        log_reflectivity: (H, W) float in about [0, 1].
        settings: scanner settings of this scan.
        rng: random generator for this scan.

    Returns:
        (H, W) uint8 log-intensity image.
    """
    height, width = log_reflectivity.shape
    cols = np.linspace(-1.0, 1.0, width, dtype=np.float32)
    vignette = settings.edge_falloff * cols ** 2
    # Fully developed speckle is exponential in intensity; averaging frames shrinks its spread in
    # the log domain, approximated by scaling the log of one exponential draw (cheap, keeps the
    # characteristic dark holes). Mixing each row with the one above makes grains taller than wide.
    # Natural logs throughout: numpy's float32 log10 is several times slower than log.
    ln10 = np.float32(np.log(10.0))
    draws = -np.log(rng.random((height, width), dtype=np.float32) + np.float32(1e-7))  # exponential
    log_speckle = np.log(draws + np.float32(1e-3)) / ln10
    log_speckle[1:] = 0.65 * log_speckle[1:] + 0.35 * log_speckle[:-1]
    log_speckle *= np.float32(settings.speckle * 1.1)
    exponent = DYNAMIC_RANGE * (log_reflectivity - vignette[None, :]) + log_speckle
    # The background noise reuses the draws mirrored top to bottom: independent where it matters
    # (a pixel's speckle and its noise come from different draws) at half the sampling cost.
    background = draws[::-1] * np.float32(settings.noise)
    display = np.log(np.exp(exponent * ln10) + background) / (ln10 * DYNAMIC_RANGE)
    display = (display + 0.1 + settings.gain) * settings.contrast
    return np.clip(display * 255.0, 0, 255).astype(np.uint8)
