"""The real-image experiments.

* ``runs``: seeded SGD / SAM / LSAM runs of any features-and-head network (their summaries over seeds are in
  :mod:`samlib.results`), and their first updates in float64;
* ``cifar_mnist`` and ``waterbirds``: one module per chapter (presets, data sets, evaluation);
* ``headroom``: the floor, ceiling and SGD of a test bed's hard probe;
* ``testbeds`` and ``levers``: the shipped studies the chapters print; ``replication``: their claims on new seeds;
* ``lr_scaling``: the phantom head's learning-rate scaling along the probes' directions, shipped;
* ``agreement``: a chapter's live networks against the shipped study's runs of the same seed.
"""
from . import cifar_mnist, runs, waterbirds
from .runs import OPTIMIZERS, RunSpec, Study, TrainConfig, run_study, specs

__all__ = ["cifar_mnist", "waterbirds", "runs", "OPTIMIZERS", "RunSpec", "TrainConfig", "Study", "specs",
           "run_study"]
