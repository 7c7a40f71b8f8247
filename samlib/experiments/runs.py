"""Seeded training runs of an image classifier with a named optimizer.

A :class:`RunSpec` names one run (optimizer, rho, seed); :func:`train_run` trains it with the book's
training loop (:func:`samlib.train.fit`: progress bar, per-epoch checkpoint and exact resume);
:func:`run_study` trains a list of specs and evaluates each network once; :mod:`samlib.results` turns the rows
into mean +- sd tables and "beats SGD by more than the seed spread" verdicts. Shared by the CIFAR-MNIST and
Waterbirds chapters.

Both run unchanged under ``torchrun --nproc-per-node N`` (after ``torch.distributed.init_process_group``): each
process trains a DDP-wrapped copy on its shard of every batch (:class:`samlib.train.ShardedBatches`; the
config's ``batch_size`` is the batch of all processes together), rank 0 writes the checkpoints, every rank
resumes from them. A run is reproducible for a given world size.
"""
from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import checks, scale
from ..checkpoint import RESUME
from ..decompose import Decomposition, decompose, gini
from ..optim import LSAM, SAM, AblatedLSAM
from ..optim.distributed import world_size
from ..optim.registry import REGISTRY, check_run, run_label
from ..probe import extract_features
from ..repro import seed_everything
from ..train import History, ShardedBatches, TensorBatches, fit, progress_bar, train_step

__all__ = ["OPTIMIZERS", "RunSpec", "TrainConfig", "specs", "make_optimizer", "train_run", "Study", "run_study",
           "evaluate_untrained", "first_steps", "phantom_gini_by_rho", "network_decomposition", "predict",
           "head_on_cpu"]

OPTIMIZERS = ("SGD", "SAM", "LSAM")  # the names of samlib.optim.registry that image runs take


@dataclass(frozen=True)
class RunSpec:
    """One training run: ``optimizer`` in :data:`OPTIMIZERS`, its radius ``rho`` (0 for SGD), the ``seed``
    of initialisation and batch order."""

    optimizer: str
    rho: float = 0.0
    seed: int = 0

    def __post_init__(self):
        check_run(self.optimizer, self.rho, OPTIMIZERS)
        checks.seed("seed", self.seed)

    @property
    def label(self) -> str:
        """'SGD', 'SAM ρ=0.05', 'LSAM ρ=0.1': the optimizer and its radius, without the seed."""
        return run_label(self.optimizer, self.rho)

    @property
    def name(self) -> str:
        """A file-name-safe id of the run, e.g. 'LSAM-rho0.1-seed2'."""
        return f"{self.optimizer}-rho{self.rho:g}-seed{self.seed}"


def specs(optimizers: dict[str, Sequence[float]], seeds: Sequence[int]) -> list[RunSpec]:
    """Every (optimizer, rho) of ``optimizers`` ({'SGD': [0], 'LSAM': [0.1, 0.5]}) times every seed, seeds
    outermost (so a partial study has every optimizer for its first seeds)."""
    if not isinstance(optimizers, Mapping):
        raise TypeError(f"optimizers must be a dict {{optimizer: radii}}, e.g. {{'SGD': [0.0], 'SAM': [0.05]}}, got "
                        f"{type(optimizers).__name__}")
    radii = {opt: checks.items(f"optimizers[{opt!r}]", rhos, "the radii of that optimizer, e.g. [0.05]")
             for opt, rhos in optimizers.items()}
    seeds = checks.items("seeds", seeds, "e.g. seeds=[0, 1, 2]")
    return [RunSpec(opt, rho, seed) for seed in seeds for opt, rhos in radii.items() for rho in rhos]


