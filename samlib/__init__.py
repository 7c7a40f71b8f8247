"""samlib: the code of the book *What SAM does to learned features*.

The shared core, for any reuser:

* :mod:`~samlib.optim`: SAM, last-layer SAM (LSAM), the ablations, and the one SAM ascent they all use;
* :mod:`~samlib.decompose`: the phantom decomposition (importance weights, phantom head, Gini) of any model with a
  linear head;
* :mod:`~samlib.train`: seeded training: one step for any optimizer, epochs with progress bars, checkpoints;
* :mod:`~samlib.checkpoint`: atomic, checksummed checkpoints, stamped with a fingerprint of their run;
* :mod:`~samlib.probe`: linear probes on frozen features;
* :mod:`~samlib.repro`: determinism: seeds, the thread count, deterministic algorithms, the book's CPU kernels;
* :mod:`~samlib.models`: models split into features and a linear head;
* :mod:`~samlib.checks`: the argument checks shared by every public function, and their messages;
* :mod:`~samlib.scale`: the book/paper switch and the device;
* :mod:`~samlib.results`: tables over seeds, and the book's one statistic with its verdicts;
* :mod:`~samlib.book`: glue, checked claims and HTML tables for the chapters;
* :mod:`~samlib.landscape`: the 2-D losses of the first chapter;
* :mod:`~samlib.glance`: every claim the book tests, measured on the shipped studies;
* :mod:`~samlib.protocol`: the shipped-study protocol, written once: levers, seed sets, training them, the shipped
  rows and their loader, atomic replacement and selector, the command lines' checks.

One package per chapter family:

* :mod:`~samlib.toy`: the toy chapters (data, model, sweep, results, mechanism, presets, shipped studies);
* :mod:`~samlib.memorization`: Chen et al.'s chapter (data, model, training, results, preset, shipped study);
* :mod:`~samlib.data`: the real-image loaders and their offline stand-ins;
* :mod:`~samlib.experiments`: the real-image studies;
* :mod:`~samlib.plots`: every figure, and the widgets.

``import samlib`` is light: it loads torch, not matplotlib, seaborn, pandas or scikit-learn.
"""
from . import scale
from .optim import LSAM, SAM, frozen_bn_stats, lsam_param_groups
from .repro import configure

__version__ = "0.1.0"
__all__ = ["SAM", "LSAM", "lsam_param_groups", "frozen_bn_stats", "setup", "scale"]


def setup(seed: int = 0, threads: int | str | None = "book") -> None:
    """Start a chapter: seeds, the thread count (the book's, :func:`samlib.repro.book_threads`, unless given) and
    deterministic algorithms (:func:`samlib.repro.configure`), and the book's figure style; prints the settings
    that the chapter's numbers depend on."""
    import torch

    from .plots.style import use_book_style

    configure(seed=seed, threads=threads)
    use_book_style()
    print(f"samlib setup: scale={scale.current()}, device={scale.device()}, seed={seed}, "
          f"threads={torch.get_num_threads()}")
