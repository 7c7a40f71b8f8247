"""Clutter: make a centred 28x28 item hard the way a CIFAR object is hard, by varying its scale, position,
background and contrast.

A CIFAR-10 object is easy for a trained CNN but poor for a linear probe on pixels or on random features,
because nothing about it sits at a fixed pixel: pose, place, size, background and contrast all vary. A
Fashion-MNIST item is the opposite (centred, black background, fixed size), so a linear probe on random
features reads it almost as well as a trained network. :func:`clutter` puts each item

* at a random scale (its side drawn from ``sizes``) and a random place on the canvas,
* over a random crop of a texture shipped inside scikit-image (brick, grass, gravel), itself at a random zoom,
* with a random object contrast, and the texture's contrast drawn separately.

These are the book's choices (the paper does not use them): they stand in for CIFAR's variability with
images that package registries ship.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .. import checks
from .sources import skimage_image

__all__ = ["Clutter", "TEXTURES", "clutter"]

TEXTURES = ("brick", "grass", "gravel")  # skimage.data's gray 512x512 textures


@dataclass(frozen=True)
class Clutter:
    """How :func:`clutter` varies each item: the item's side in pixels (low, high), both inclusive; the
    texture's zoom (low, high) (1 = the texture's own scale); the item's and the background's contrast ranges,
    in [0, 1]; the canvas side."""

    sizes: tuple[int, int] = (14, 28)
    zoom: tuple[float, float] = (0.5, 2.0)
    item_contrast: tuple[float, float] = (0.5, 1.0)
    background_contrast: tuple[float, float] = (0.2, 0.6)
    canvas: int = 28

    def __post_init__(self):
        checks.positive_int("canvas", self.canvas, "the side of the cluttered image, e.g. 28")
        low, high = self.sizes
        if not (1 <= low <= high <= self.canvas):
            raise ValueError(f"sizes must be (low, high) with 1 <= low <= high <= canvas ({self.canvas}), "
                             f"got {self.sizes!r}")
        for name in ("item_contrast", "background_contrast"):
            low, high = getattr(self, name)
            if not (0 <= low <= high <= 1):
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high <= 1, got {(low, high)!r}")
        if not (0 < self.zoom[0] <= self.zoom[1]):
            raise ValueError(f"zoom must be (low, high) with 0 < low <= high, got {self.zoom!r}")

    def describe(self) -> str:
        """One line for a data set's ``source``."""
        return (f"item side {self.sizes[0]}-{self.sizes[1]} px at a random place on a {self.canvas} px texture "
                f"crop ({', '.join(TEXTURES)}), item contrast {self.item_contrast[0]:g}-{self.item_contrast[1]:g}, "
                f"texture contrast {self.background_contrast[0]:g}-{self.background_contrast[1]:g}")


@functools.lru_cache(maxsize=1)
def _textures() -> tuple[np.ndarray, ...]:
    """scikit-image's textures, float in [0, 1] (without scikit-image, the same files downloaded)."""
    return tuple(skimage_image(name).astype(np.float32) / 255 for name in TEXTURES)


def _resized(image: np.ndarray, side: int) -> np.ndarray:
    """A float image (H, W) in [0, 1] resized to (side, side), bilinear."""
    return np.asarray(Image.fromarray(image).resize((side, side), Image.BILINEAR), dtype=np.float32)


def _background(rng: np.random.Generator, settings: Clutter) -> np.ndarray:
    """A random (canvas, canvas) crop of a random texture at a random zoom, stretched to a random contrast."""
    texture = _textures()[rng.integers(len(TEXTURES))]
    zoom = rng.uniform(*settings.zoom)
    crop = int(np.clip(round(settings.canvas / zoom), 2, texture.shape[0]))
    top, left = rng.integers(0, texture.shape[0] - crop + 1, 2)
    patch = _resized(texture[top:top + crop, left:left + crop], settings.canvas)
    patch = (patch - patch.min()) / max(float(np.ptp(patch)), 1e-6)
    return patch * rng.uniform(*settings.background_contrast)


def clutter(images: np.ndarray, rng: np.random.Generator, settings: Clutter = Clutter()) -> np.ndarray:
    """uint8 items (N, H, W) on black -> uint8 (N, canvas, canvas): each item rescaled, placed at random over a
    texture crop, at a random contrast (see :class:`Clutter`). The item's pixels cover the background in
    proportion to their brightness. Reproducible from ``rng``."""
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 gray items (N, H, W), got {images.dtype} {images.shape}")
    out = np.empty((len(images), settings.canvas, settings.canvas), dtype=np.uint8)
    for i, image in enumerate(images):
        side = int(rng.integers(settings.sizes[0], settings.sizes[1] + 1))
        item = _resized(image.astype(np.float32) / 255, side)
        top, left = rng.integers(0, settings.canvas - side + 1, 2)
        canvas = _background(rng, settings)
        alpha = np.zeros_like(canvas)
        alpha[top:top + side, left:left + side] = np.clip(item, 0, 1)
        canvas = (1 - alpha) * canvas + alpha * rng.uniform(*settings.item_contrast)
        out[i] = np.round(np.clip(canvas, 0, 1) * 255)
    return out