@dataclass(frozen=True)
class TrainConfig:
    """SGD-with-momentum hyperparameters shared by every optimizer of a study (SAM and LSAM use SGD as
    their base step). ``relative_rho``: SAM's and LSAM's radius is ``rho`` times the norm of the weights they
    perturb (every weight, or the head), not ``rho`` itself; SGD ignores it."""

    epochs: int
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    relative_rho: bool = False

    def __post_init__(self):
        checks.positive_int("epochs", self.epochs, "pass the number of passes over the data, e.g. epochs=8")
        checks.real("lr", self.lr, low=0, low_open=True, hint="e.g. lr=0.05")
        checks.real("momentum", self.momentum, low=0, high=1, high_open=True, hint="e.g. momentum=0.9")
        checks.real("weight_decay", self.weight_decay, low=0, hint="pass 0 for none, e.g. 5e-4 for a little")
        checks.positive_int("batch_size", self.batch_size, "e.g. batch_size=128")
        checks.strict_bool("relative_rho", self.relative_rho)

    def __repr__(self) -> str:
        """The fields, but ``relative_rho`` only when set (so that a plain configuration reads as it always has)."""
        shown = {k: v for k, v in asdict(self).items() if k != "relative_rho" or v}
        return f"TrainConfig({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def without_epochs(self) -> dict:
        """Every field but ``epochs``: what a checkpoint must match (more epochs continue a run)."""
        return {k: v for k, v in asdict(self).items() if k != "epochs"}


