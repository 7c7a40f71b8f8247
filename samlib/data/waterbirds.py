"""Waterbirds (Sagawa et al., 2020): a bird (label ``y``) on a background (``place``) that agrees
with it in 95% of the training images; groups ``2 * y + place``.

* :func:`load_waterbirds`: the standard folder (``metadata.csv`` + images) as distributed for
  group-DRO and WILDS; :func:`download_waterbirds` fetches group-DRO's tarball (Colab);
* :func:`waterbirds_standin`: the offline stand-in of the book: Fashion-MNIST objects (tops vs
  footwear) pasted onto crops of real photos and textures shipped inside ``scikit-image``, tinted
  into "land" (grass, gravel, brick) and "water" (evening sky, a blue-tinted lunar surface);
* :func:`pixel_probe_errors`: linear probes on raw pixels, to check that the background is easier
  to read than the object.
"""
from __future__ import annotations

import functools
import math
import os
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .. import checks
from .dominoes import agreeing_labels
from .sources import ImageSet, check_count, check_values, class_index, fashion_mnist, skimage_image

__all__ = ["Waterbirds", "PLACES", "SPLIT_CODES", "WATERBIRDS_URL", "load_waterbirds", "download_waterbirds",
           "waterbirds_standin", "pixel_probe_errors", "LAND", "WATER", "STANDIN_CLASSES"]

PLACES = ("land", "water")
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}  # the metadata.csv convention
WATERBIRDS_URL = "https://nlp.stanford.edu/data/dro/waterbird_complete95_forest2water2.tar.gz"  # group-DRO
_COLUMNS = ("img_filename", "y", "place", "split")
_CODES = {"y": {0: "landbird", 1: "waterbird"}, "place": dict(enumerate(PLACES)),  # the codes each column may hold
          "split": {code: name for name, code in SPLIT_CODES.items()}}

# Stand-in: label 0 "tops", label 1 "footwear" (Fashion-MNIST classes).
STANDIN_CLASSES = {"top": ("t-shirt/top", "pullover", "shirt"), "footwear": ("sandal", "sneaker", "ankle boot")}
# Backgrounds: (skimage.data image, crop box (top, left, bottom, right) or None for all, RGB tint of a gray image).
LAND = (("grass", None, (0.45, 0.65, 0.25)), ("gravel", None, (0.7, 0.58, 0.42)), ("brick", None, (0.75, 0.5, 0.4)))
WATER = (("rocket", (0, 95, 330, 185), None), ("rocket", (0, 215, 330, 300), None),
         ("moon", None, (0.35, 0.55, 0.95)))
_CROP = 96  # side of a background crop, in pixels of the source image


@dataclass(frozen=True)
class Waterbirds:
    """``images`` float32 (N, 3, H, W) in [0, 1]; ``y`` (N,) the object's label, ``place`` (N,) the
    background's (0 land, 1 water), ``group`` = 2 * y + place; ``classes``: the names of y = 0 and 1."""

    images: Tensor
    y: Tensor
    place: Tensor
    group: Tensor
    classes: tuple[str, str]
    source: str

    def __len__(self) -> int:
        return len(self.y)

    @property
    def group_names(self) -> tuple[str, ...]:
        """Name of each group index: ``group_names[2 * y + place]``, e.g. 'waterbird on land'."""
        return tuple(f"{c} on {p}" for c in self.classes for p in PLACES)

    @property
    def agreement(self) -> float:
        """The fraction of images whose background agrees with the label (place == y)."""
        return float((self.y == self.place).double().mean())


def _check_split(split: str) -> str:
    if split not in SPLIT_CODES:
        raise ValueError(f"unknown split {split!r}: use one of {', '.join(SPLIT_CODES)}")
    return split


def _tensors(images: np.ndarray, y: np.ndarray, place: np.ndarray, classes, source: str) -> Waterbirds:
    y, place = (torch.from_numpy(np.array(a, np.int64)) for a in (y, place))  # copies: pandas arrays are read-only
    return Waterbirds(torch.from_numpy(np.ascontiguousarray(images)), y, place, 2 * y + place, classes, source)


# --- the real folder ---------------------------------------------------------------------------------


