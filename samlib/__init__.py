"""samlib: the code of the book *What SAM does to learned features*.

Shared core, for any reuser:

* ``samlib.optim``: SAM, last-layer SAM (LSAM), the ablations, and the one SAM ascent they all use;
* ``samlib.decompose``: the phantom decomposition (importance weights, phantom head, Gini) of any model
  with a linear head;
* ``samlib.train``, ``samlib.probe``, ``samlib.repro``, ``samlib.checkpoint``: seeded training with
  checkpoints, linear probes, determinism; ``samlib.models``: models split into features and a head;
* ``samlib.scale`` (the book/paper switch), ``samlib.book`` (glue, checked claims, tables), ``samlib.landscape``
  (2-D losses), ``samlib.results`` (tables over seeds and the book's one statistic with its verdicts),
  ``samlib.glance`` (every claim the book tests, measured on the shipped studies).

One package per chapter family: ``samlib.toy`` (data, model, sweep, results, mechanism),
``samlib.memorization`` (Chen et al.: data, model, train, results), ``samlib.data`` (real-image loaders
and offline stand-ins), ``samlib.experiments`` (the real-image studies), and ``samlib.plots`` (every
figure and the widgets).

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