def make_optimizer(model: nn.Module, spec: RunSpec, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer over ``model``'s parameters that :data:`samlib.optim.registry.REGISTRY` says
    ``spec.optimizer`` is: SGD where it perturbs nothing, SAM where it perturbs every layer, LSAM where it perturbs
    only ``model.head`` (:func:`samlib.train.train_step` takes its one-backbone-pass step), or LSAM with one effect
    ablated where it keeps one. Every one takes SGD's step with ``config``'s rate, momentum and weight decay."""
    info = REGISTRY[spec.optimizer]
    base = dict(lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if info.perturbs == "nothing":
        return torch.optim.SGD(model.parameters(), **base)
    if info.perturbs == "all":
        return SAM(model.parameters(), torch.optim.SGD, rho=spec.rho, relative=config.relative_rho, **base)
    head = _head(model, spec.optimizer)
    if info.keeps is not None:
        return AblatedLSAM(model.parameters(), torch.optim.SGD, head=head, rho=spec.rho, effect=info.keeps,
                           relative=config.relative_rho, **base)
    return LSAM(model.parameters(), torch.optim.SGD, head=head, rho=spec.rho, relative=config.relative_rho, **base)


def _head(model: nn.Module, optimizer: str) -> nn.Linear:
    """``model.head``, the last linear layer that ``optimizer`` perturbs."""
    if not isinstance(getattr(model, "head", None), nn.Linear):
        raise TypeError(f"{optimizer} perturbs the last linear layer, but {type(model).__name__} has no .head "
                        "nn.Linear: wrap the model in samlib.models.FeaturesAndHead(features, head)")
    return model.head


def train_run(build_model: Callable[[], nn.Module], images: Tensor, labels: Tensor, spec: RunSpec,
              config: TrainConfig, *, checkpoint=None, resume: str = "check", progress: bool | None = None,
              evaluate_each_epoch: Callable[[nn.Module], dict] | None = None,
              ascent_gradient: str | None = None,
              autocast_dtype: torch.dtype | None = None) -> tuple[nn.Module, History]:
    """Train ``build_model()`` on ``images`` (N, ...) and class ``labels`` (N,) with cross-entropy, seeded by
    ``spec.seed`` (initialisation and batch order), on :func:`samlib.scale.device` (the GPU at paper scale, when
    there is one). With ``checkpoint`` (a file path) the run saves after every
    epoch and resumes from the file; a finished run is loaded, not retrained; a file of another run (other spec,
    config apart from ``epochs``, model or data) is refused unless ``resume="force"``. ``evaluate_each_epoch(model)``
    adds its metrics to every epoch's history row (curves over training). Returns the model (eval mode) and its
    per-epoch history (train_loss, train_acc, ...). Under ``torchrun`` see the module docstring;
    ``ascent_gradient`` (``"per_device"``, the default there, or ``"synchronized"``) is SAM's and LSAM's
    (:func:`samlib.optim.sam_step`). ``autocast_dtype``: mixed precision, ``torch.bfloat16`` or ``torch.float16``
    (which gets a ``torch.amp.GradScaler``, checkpointed with the run). Every argument is checked before the
    model is built: ``build_model`` must be a factory (a module instance is refused), the labels class indices."""
    _check_factory(build_model)
    _check_data(images, labels)
    if not isinstance(spec, RunSpec):
        raise TypeError(f"spec must be a samlib.experiments.runs.RunSpec, got {type(spec).__name__}: e.g. "
                        "RunSpec('SAM', 0.05, seed=0)")
    _check_config(config)
    checks.choice("resume", resume, RESUME)
    checkpoint = checks.optional(checks.path, "checkpoint", checkpoint)
    checks.optional(checks.function, "evaluate_each_epoch", evaluate_each_epoch, "a function of the model that returns "
                    "a dict of metrics")
    checks.optional(checks.choice, "autocast_dtype", autocast_dtype, (torch.bfloat16, torch.float16),
                    "or None for float32")
    seed_everything(spec.seed)
    device = _process_device()
    model = _built(build_model).to(device)
    optimizer = make_optimizer(model, spec, config)
    scaler = torch.amp.GradScaler(device.type) if autocast_dtype == torch.float16 else None
    identity = {"spec": spec, **config.without_epochs()}
    history = fit(_distributed(model), optimizer, _batches(images, labels, spec, config), epochs=config.epochs,
                  loss_fn=F.cross_entropy, evaluate=evaluate_each_epoch, checkpoint=checkpoint, resume=resume,
                  progress=progress, identity=identity, desc=f"{spec.label}, seed {spec.seed}",
                  ascent_gradient=ascent_gradient, autocast_dtype=autocast_dtype, scaler=scaler)
    return model.eval(), history


def _check_factory(build_model) -> None:
    """``build_model`` must be a function that returns a fresh model, not a model."""
    if isinstance(build_model, nn.Module):
        raise TypeError(f"build_model must be a factory, a function that returns a fresh model, but got the module "
                        f"{type(build_model).__name__} itself: every run needs its own initialisation, so pass e.g. "
                        f"lambda: {type(build_model).__name__}(...)")
    checks.function("build_model", build_model, "a function of no arguments that returns a fresh nn.Module")


def _built(build_model) -> nn.Module:
    model = build_model()
    if not isinstance(model, nn.Module):
        raise TypeError(f"build_model() must return a fresh torch.nn.Module, got {type(model).__name__}")
    return model


def _check_data(images, labels) -> None:
    """Images (N, ...) and N class labels (integers >= 0), as tensors."""
    for name, value in (("images", images), ("labels", labels)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}: convert with torch.as_tensor")
    if len(images) != len(labels) or len(labels) == 0 or labels.ndim != 1:
        raise ValueError(f"need as many labels as images (and at least one), labels of shape (N,): got "
                         f"{tuple(images.shape)} images and {tuple(labels.shape)} labels")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer class indices (int64) for cross-entropy, got {labels.dtype}: pass "
                        "labels.long()")
    if not images.is_floating_point():
        raise TypeError(f"images must be floating point (e.g. float32 in [0, 1]), got {images.dtype}: pass "
                        "images.float() / 255 for uint8 pixels")


def _check_config(config) -> None:
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a samlib.experiments.runs.TrainConfig, got {type(config).__name__}: e.g. "
                        "TrainConfig(epochs=8)")


def _metrics(metrics, who: str) -> Mapping:
    """What an evaluation returned, if it is a mapping of metric names to values."""
    if not isinstance(metrics, Mapping):
        raise TypeError(f"{who} must return a dict of metrics (name -> number), got {type(metrics).__name__} "
                        f"{metrics!r:.60}: e.g. lambda model, spec: {{'test_acc': accuracy(model)}}")
    bad = [key for key in metrics if not isinstance(key, str)]
    if bad:
        raise TypeError(f"{who} must name its metrics by strings, got the key {bad[0]!r}")
    return metrics


def _process_device() -> torch.device:
    """:func:`samlib.scale.device`; under ``torchrun`` with GPUs, this process's GPU (``$LOCAL_RANK``)."""
    device = scale.device()
    if device.type == "cuda" and world_size() > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def _distributed(model: nn.Module) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel when several processes run, else ``model`` itself."""
    if world_size() == 1:
        return model
    device_ids = [model_device.index] if (model_device := next(model.parameters()).device).type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def _batches(images: Tensor, labels: Tensor, spec: RunSpec, config: TrainConfig) -> TensorBatches:
    """One process's batches: all of them, or under torch.distributed its shard of each batch of
    ``config.batch_size`` (which the world size must divide)."""
    n = world_size()
    if n == 1:
        return TensorBatches(images, labels, batch_size=config.batch_size)
    if config.batch_size % n:
        raise ValueError(f"batch_size={config.batch_size} is the batch of all {n} processes together, so it must be "
                         f"a multiple of {n}: pass e.g. batch_size={n * max(1, config.batch_size // n)}")
    return ShardedBatches(images, labels, batch_size=config.batch_size // n, seed=spec.seed)


@dataclass
class Study:
    """What :func:`run_study` returns: one row per run (spec fields + the evaluation's metrics), and the trained
    models and histories keyed by spec."""

    frame: pd.DataFrame
    models: dict[RunSpec, nn.Module]
    histories: dict[RunSpec, History]

    def model(self, optimizer: str, rho: float = 0.0, seed: int = 0) -> nn.Module:
        return self.models[RunSpec(optimizer, rho, seed)]


def run_study(build_model: Callable[[], nn.Module], images: Tensor, labels: Tensor, run_specs: Sequence[RunSpec],
              config: TrainConfig, evaluate: Callable[[nn.Module, RunSpec], dict], *, checkpoint_dir=None,
              resume: str = "check", progress: bool | None = None, ascent_gradient: str | None = None,
              autocast_dtype: torch.dtype | None = None) -> Study:
    """Train every spec (:func:`train_run`) and evaluate each trained network once with ``evaluate(model, spec)``
    (a dict of numbers, run without gradients). ``checkpoint_dir``: one checkpoint file per run there, so an
    interrupted study resumes where it stopped (long paper-scale runs); a file made with another config, data set
    or model is refused (see :func:`train_run`) unless ``resume="force"``. ``ascent_gradient`` and
    ``autocast_dtype``: see :func:`train_run`. Every argument is checked before the first run trains."""
    _check_factory(build_model)
    _check_data(images, labels)
    if isinstance(run_specs, (str, bytes, RunSpec)) or not hasattr(run_specs, "__iter__"):
        raise TypeError(f"run_specs must be a list of RunSpecs, got {type(run_specs).__name__}: e.g. "
                        "specs({'SGD': [0.0], 'SAM': [0.05]}, seeds=[0, 1])")
    run_specs = list(run_specs)
    if not run_specs or len(set(run_specs)) != len(run_specs):
        raise ValueError("run_specs must be a non-empty list of distinct RunSpecs (see samlib.experiments.runs.specs)")
    strangers = [spec for spec in run_specs if not isinstance(spec, RunSpec)]
    if strangers:
        raise TypeError(f"run_specs must hold RunSpecs only, got {type(strangers[0]).__name__} {strangers[0]!r:.40}")
    _check_config(config)
    checks.function("evaluate", evaluate, "a function (model, spec) -> dict of metrics")
    checks.choice("resume", resume, RESUME)
    checks.optional(checks.strict_bool, "progress", progress, "or None to follow $SAMLIB_PROGRESS")
    if checkpoint_dir is not None:
        checks.path("checkpoint_dir", checkpoint_dir, "folder").mkdir(parents=True, exist_ok=True)
    rows, models, histories = [], {}, {}
    for spec in progress_bar(run_specs, progress, desc="runs"):
        checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / f"{spec.name}.pt"
        model, history = train_run(build_model, images, labels, spec, config, checkpoint=checkpoint, resume=resume,
                                   progress=False, ascent_gradient=ascent_gradient, autocast_dtype=autocast_dtype)
        if any(model is other for other in models.values()):
            raise ValueError("build_model returned the same module for two runs, so they trained one network: it "
                             "must build a new one at every call, e.g. lambda: SmallCNN(...), not lambda: net")
        with torch.no_grad():
            metrics = _metrics(evaluate(model, spec), "evaluate")
        rows.append({"optimizer": spec.optimizer, "rho": spec.rho, "seed": spec.seed, "label": spec.label,
                     "train_loss": history.last["train_loss"], **metrics})
        models[spec], histories[spec] = model, history
    return Study(pd.DataFrame(rows), models, histories)


def evaluate_untrained(build_model: Callable[[], nn.Module], seeds: Sequence[int],
                       evaluate: Callable[[nn.Module, RunSpec], dict]) -> pd.DataFrame:
    """``evaluate`` on the untrained network of each seed: the starting point of every run with that seed (and a
    reference that any learned feature must beat). Rows labelled 'random init'."""
    _check_factory(build_model)
    checks.function("evaluate", evaluate, "a function (model, spec) -> dict of metrics")
    seeds = [checks.seed("seed", seed) for seed in checks.items("seeds", seeds, "e.g. seeds=[0, 1, 2]")]
    rows = []
    for seed in seeds:
        seed_everything(seed)
        model = _built(build_model).eval()
        with torch.no_grad():
            rows.append({"optimizer": "random init", "rho": 0.0, "seed": seed, "label": "random init",
                         **_metrics(evaluate(model, RunSpec("SGD", 0.0, seed)), "evaluate")})
    return pd.DataFrame(rows)


def first_steps(build_model: Callable[[], nn.Module], images: Tensor, labels: Tensor, run_specs: Sequence[RunSpec],
                config: TrainConfig, *, steps: int = 3, dtype: torch.dtype = torch.float64) -> pd.DataFrame:
    """The first ``steps`` updates of each run in ``dtype``, on the first ``config.batch_size`` images, taken as the
    training loop takes them (:func:`make_optimizer`, :func:`samlib.train.train_step`) from the run's seeded
    initialisation: one row per run with the training loss on that batch after 0, 1, ..., ``steps`` updates
    (``loss 0``, ``loss 1``, ...) and how far the weights moved (``moved``, the L2 norm of the change).

    In float64 a few updates carry no kernel's last-bit difference into the printed digits, so these are the same
    on every CPU, where a float32 network trained for epochs is not: a chapter checks its optimizers through
    them. A SAM whose ascent goes the wrong way, or an LSAM that perturbs nothing, changes them."""
    checks.positive_int("steps", steps, "e.g. steps=3")
    x, y = images[:config.batch_size].to(dtype), labels[:config.batch_size]
    rows = []
    for spec in run_specs:
        seed_everything(spec.seed)
        model = build_model().to(dtype).train()
        start = [p.detach().clone() for p in model.parameters()]
        optimizer = make_optimizer(model, spec, config)
        losses = [float(train_step(model, optimizer, F.cross_entropy, x, y)[0]) for _ in range(steps)]
        with torch.no_grad():
            losses.append(float(F.cross_entropy(model(x), y)))
            moved = torch.sqrt(sum((p - p0).pow(2).sum() for p, p0 in zip(model.parameters(), start))).item()
        rows.append({"optimizer": spec.optimizer, "rho": spec.rho, "seed": spec.seed, "label": spec.label,
                     **{f"loss {i}": loss for i, loss in enumerate(losses)}, "moved": moved})
    return pd.DataFrame(rows)


def phantom_gini_by_rho(model: nn.Module, images: Tensor, labels: Tensor, rhos: Sequence[float]) -> dict:
    """Gini of the importance weights of one trained network on ``images`` (N, ...) with class ``labels``: at the
    real head (key 0.0) and at the phantom head of each radius in ``rhos``. Features are computed once."""
    rhos = checks.items("rhos", rhos, "the radii of the phantom heads, e.g. [0.1, 0.5]")
    features, head = extract_features(model, images), head_on_cpu(model)
    ginis = {0.0: gini(decompose(features, labels, head, 0.0, "cross_entropy").weights)}
    for rho in rhos:
        ginis[float(rho)] = gini(decompose(features, labels, head, rho, "cross_entropy").phantom_weights)
    return ginis


def network_decomposition(model: nn.Module, images: Tensor, labels: Tensor, rho: float) -> Decomposition:
    """The phantom decomposition (:func:`samlib.decompose.decompose`, cross-entropy) of a trained network on
    ``images`` (N, ...) with class ``labels`` (N,): importance weights at its real head and at the phantom
    head of radius ``rho``."""
    return decompose(extract_features(model, images), labels, head_on_cpu(model), rho, "cross_entropy")


def predict(model: nn.Module, images: Tensor) -> Tensor:
    """Class predictions (N,) of a features-and-head ``model`` on ``images`` (N, ...), in batches, on the CPU."""
    return head_on_cpu(model)(extract_features(model, images)).argmax(1)


def head_on_cpu(model: nn.Module) -> nn.Linear:
    """A CPU copy of ``model.head``, to apply to features from :func:`samlib.probe.extract_features` (on the CPU)."""
    return copy.deepcopy(model.head).cpu()