def _read_metadata(folder: Path):
    """``folder``'s metadata.csv, checked: every column of :data:`_COLUMNS`; y, place and split hold only their
    codes (:data:`_CODES`; read as int64)."""
    import pandas as pd

    if not folder.is_dir():
        raise FileNotFoundError(f"no Waterbirds folder at {folder}; download it with "
                                f"samlib.data.waterbirds.download_waterbirds(root) (needs a network) or from "
                                f"{WATERBIRDS_URL}")
    path = folder / "metadata.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no metadata.csv: point root at the unpacked Waterbirds folder "
                                "(e.g. waterbird_complete95_forest2water2/)")
    try:
        table = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a readable metadata.csv ({type(e).__name__}: {str(e).strip()[:120]}); it "
                         f"needs a header line {','.join(_COLUMNS)} and one row per image: re-download or "
                         "re-extract the Waterbirds folder") from None
    missing = [c for c in _COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {', '.join(missing)}; it needs {', '.join(_COLUMNS)} "
                         f"(found {', '.join(map(str, table.columns))})")
    if table.empty:
        raise ValueError(f"{path} has a header but no rows: it must list every image (one row each); re-download or "
                         "re-extract the Waterbirds folder")
    for column, codes in _CODES.items():
        allowed = ", ".join(f"{code} ({name})" for code, name in codes.items())
        check_values(table[column].to_numpy(), tuple(codes), f"{path}: column {column!r}",
                      f"it may hold only the codes {allowed} (a blank cell reads as nan)")
    names = table["img_filename"]
    blank = [i for i, name in enumerate(names.tolist()) if not (isinstance(name, str) and name.strip())]
    if blank:
        raise ValueError(f"{path}: column 'img_filename' has {len(blank)} blank or non-text cell(s), in data row(s) "
                         f"{', '.join(str(i + 1) for i in blank[:5])}: every row must name its image file")
    return table.astype({column: "int64" for column in _CODES})


def _center_crop(path: Path, size: int) -> np.ndarray:
    """RGB uint8 (size, size, 3): shorter side resized to size * 256/224, then the centre crop (as group-DRO)."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = size * 256 / 224 / min(im.size)
        im = im.resize((max(size, round(im.size[0] * scale)), max(size, round(im.size[1] * scale))), Image.BILINEAR)
        left, top = (im.size[0] - size) // 2, (im.size[1] - size) // 2
        return np.asarray(im.crop((left, top, left + size, top + size)))


def load_waterbirds(root, split: str, image_size: int = 224) -> Waterbirds:
    """The ``split`` ('train', 'val' or 'test') of the Waterbirds folder ``root`` (``metadata.csv`` with
    columns img_filename, y, place, split (0/1/2), and the images it names), resized and centre-cropped
    to ``image_size``. Memory: N * 3 * image_size**2 * 4 bytes (train at 224: about 2.9 GB).
    Bad codes in metadata.csv, or a split with no rows, raise ValueError naming the file."""
    if isinstance(root, bool) or not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be the path of the Waterbirds folder (a str or pathlib.Path), got "
                        f"{type(root).__name__} {root!r}")
    if not str(root).strip():
        raise ValueError(f"root must be the path of the Waterbirds folder, got the empty string {root!r}")
    folder, code = Path(root), SPLIT_CODES[_check_split(split)]
    size = check_count(image_size, "image_size")
    table = _read_metadata(folder)
    chosen = table["split"] == code
    if not chosen.any():
        raise ValueError(f"{folder / 'metadata.csv'} has no rows of split {split!r}: its split column holds no "
                         f"{code}, only {sorted(table['split'].unique().tolist())}; use the complete metadata.csv "
                         "of the Waterbirds folder")
    table = table[chosen]
    paths = [folder / name for name in table["img_filename"]]
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise FileNotFoundError(f"{len(absent)} image(s) named in {folder / 'metadata.csv'} are missing, e.g. "
                                f"{absent[0]}; re-download or re-extract the Waterbirds folder")
    images = np.stack([_center_crop(p, size) for p in paths]).transpose(0, 3, 1, 2).astype(np.float32) / 255
    return _tensors(images, table["y"].to_numpy(), table["place"].to_numpy(), ("landbird", "waterbird"),
                    f"Waterbirds {split} split ({len(paths):,} images in {folder})")


def download_waterbirds(root) -> Path:
    """Download and unpack group-DRO's Waterbirds tarball (:data:`WATERBIRDS_URL`, about 0.5 GB) into
    ``root``; returns the folder to pass to :func:`load_waterbirds`. Skips what is already there."""
    root = checks.path("root", root, "folder")
    folder = root / "waterbird_complete95_forest2water2"
    if (folder / "metadata.csv").is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "waterbird_complete95_forest2water2.tar.gz"
    if not archive.is_file():
        urllib.request.urlretrieve(WATERBIRDS_URL, archive)
    with tarfile.open(archive) as tar:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.11.4
        tar.extractall(root, **safe)
    return folder


# --- the offline stand-in ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _backgrounds() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The land and the water background regions, RGB uint8, from images inside scikit-image's wheel (without
    scikit-image, the same files downloaded: :func:`samlib.data.sources.skimage_image`)."""
    families = []
    for family in (LAND, WATER):
        regions = []
        for name, box, tint in family:
            image = skimage_image(name)
            if box is not None:
                image = image[box[0]:box[2], box[1]:box[3]]
            if tint is not None:
                image = (image[..., None] * np.asarray(tint)).astype(np.uint8)
            regions.append(image[..., :3])
        families.append(regions)
    return families[0], families[1]


