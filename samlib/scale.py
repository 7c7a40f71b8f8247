"""One switch for the scale of every experiment: ``book`` (CPU, minutes) or ``paper`` (GPU, real data).

Set it with the environment variable ``SAMLIB_SCALE`` before starting the kernel, or with
:func:`set_scale` at the top of a notebook. The committed book and CI use ``book``. Both take the names in any
case with surrounding spaces (``SAMLIB_SCALE=" Paper "``); anything else is refused.
"""
from __future__ import annotations

import os

import torch

__all__ = ["SCALES", "current", "set_scale", "choose", "device"]

SCALES = ("book", "paper")
_override: str | None = None


def _check(scale, where: str = "scale") -> str:
    """``scale`` as one of :data:`SCALES` (any case, surrounding spaces ignored), else a ValueError naming it."""
    if not isinstance(scale, str):
        raise TypeError(f"{where} must be one of {SCALES} (a string), got {type(scale).__name__} {scale!r}")
    if scale.strip().lower() not in SCALES:
        raise ValueError(f"unknown scale {scale!r} in {where}: use one of {SCALES} (e.g. SAMLIB_SCALE=paper)")
    return scale.strip().lower()


def current() -> str:
    """The active scale: :func:`set_scale`'s value, else ``$SAMLIB_SCALE``, else ``book``."""
    if _override is not None:
        return _override
    return _check(os.environ.get("SAMLIB_SCALE", "book"), "$SAMLIB_SCALE")


def set_scale(scale: str | None) -> None:
    """Choose the scale for this process (``None`` goes back to ``$SAMLIB_SCALE``)."""
    global _override
    _override = None if scale is None else _check(scale, "set_scale")


def choose(book, paper):
    """``book`` at book scale, ``paper`` at paper scale: ``epochs = choose(book=8, paper=200)``."""
    return book if current() == "book" else paper


def device() -> torch.device:
    """CPU at book scale (reproducible outputs); the GPU at paper scale when there is one."""
    if current() == "paper" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")
