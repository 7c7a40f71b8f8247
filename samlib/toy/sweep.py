"""Train a whole sweep of toy models at once: SGD, SAM and LSAM runs over rho, complexity and seed.

Every run has its own data (drawn from its complexity and seed), its own initialisation (from its
seed) and its own rho; runs that share a seed share both, so SGD and LSAM are compared pairwise.
One step of all runs at once:

1. g = gradient of each run's mean logistic loss (one backward of the summed losses: runs are
   independent, so each run's gradient is its own);
2. the ascent: eps = rho * g / ||g|| per run, over the head v only (LSAM) or over every parameter
   (SAM); rho = 0 (SGD) gives eps = 0;
3. the update: g~ = gradient at the phantom parameters w + eps, applied at w with weight decay and
   heavy-ball momentum, buf <- momentum * buf + g~ + wd * w, w <- w - lr * buf (``torch.optim.SGD``'s rule).

:class:`ToySettings` also holds the *levers* the toy chapter tests, one at a time (all off by default): weight
decay on the head alone, a head of fixed norm (v is rescaled to ``head_norm`` at the start and after every
step), features scaled to unit RMS over the batch, the squared hinge loss instead of the logistic one, and
the relative radius. Two more are the regimes of :mod:`samlib.toy.regimes`: every initial weight times
``init_scale`` (alpha), and m-sharpness: the mini-batch split into groups of ``ascent_batch`` examples, each group
taking its own ascent and its own gradient at its own phantom point, the update their mean (m-SAM, the form of
Foret et al. 2021 and Andriushchenko & Flammarion 2022; the full batch is the default).

The ablations "IW-only" and "LR-only" (:mod:`samlib.decompose`) keep one of LSAM's two effects: the
importance weights at the phantom head with the real head in the chain rule, or the real importance
weights with the phantom head in the chain rule; their head moves with the same weights. A sweep with
ablations computes every run's step from the recombined parts (one pass; SAM runs go in another sweep).

Full-batch by default (``batch_size=None``); with mini-batches every run sees the same batch indices.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import checks, scale
from ..checkpoint import RESUME, load_resumable, save_atomic, stamped
from ..checks import NonFiniteError
from ..optim.ablation import recombined_loss
from ..optim.ascent import ascent
from ..optim.registry import ABLATIONS, OPTIMIZERS, check_run, perturbs_all, phantom_parts
from ..train import progress_bar
from .data import ToyData, make_toy
from .model import HEAD, features, init_params

__all__ = ["OPTIMIZERS", "PHANTOM_PARTS", "BOOK_SETTINGS", "Run", "ToySettings", "SweepResult", "grid", "train_sweep",
           "sweep_step", "sweep_fingerprint", "losses_and_logits", "training_data", "initial_params", "LOSSES"]

LOSSES = ("logistic", "squared_hinge")

PHANTOM_PARTS = {name: phantom_parts(name) for name in OPTIMIZERS if not perturbs_all(name)}
"""Per optimizer of a sweep with ablations: (importance weights at the phantom head, phantom head in the chain
rule), from :func:`samlib.optim.registry.phantom_parts`."""


@dataclass(frozen=True)
class Run:
    """One training run: ``optimizer`` in OPTIMIZERS, radius ``rho`` (0 for SGD), spiral ``turns``, ``seed``."""

    optimizer: str
    rho: float
    turns: float
    seed: int
    hard_only: bool = False  # train on the hard input alone (the easy input set to 0): the control

    def __post_init__(self):
        check_run(self.optimizer, self.rho)
        checks.real("turns (the spiral's complexity)", self.turns, low=0, low_open=True)
        checks.seed("seed", self.seed)
        checks.strict_bool("hard_only", self.hard_only)


@dataclass(frozen=True)
class ToySettings:
    """What every run of a sweep shares (the book's choices; the paper does not publish its toy)."""

    n: int = 1000            # training points, both features agreeing with the label
    hidden: int = 64         # width of each branch
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    relative_rho: bool = False  # True: the radius is rho * ||perturbed weights|| (scale-free), not rho
    steps: int = 3000
    batch_size: int | None = None  # None: full batch
    easy_scale: float = 1.0
    noise: float = 0.05
    log_every: int = 50
    dtype: torch.dtype = torch.float64  # cheap for models this small, and it keeps the CPU's kernels out of the bits
    loss: str = "logistic"   # or "squared_hinge": max(0, 1 - y f)^2, whose gradient vanishes more slowly
    head_weight_decay: float = 0.0  # extra weight decay on the head v alone (bounded margins)
    head_norm: float | None = None  # a head of fixed norm: ||v|| = head_norm at the start and after every step
    normalize_features: bool = False  # each feature scaled to unit RMS over the batch before the head
    init_scale: float = 1.0  # every initial weight and bias times this (alpha): 1 is torch.nn.Linear's scale
    ascent_batch: int | None = None  # m-SAM: an ascent per group of that many examples of the batch; None: one

    def __post_init__(self):
        for name in ("n", "hidden", "steps", "log_every"):
            checks.positive_int(name, getattr(self, name))
        if self.batch_size is not None and not 1 <= checks.positive_int("batch_size", self.batch_size) <= self.n:
            raise ValueError(f"batch_size must be None (full batch) or in [1, n={self.n}], got {self.batch_size!r}")
        checks.real("lr", self.lr, low=0, low_open=True)
        checks.real("momentum", self.momentum, low=0, high=1, high_open=True)
        checks.real("weight_decay", self.weight_decay, low=0, hint="pass 0 for none, e.g. 1e-4 for a little")
        checks.strict_bool("relative_rho", self.relative_rho)
        checks.real("easy_scale", self.easy_scale, low=0, low_open=True)
        checks.real("noise", self.noise, low=0)
        checks.choice("dtype", self.dtype, (torch.float32, torch.float64))
        checks.choice("loss", self.loss, LOSSES)
        checks.real("head_weight_decay", self.head_weight_decay, low=0, hint="pass 0 for none, e.g. 1e-2")
        checks.optional(checks.real, "head_norm", self.head_norm, low=0, low_open=True,
                        hint="pass None for a free head, e.g. 0.5 for a head of norm 0.5")
        checks.strict_bool("normalize_features", self.normalize_features)
        checks.real("init_scale", self.init_scale, low=0, low_open=True, hint="1 for the default, e.g. 0.1")
        batch = self.batch_size or self.n
        if self.ascent_batch is not None and (batch % checks.positive_int("ascent_batch", self.ascent_batch)):
            raise ValueError(f"ascent_batch must be None (one ascent on the whole batch) or divide the batch size "
                             f"{batch} into equal groups, got {self.ascent_batch!r}: e.g. {batch // 5 or 1}")


BOOK_SETTINGS = ToySettings(n=1000, hidden=32, lr=0.05, momentum=0.9, steps=3000, batch_size=50)
"""The toy chapters' settings (the book's choice): 1000 points, width 32, mini-batches of 50, 3000 steps."""


@dataclass
class SweepResult:
    """Final parameters {name: (R, ...)} and the logged history of every run: ``steps`` (T,),
    ``loss`` and ``error`` (T, R) on the training data, the head ``v`` and the phantom head ``v_phantom``
    (T, R, 2) (v + eps restricted to the head; equal to v for SGD), all at the step's real point
    before its update (on the step's batch)."""

    runs: list[Run]
    settings: ToySettings
    params: dict[str, Tensor]
    history: dict[str, Tensor] = field(default_factory=dict)
    snapshots: dict[int, dict[str, Tensor]] = field(default_factory=dict)  # {step: params after that many steps}

    def params_at(self, step: int | None = None) -> dict[str, Tensor]:
        """The parameters after ``step`` steps (a snapshot asked of :func:`train_sweep`; 0: the initial ones), or the
        final ones."""
        if step is None or step == self.settings.steps:
            return self.params
        if step == 0:
            return initial_params(self.runs, self.settings)
        if step not in self.snapshots:
            raise KeyError(f"no snapshot at step {step}; this sweep kept {sorted(self.snapshots)}: "
                           "pass snapshots=[...] to train_sweep")
        return self.snapshots[step]


def grid(optimizers_rhos: dict[str, list[float]], turns: list[float], seeds: list[int]) -> list[Run]:
    """Every (optimizer, rho) x turns x seed combination,
    e.g. ``grid({"SGD": [0], "LSAM": [0.1, 0.2]}, [0.5], range(5))``."""
    if not isinstance(optimizers_rhos, dict):
        raise TypeError(f"optimizers_rhos must be a dict {{optimizer: radii}}, e.g. {{'SGD': [0], 'LSAM': [0.5]}}, "
                        f"got {type(optimizers_rhos).__name__}")
    radii = {opt: checks.items(f"optimizers_rhos[{opt!r}]", rhos, "the radii of that optimizer, e.g. [0.5]")
             for opt, rhos in optimizers_rhos.items()}
    turns, seeds = checks.items("turns", turns, "e.g. [0.5, 1.0]"), checks.items("seeds", seeds, "e.g. range(5)")
    return [Run(opt, rho, t, s) for opt, rhos in radii.items() for rho in rhos for t in turns for s in seeds]


def training_data(runs: list[Run], settings: ToySettings) -> list[ToyData]:
    """Each run's training data; runs with equal (turns, seed) share one draw."""
    cache: dict = {}
    for run in runs:
        key = (run.turns, run.seed)
        if key not in cache:
            cache[key] = make_toy(settings.n, run.turns, seed=run.seed, easy_scale=settings.easy_scale,
                                  noise=settings.noise, dtype=settings.dtype)
    return [cache[(r.turns, r.seed)].without_easy() if r.hard_only else cache[(r.turns, r.seed)] for r in runs]


def _representation(params: dict[str, Tensor], x_easy: Tensor, x_hard: Tensor, settings: ToySettings) -> Tensor:
    """The features the head sees (R, N, 2): (Phi_easy, Phi_hard), with ``normalize_features`` each scaled to
    unit RMS over the batch's points."""
    phi = features(params, x_easy, x_hard)
    if settings.normalize_features:
        phi = phi / phi.pow(2).mean(dim=1, keepdim=True).add(1e-12).sqrt()
    return phi


def _margin_losses(margins: Tensor, loss: str) -> Tensor:
    """The loss of each margin y f: log(1 + exp(-m)) (logistic) or max(0, 1 - m)^2 (squared hinge)."""
    return F.softplus(-margins) if loss == "logistic" else F.relu(1 - margins).pow(2)


def _margin_slopes(margins: Tensor, loss: str) -> Tensor:
    """d loss / d margin of :func:`_margin_losses`."""
    return -torch.sigmoid(-margins) if loss == "logistic" else -2 * F.relu(1 - margins)


def _head_losses(phi: Tensor, v: Tensor, y: Tensor, loss: str = "logistic") -> tuple[Tensor, Tensor]:
    """Each run's mean loss (R,) and logits (R, N) from features phi (R, N, 2) and heads v (R, 2)."""
    f = torch.einsum("rnk,rk->rn", phi, v)
    return _margin_losses(y * f, loss).mean(dim=1), f


def losses_and_logits(params: dict[str, Tensor], batch, settings: ToySettings) -> tuple[Tensor, Tensor]:
    """Each run's mean loss (R,) and logits (R, N) on ``batch`` = (x_easy, x_hard, y) with a leading run
    dimension, as the sweep computes them (``settings``' loss; with ``normalize_features``, the RMS over
    ``batch``)."""
    return _head_losses(_representation(params, *batch[:2], settings), params[HEAD], batch[2], settings.loss)


def _ascent(grads: dict[str, Tensor], rho: Tensor, perturb_all: Tensor, weights: dict[str, Tensor] | None = None
            ) -> dict[str, Tensor]:
    """:func:`samlib.optim.ascent` for every run: over the head alone where ``perturb_all`` is 0 (LSAM) and
    over every parameter where it is 1 (SAM); with ``weights`` (the parameters) the radius is relative.
    grads {name: (R, ...)}; rho, perturb_all (R,); -> {name: (R, ...)}."""
    names = list(grads)
    steps = ascent([grads[k] for k in names], rho, perturbed=[True if k == HEAD else perturb_all for k in names],
                   params=None if weights is None else [weights[k] for k in names], relative=weights is not None,
                   runs=True)
    return dict(zip(names, steps))


def _grads(loss: Tensor, params: dict[str, Tensor]) -> dict[str, Tensor]:
    return dict(zip(params, torch.autograd.grad(loss.sum(), list(params.values()))))


def _phantom_grads(params, batch, rho, perturb_all, settings: ToySettings):
    """Two passes (any SAM run): the gradient, the ascent on each run's parameters, the gradient there."""
    leaves = {k: p.detach().requires_grad_(True) for k, p in params.items()}
    loss, f = losses_and_logits(leaves, batch, settings)
    eps = _ascent(_grads(loss, leaves), rho, perturb_all, params if settings.relative_rho else None)
    phantom = {k: (params[k] + eps[k]).requires_grad_(True) for k in params}
    return _grads(losses_and_logits(phantom, batch, settings)[0], phantom), loss, f, eps[HEAD]


def _m_sharp_grads(params, batch, rho, perturb_all, settings: ToySettings):
    """m-SAM (a sweep with ``ascent_batch`` and SAM runs): each run's batch split into G groups of ``ascent_batch``
    examples, each group a copy of the run with its own ascent and its own gradient at its own phantom point
    (:func:`_phantom_grads` on R * G copies, as cheap as one pass over the batch); the update is the mean over the
    groups, the phantom head the mean of the groups' heads. With rho = 0 it is the batch's gradient."""
    runs, size = batch[2].shape
    groups = size // settings.ascent_batch
    split = tuple(t.reshape(runs * groups, settings.ascent_batch, *t.shape[2:]) for t in batch)
    copies = {k: p.repeat_interleave(groups, 0) for k, p in params.items()}
    grads, _, _, eps_v = _phantom_grads(copies, split, rho.repeat_interleave(groups),
                                        perturb_all.repeat_interleave(groups), settings)
    with torch.no_grad():
        loss, f = losses_and_logits(params, batch, settings)
    mean = {k: g.reshape(runs, groups, *g.shape[1:]).mean(1) for k, g in grads.items()}
    return mean, loss, f, eps_v.reshape(runs, groups, -1).mean(1)


def _head_m_sharp_grads(params, batch, rho, settings: ToySettings):
    """One pass (SGD and LSAM runs of a sweep with ``ascent_batch``): the features once; each group's head ascent
    from the gradient of its own examples' mean loss; the loss with every example's group's phantom head,
    backpropagated once, is the mean of the groups' gradients at their phantom points (the groups are equal)."""
    leaves = {k: p.detach().requires_grad_(True) for k, p in params.items()}
    phi = _representation(leaves, *batch[:2], settings)
    v, y = leaves[HEAD], batch[2]
    loss, f = _head_losses(phi, v, y, settings.loss)
    runs, size = y.shape
    groups, m = size // settings.ascent_batch, settings.ascent_batch
    with torch.no_grad():  # each group's gradient of its mean loss with respect to v, (R, G, 2)
        per_example = (_margin_slopes(y * f, settings.loss) * y)[..., None] * phi
        grad_v = per_example.reshape(runs, groups, m, -1).mean(2)
    weights = {HEAD: v.detach().repeat_interleave(groups, 0)} if settings.relative_rho else None
    eps = _ascent({HEAD: grad_v.reshape(runs * groups, -1)}, rho.repeat_interleave(groups),
                  torch.zeros(runs * groups, dtype=rho.dtype, device=rho.device), weights)[HEAD]
    phantom = v[:, None, :] + eps.reshape(runs, groups, -1)  # (R, G, 2)
    f_phantom = torch.einsum("rgmk,rgk->rgm", phi.reshape(runs, groups, m, -1), phantom).reshape(runs, size)
    phantom_loss = _margin_losses(y * f_phantom, settings.loss).mean(1)
    return _grads(phantom_loss, leaves), loss.detach(), f, eps.reshape(runs, groups, -1).mean(1)


def _head_ascent(params, batch, rho, settings: ToySettings):
    """Features computed once (attached to fresh leaves), the loss and logits at the real head, and each
    run's head ascent eps_v. Returns (leaves, phi, loss, f, eps_v)."""
    leaves = {k: p.detach().requires_grad_(True) for k, p in params.items()}
    phi = _representation(leaves, *batch[:2], settings)
    loss, f = _head_losses(phi, leaves[HEAD], batch[2], settings.loss)
    grad_v = torch.autograd.grad(loss.sum(), leaves[HEAD], retain_graph=True)[0]
    eps_v = _ascent({HEAD: grad_v}, rho, torch.zeros_like(rho),
                    {HEAD: params[HEAD]} if settings.relative_rho else None)[HEAD]
    return leaves, phi, loss, f, eps_v


def _head_phantom_grads(params, batch, rho, settings: ToySettings):
    """One pass (SGD and LSAM runs only): the features are computed once; the head's gradient on them
    gives the ascent eps_v; the loss with the phantom head v + eps_v, backpropagated once, gives the
    gradient of every parameter at the phantom point (the features do not depend on v)."""
    leaves, phi, loss, f, eps_v = _head_ascent(params, batch, rho, settings)
    phantom_loss = _head_losses(phi, leaves[HEAD] + eps_v, batch[2], settings.loss)[0]
    return _grads(phantom_loss, leaves), loss, f, eps_v


def _recombined_grads(params, batch, rho, parts, settings: ToySettings):
    """One pass (no SAM run): the features once, each run's phantom head, then the recombined update with
    the importance weights and the chain-rule head each run's ``parts`` (R, 2) ask for (real or phantom)."""
    leaves, phi, loss, f, eps_v = _head_ascent(params, batch, rho, settings)
    v, y = leaves[HEAD].detach(), batch[2]
    weighting, chain = (v + parts[:, i, None] * eps_v for i in (0, 1))
    with torch.no_grad():
        f_w = torch.einsum("rnk,rk->rn", phi, weighting)
        output_grads = y * _margin_slopes(y * f_w, settings.loss) / y.shape[1]  # dL/df of each run's mean loss
    surrogate = recombined_loss(phi, chain[:, None], (leaves[HEAD][:, None], None), output_grads[..., None])
    return _grads(surrogate, leaves), loss, f, eps_v


def _fix_head_norm(params: dict[str, Tensor], settings: ToySettings) -> None:
    """With ``head_norm``, rescale every run's head to that norm, in place."""
    if settings.head_norm is not None:
        v = params[HEAD]
        v.mul_(settings.head_norm / v.norm(dim=-1, keepdim=True).clamp_min(1e-12))


def sweep_step(params, buffers, batch, rho, perturb_all, settings: ToySettings, parts: Tensor | None = None):
    """One step of every run, in place, with ``settings``' learning rate, momentum, weight decay, loss and
    levers. ``batch`` = (x_easy, x_hard, y) with a leading run dimension; ``parts`` (R, 2), for sweeps with
    ablations: :data:`PHANTOM_PARTS` of each run. Returns each run's loss and training error on the batch at
    the real point (R,), and its phantom head (R, 2)."""
    if parts is not None:
        grads, loss, f, eps_v = _recombined_grads(params, batch, rho, parts, settings)
    elif settings.ascent_batch is not None and settings.ascent_batch < batch[2].shape[1]:
        if bool(perturb_all.any()):
            grads, loss, f, eps_v = _m_sharp_grads(params, batch, rho, perturb_all, settings)
        else:
            grads, loss, f, eps_v = _head_m_sharp_grads(params, batch, rho, settings)
    elif bool(perturb_all.any()):
        grads, loss, f, eps_v = _phantom_grads(params, batch, rho, perturb_all, settings)
    else:
        grads, loss, f, eps_v = _head_phantom_grads(params, batch, rho, settings)
    phantom_head = (params[HEAD] + eps_v).detach()
    with torch.no_grad():
        for k, p in params.items():
            decay = settings.weight_decay + (settings.head_weight_decay if k == HEAD else 0.0)
            buffers[k].mul_(settings.momentum).add_(grads[k]).add_(p, alpha=decay)
            p.sub_(settings.lr * buffers[k])
        _fix_head_norm(params, settings)
    error = (batch[2] * f.detach() <= 0).to(loss.dtype).mean(1)
    return loss.detach(), error, phantom_head


def initial_params(runs: list[Run], settings: ToySettings) -> dict[str, Tensor]:
    """Every run's parameters before its first step: :func:`~samlib.toy.model.init_params` of its seed times
    ``init_scale``, the head rescaled to ``head_norm`` where one is set."""
    params = init_params([r.seed for r in runs], settings.hidden, settings.dtype)
    if settings.init_scale != 1:
        params = {k: p * settings.init_scale for k, p in params.items()}
    _fix_head_norm(params, settings)
    return params


def _parts(runs: list[Run], settings: ToySettings) -> Tensor | None:
    """:func:`~samlib.optim.registry.phantom_parts` of every run (R, 2) if the sweep holds an ablation, else None."""
    names = {r.optimizer for r in runs}
    if not names & set(ABLATIONS):
        return None
    ablations = "/".join(ABLATIONS)
    whole = sorted(name for name in names if perturbs_all(name))
    if whole:
        raise ValueError(f"a sweep cannot mix {', '.join(whole)} with the {ablations} ablations: train "
                         f"{', '.join(whole)} in its own sweep")
    if settings.ascent_batch is not None:
        raise ValueError(f"the {ablations} ablations take one ascent on the whole batch; got ascent_batch="
                         f"{settings.ascent_batch}: pass ascent_batch=None")
    return torch.tensor([phantom_parts(r.optimizer) for r in runs], dtype=settings.dtype)


def _stack(data: list[ToyData]) -> tuple[Tensor, Tensor, Tensor]:
    return (torch.stack([d.x_easy for d in data]), torch.stack([d.x_hard for d in data]),
            torch.stack([d.y for d in data]))


def _cpu(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """The same tensors on the CPU (the very same objects where they are there already)."""
    return {k: t.cpu() for k, t in tensors.items()}


def _checkpoint_state(step, params, buffers, history, generator, snapshots):
    return {"step": step, "params": _cpu(params), "buffers": _cpu(buffers), "history": history,
            "generator": generator.get_state(), "snapshots": snapshots}


def _kept(checkpoint, saved) -> str:
    if checkpoint is None:
        return ""
    if saved is None:
        return f" No checkpoint was written to {checkpoint} yet."
    return f" The checkpoint {checkpoint} (step {saved}) is kept: fix the cause and rerun to resume from it."


def _cause(settings: ToySettings, runs: list[Run], bad: list[int]) -> str:
    radii = sorted({runs[i].rho for i in bad})
    return (f"the learning rate (lr={settings.lr:g}) or the radius (rho={', '.join(f'{r:g}' for r in radii)}) is "
            f"too large for these settings (easy_scale={settings.easy_scale:g}, noise={settings.noise:g}): try a "
            "tenth of it")


def _stopped(step: int, loss: Tensor, params, runs: list[Run], settings: ToySettings, checkpoint, saved) -> str:
    """The message of a sweep whose loss is not finite at ``step`` (0-based) in some runs."""
    bad = (~torch.isfinite(loss)).nonzero().flatten().tolist()
    shown = ", ".join(f"run {i} ({runs[i].optimizer} rho={runs[i].rho:g}, turns={runs[i].turns:g}, "
                      f"seed={runs[i].seed}; loss {loss[i].item()})" for i in bad[:3])
    diverged = not all(bool(torch.isfinite(p[bad]).all()) for p in params.values())
    before = " (weights already non-finite: the update of the step before diverged)" if diverged else ""
    epoch = step * (settings.batch_size or settings.n) // settings.n + 1
    return (f"toy sweep stopped at step {step + 1} of {settings.steps} (epoch {epoch} over the data): {len(bad)} of "
            f"{len(runs)} runs have a non-finite loss{before}, e.g. {shown}. Likely cause: "
            f"{_cause(settings, runs, bad)}.{_kept(checkpoint, saved)}")


def _check_weights(step: int, params, runs: list[Run], settings: ToySettings, checkpoint, saved) -> None:
    """Before a checkpoint and at the end: every run's parameters finite (the last update's gradient was)."""
    finite = torch.stack([torch.isfinite(p).flatten(1).all(1) for p in params.values()]).all(0)
    if not bool(finite.all()):
        bad = (~finite).nonzero().flatten().tolist()
        raise NonFiniteError(f"toy sweep stopped after step {step} of {settings.steps}: the parameters of {len(bad)} "
                             f"of {len(runs)} runs are no longer finite (their last update diverged), e.g. run "
                             f"{bad[0]} ({runs[bad[0]]}). Likely cause: {_cause(settings, runs, bad)}."
                             f"{_kept(checkpoint, saved)}")


def sweep_fingerprint(runs: list[Run], settings: ToySettings) -> dict[str, str]:
    """What determines a sweep apart from its length: its runs (count and a digest) and every setting but ``steps``."""
    digest = hashlib.blake2b(repr(runs).encode(), digest_size=12).hexdigest()
    return {"runs": f"{len(runs)} runs, digest {digest}",
            **{f"settings.{k}": repr(v) for k, v in asdict(settings).items() if k != "steps"}}


_STATE_KEYS = ("step", "params", "buffers", "history", "generator")


def train_sweep(runs: list[Run], settings: ToySettings = ToySettings(), *, checkpoint: str | Path | None = None,
                checkpoint_every: int = 500, resume: str = "check", progress: bool | None = None,
                snapshots: tuple[int, ...] = (), device: torch.device | str | None = None) -> SweepResult:
    """Train every run of ``runs`` at once for ``settings.steps`` steps (see the module docstring),
    keeping a copy of the parameters after each number of steps in ``snapshots``.

    The steps run on ``device`` (``None``: :func:`samlib.scale.device`, the CPU at book scale). The data,
    the initial parameters and the batch orders are drawn on the CPU whatever the device, and the result
    (parameters, history, snapshots) comes back on the CPU.

    With ``checkpoint`` (a file path), the state is written atomically (CPU tensors) every
    ``checkpoint_every`` steps and an interrupted sweep resumes from it to the same result. A checkpoint of other
    runs or settings (:func:`sweep_fingerprint`; ``steps`` aside) is refused unless ``resume="force"``, and so is a
    file whose bytes changed since it was written.

    A run whose loss stops being finite stops the sweep with :class:`~samlib.checks.NonFiniteError`, naming the
    step, the run and the likely cause, before anything more is written: the last good checkpoint is kept."""
    runs = checks.items("runs", runs, "a list of samlib.toy.sweep.Run: build them with grid(...)")
    if not runs or not all(isinstance(r, Run) for r in runs):
        raise ValueError("runs must be a non-empty list of samlib.toy.sweep.Run: build them with grid(...)")
    if not isinstance(settings, ToySettings):
        raise TypeError(f"settings must be a samlib.toy.sweep.ToySettings, got {type(settings).__name__}")
    checks.positive_int("checkpoint_every", checkpoint_every, "save every that many steps, e.g. 500")
    checks.choice("resume", resume, RESUME)
    checkpoint = checks.optional(checks.path, "checkpoint", checkpoint)
    checks.optional(checks.strict_bool, "progress", progress, "or None to follow $SAMLIB_PROGRESS")
    snapshots = checks.items("snapshots", snapshots, "a tuple of step counts, e.g. (100, 500)")
    if any(isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= settings.steps for k in snapshots):
        raise ValueError(f"snapshots must be step counts in [1, steps={settings.steps}], got {list(snapshots)}")
    device = scale.device() if device is None else torch.device(device)
    x_easy, x_hard, y = (t.to(device) for t in _stack(training_data(runs, settings)))
    params = initial_params(runs, settings)
    buffers = {k: torch.zeros_like(p) for k, p in params.items()}
    rho = torch.tensor([r.rho for r in runs], dtype=settings.dtype)
    perturb_all = torch.tensor([perturbs_all(r.optimizer) for r in runs], dtype=rho.dtype)
    parts = _parts(runs, settings)
    rho, perturb_all, parts = (None if t is None else t.to(device) for t in (rho, perturb_all, parts))
    batches = torch.Generator().manual_seed(0)
    history: dict[str, list] = {"steps": [], "loss": [], "error": [], "v": [], "v_phantom": []}
    kept: dict[int, dict[str, Tensor]] = {}
    start, fingerprint = 0, sweep_fingerprint(runs, settings)
    saved = None  # the step of the checkpoint on disk
    if checkpoint is not None and checkpoint.exists():
        state = load_resumable(checkpoint, "toy sweep", fingerprint, _STATE_KEYS, resume)
        saved = state["step"]
        if state["step"] > settings.steps:
            raise ValueError(f"checkpoint {checkpoint} is at step {state['step']}, past steps={settings.steps}: ask "
                             "for at least that many steps, or pass another checkpoint path")
        fingerprint = state["fingerprint"]  # this sweep's, or with resume="force" the settings the file holds
        start, params, buffers, history = state["step"], state["params"], state["buffers"], state["history"]
        kept = state.get("snapshots", {})
        batches.set_state(state["generator"])
    params, buffers = ({k: t.to(device) for k, t in tensors.items()} for tensors in (params, buffers))
    for step in progress_bar(range(start, settings.steps), progress, desc=f"{len(runs)} toy runs",
                             initial=start, total=settings.steps):
        idx = (slice(None) if settings.batch_size is None
               else torch.randperm(settings.n, generator=batches)[:settings.batch_size].to(device))
        v_before = params[HEAD].clone()
        loss, error, v_phantom = sweep_step(params, buffers, (x_easy[:, idx], x_hard[:, idx], y[:, idx]), rho,
                                            perturb_all, settings, parts)
        if not bool(torch.isfinite(loss).all()):
            raise NonFiniteError(_stopped(step, loss, params, runs, settings, checkpoint, saved))
        if step % settings.log_every == 0 or step == settings.steps - 1:
            for key, value in zip(history, (step, loss, error, v_before, v_phantom)):
                history[key].append(value if key == "steps" else value.cpu())
        if step + 1 in snapshots:
            kept[step + 1] = {k: p.to("cpu", copy=True) for k, p in params.items()}
        if checkpoint is not None and (step + 1) % checkpoint_every == 0 and step + 1 < settings.steps:
            _check_weights(step + 1, params, runs, settings, checkpoint, saved)
            save_atomic(stamped("toy sweep", fingerprint,
                                _checkpoint_state(step + 1, params, buffers, history, batches, kept)), checkpoint)
            saved = step + 1
    _check_weights(settings.steps, params, runs, settings, checkpoint, saved)
    stacked = {k: torch.tensor(v) if k == "steps" else torch.stack(v) for k, v in history.items()}
    return SweepResult(list(runs), settings, _cpu(params), stacked, kept)