def _background(region: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square crop of ``region``, randomly mirrored, resized to (size, size, 3) float in [0, 1]."""
    side = min(_CROP, *region.shape[:2])
    top, left = (rng.integers(0, region.shape[i] - side + 1) for i in (0, 1))
    crop = region[top:top + side, left:left + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((size, size), Image.BILINEAR)) / 255


def _composite(background: np.ndarray, obj: np.ndarray, rng: np.random.Generator, contrast: float = 1.0) -> np.ndarray:
    """Paste a gray object (h, w) in [0, 1], its brightness times ``contrast``, at a random place: its bright
    pixels (alpha = 4 * value, clipped) cover the background."""
    h, w = obj.shape
    top, left = rng.integers(0, background.shape[0] - h + 1), rng.integers(0, background.shape[1] - w + 1)
    alpha = np.clip(4 * obj, 0, 1)[..., None]
    out = background.copy()
    under = out[top:top + h, left:left + w]
    out[top:top + h, left:left + w] = alpha * (contrast * obj[..., None]) + (1 - alpha) * under
    return out


def _standin_objects(split: str, fashion_root, objects: dict) -> ImageSet:
    """Fashion-MNIST items of the two ``objects`` ({name: Fashion-MNIST classes}; default tops (label 0) and
    footwear (label 1)); 'val' and 'test' take alternate test images."""
    source = fashion_mnist("train" if split == "train" else "test", fashion_root)
    keep = np.ones(len(source.labels), dtype=bool)
    if split != "train":
        keep[(0 if split == "test" else 1)::2] = False
    labels = np.full(len(source.labels), -1)
    for label, names in enumerate(objects.values()):
        labels[np.isin(source.labels, [class_index(c) for c in names])] = label
    keep &= labels >= 0
    return ImageSet(source.images[keep], labels[keep], f"{source.source} ({split} part: {' vs '.join(objects)})",
                    source.folder)


def waterbirds_standin(split: str, n: int, *, seed: int, agreement: float = 0.95, image_size: int = 32,
                       object_size: int | None = None, fashion_root=None, objects: dict | None = None,
                       object_sizes: tuple[int, int] | None = None,
                       object_contrast: tuple[float, float] | None = None) -> Waterbirds:
    """``n`` stand-in Waterbirds images (N, 3, image_size, image_size): a Fashion-MNIST top (y = 0) or
    piece of footwear (y = 1), resized to ``object_size`` (default 5/8 of the image) and pasted at a
    random position onto a land (place = 0) or water (place = 1) background. ``object_sizes`` (low, high):
    instead, a side drawn per image from low to high pixels (inclusive); ``object_contrast`` (low, high) in
    (0, 1]: the object's brightness scaled by a factor drawn per image (its coverage of the background kept).

    'train': y uniform, place == y in exactly ``round(agreement * n)`` images (0.5: the hard-only control of
    :mod:`samlib.experiments.headroom`, where only the object predicts y); 'val' and 'test' are
    group-balanced (``agreement`` unused) and draw objects from disjoint halves of Fashion-MNIST's test
    split. Backgrounds are random crops of the same few photos in every split. ``objects``: the two objects
    ({name: Fashion-MNIST class names}), :data:`STANDIN_CLASSES` by default. Reproducible from ``seed``."""
    _check_split(split)
    checks.seed("seed", seed)
    objects = STANDIN_CLASSES if objects is None else _check_objects(objects)
    n, size = check_count(n), check_count(image_size, "image_size")
    object_size = check_count(round(size * 5 / 8) if object_size is None else object_size, "object_size")
    if object_size > size:
        raise ValueError(f"object_size ({object_size}) must not exceed image_size ({size})")
    _check_range("object_sizes", object_sizes, 1, size, "sides in pixels, e.g. (10, 24)")
    _check_range("object_contrast", object_contrast, 0, 1, "brightness factors, e.g. (0.4, 1.0)", low_open=True)
    if isinstance(agreement, bool) or not (isinstance(agreement, (int, float)) and 0.5 <= agreement <= 1):
        raise ValueError(f"agreement must lie in [0.5, 1] (the fraction of training images whose background "
                         f"agrees with the label; 0.5: the background does not predict it), got {agreement!r}")
    rng = np.random.default_rng(seed)
    if _check_split(split) == "train":
        y, place = agreeing_labels(n, agreement, rng)
    else:
        group = rng.permutation(np.arange(n) % 4)
        y, place = group // 2, group % 2
    items = _standin_objects(split, fashion_root, objects)
    drawn = items.draw(y, rng)
    families = _backgrounds()
    images = np.empty((n, size, size, 3), dtype=np.float32)
    for i in range(n):
        regions = families[place[i]]
        side = object_size if object_sizes is None else int(rng.integers(object_sizes[0], object_sizes[1] + 1))
        contrast = 1.0 if object_contrast is None else rng.uniform(*object_contrast)
        obj = np.asarray(Image.fromarray(drawn[i]).resize((side, side), Image.BILINEAR)) / 255
        images[i] = _composite(_background(regions[rng.integers(len(regions))], size, rng), obj, rng, contrast)
    kind = f"agreement {agreement:g}" if split == "train" else "groups balanced"
    varied = "".join(f", {name} {r[0]:g}-{r[1]:g}" for name, r in (("object side", object_sizes),
                                                                    ("object contrast", object_contrast)) if r)
    source = (f"Waterbirds stand-in, {split} ({kind}): objects from {items.source}{varied}; backgrounds cropped "
              f"from scikit-image's {', '.join(sorted({b[0] for b in LAND + WATER}))}")
    return _tensors(images.transpose(0, 3, 1, 2), y, place, tuple(objects), source)


def _check_range(name: str, value, low: float, high: float, what: str, low_open: bool = False) -> None:
    """None, or a (a, b) pair with low <= a <= b <= high (low < a with ``low_open``), else a ValueError."""
    if value is None:
        return
    ok = (isinstance(value, tuple) and len(value) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
          and (low < value[0] if low_open else low <= value[0]) and value[0] <= value[1] <= high)
    if not ok:
        bound = f"{low:g} < low" if low_open else f"{low:g} <= low"
        raise ValueError(f"{name} must be a (low, high) pair with {bound} <= high <= {high:g} ({what}) or None, "
                         f"got {value!r}")


def _check_objects(objects) -> dict:
    """``objects`` if it maps two names to disjoint tuples of Fashion-MNIST class names, else a ValueError."""
    if not (isinstance(objects, dict) and len(objects) == 2 and all(isinstance(v, tuple) and v
                                                                     for v in objects.values())):
        raise ValueError(f"objects must map two object names to tuples of Fashion-MNIST classes, e.g. "
                         f"{STANDIN_CLASSES}; got {objects!r}")
    first, second = ({class_index(c) for c in names} for names in objects.values())
    if first & second:
        raise ValueError(f"the two objects share Fashion-MNIST classes {sorted(first & second)}: make them disjoint")
    return objects


def pixel_probe_errors(train: Waterbirds, test: Waterbirds, solver: str = "lbfgs") -> dict[str, float]:
    """Test error of linear probes (:func:`samlib.probe.linear_probe`) on raw pixels, trained on ``train``
    and tested on ``test``, for the background (``'place'``) and for the object (``'y'``). Use
    group-balanced sets: a lower error for place means the background is the easier feature. ``solver``: the
    probes' (:data:`samlib.probe.SOLVERS`)."""
    from ..probe import linear_probe

    flat = [d.images.reshape(len(d), -1).numpy() for d in (train, test)]
    return {name: linear_probe(flat[0], getattr(train, name), flat[1], getattr(test, name), solver=solver).test_error
            for name in ("place", "y")}
