"""samlib: the code of the book *What SAM does to learned features*.

SAM and last-layer SAM (``samlib.optim``), reproducible training and probes (``samlib.train``,
``samlib.probe``, ``samlib.repro``), models split into features and a linear head
(``samlib.models``), the scale switch (``samlib.scale``) and the book's figures (``samlib.plots``, one
module per chapter). Chapter code: the toy and its batched sweeps (``samlib.toy``, ``samlib.toy_model``,
``samlib.sweep``, ``samlib.toy_results``), the phantom decomposition (``samlib.decompose``, for any model with a
linear head, and ``samlib.mechanism`` for toy sweeps), Chen et al.'s signal-noise setting (``samlib.memorization*``),
the real-image datasets with their offline stand-ins (``samlib.data``) and the real-image studies
(``samlib.experiments``: seeded SGD/SAM/LSAM runs, the CIFAR-MNIST and Waterbirds presets and evaluations).
"""
from . import scale
from .optim import LSAM, SAM, frozen_bn_stats, lsam_param_groups
from .plots import use_book_style
from .repro import BOOK_THREADS, configure

__version__ = "0.1.0"
__all__ = ["SAM", "LSAM", "lsam_param_groups", "frozen_bn_stats", "setup", "scale"]


def setup(seed: int = 0, threads: int | None = BOOK_THREADS) -> None:
    """Start a chapter: seeds, thread count and deterministic algorithms (:func:`samlib.repro.configure`)
    and the book's figure style; prints the settings that the chapter's numbers depend on."""
    configure(seed=seed, threads=threads)
    use_book_style()
    import torch
    print(f"samlib setup: scale={scale.current()}, device={scale.device()}, seed={seed}, "
          f"threads={torch.get_num_threads()}")
