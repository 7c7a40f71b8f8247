"""The real-image experiments: ``runs`` (seeded SGD / SAM / LSAM runs of any features-and-head network, their
summaries over seeds are in :mod:`samlib.results`) and one module per chapter, ``cifar_mnist`` and ``waterbirds``
(presets, data sets,
evaluation)."""
from . import cifar_mnist, runs, waterbirds
from .runs import OPTIMIZERS, RunSpec, Study, TrainConfig, run_study, specs

__all__ = ["cifar_mnist", "waterbirds", "runs", "OPTIMIZERS", "RunSpec", "TrainConfig", "Study", "specs",
           "run_study"]
