"""The real-image experiments.

* :mod:`~samlib.experiments.runs`: seeded SGD / SAM / LSAM runs of any features-and-head network (their summaries
  over seeds are in :mod:`samlib.results`), and their first updates in float64;
* :mod:`~samlib.experiments.cifar_mnist`: the CIFAR-MNIST chapter's presets, data sets and evaluation;
* :mod:`~samlib.experiments.waterbirds`: the Waterbirds chapter's presets, data sets and evaluation;
* :mod:`~samlib.experiments.headroom`: the floor, ceiling and SGD of a test bed's hard probe;
* :mod:`~samlib.experiments.testbeds`: the test beds with headroom: the shipped study the chapters print;
* :mod:`~samlib.experiments.levers`: the levers of the chapters' first beds, shipped;
* :mod:`~samlib.experiments.replication`: the chosen radii on seeds nobody had used, shipped;
* :mod:`~samlib.experiments.lr_scaling`: the phantom head's learning-rate scaling along the probes' directions,
  shipped;
* :mod:`~samlib.experiments.agreement`: a chapter's live networks against the shipped study's runs of the same
  seed.
"""
from . import cifar_mnist, runs, waterbirds
from .runs import OPTIMIZERS, RunSpec, Study, TrainConfig, run_study, specs

__all__ = ["cifar_mnist", "waterbirds", "runs", "OPTIMIZERS", "RunSpec", "TrainConfig", "Study", "specs",
           "run_study"]
