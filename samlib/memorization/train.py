"""Train many runs of the noise-memorization setting at once: SGD and SAM, per-run stopping.

All runs (any mix of n, ‖μ‖, seed and τ) share one loop over epochs. Their weights are stacked,
(R, 2, m, d); training sets are padded to the largest n and masked. Each epoch, every active run
draws its own random partition into batches of ``batch_size`` (from its seed's ``batches``
stream) and takes ceil(n / batch_size) steps; runs are sorted by n, so the runs still stepping
at batch slot b are a prefix of the stack. SGD runs take one pass per step, SAM runs two. After
each epoch a run whose full training loss is below ``stop_loss`` is frozen. A run's numbers do
not depend on which other runs share the batch (up to floating-point summation order).

The steps run on a ``device`` (by default :func:`samlib.scale.device`, the CPU at book scale). Data,
initial weights and batch orders are drawn on the CPU whatever the device, the bookkeeping (sizes,
radii, active runs, epochs) stays there, and the :class:`Result` comes back on the CPU.

A run whose loss stops being finite stops training with :class:`~samlib.checks.NonFiniteError` at the end of that
epoch (one check per epoch, on the device), naming the first step of the epoch whose loss was not finite, the runs
and the likely cause.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from .. import checks, scale
from ..checks import NonFiniteError
from ..optim.registry import perturbs_all
from ..train import progress_bar
from .data import DataSetting, PatchData, Run, generator, held_out_data, training_data
from .model import (
    coefficients,
    error_rate,
    filters_last,
    init_weights,
    margins,
    mean_loss,
    noise_memorization,
    optimizer_step,
    signal_learning,
)

__all__ = ["Training", "Trace", "Result", "train_runs", "train_table"]


@dataclass(frozen=True)
class Training:
    """Model and optimizer settings shared by the runs: ``width`` m filters per class, init scale
    σ₀, step size η, batch size, epoch cap, the loss threshold that stops a run (``None``: never
    stop), and how often to log coefficients / test errors (every k epochs; ``None``: start and end)."""
    width: int = 20
    init_std: float = 0.01
    lr: float = 1.0
    batch_size: int = 10
    max_epochs: int = 100
    stop_loss: float | None = 0.05
    log_every: int | None = 1
    eval_every: int | None = None
    dtype: torch.dtype = torch.float32

    def __post_init__(self):
        for name in ("width", "batch_size", "max_epochs"):
            checks.positive_int(name, getattr(self, name))
        for name in ("init_std", "lr"):
            checks.real(name, getattr(self, name), low=0, low_open=True)
        checks.optional(checks.real, "stop_loss", self.stop_loss, low=0, low_open=True,
                        hint="a training-loss threshold, or None to never stop")
        for name in ("log_every", "eval_every"):
            checks.optional(checks.positive_int, name, getattr(self, name), "a number of epochs, or None")
        checks.choice("dtype", self.dtype, (torch.float32, torch.float64))
        for name in ("init_std", "lr"):
            checks.real(name, getattr(self, name), high=torch.finfo(self.dtype).max,
                        hint=f"it must fit in {self.dtype}")


@dataclass
class Trace:
    """Logged after the epochs in ``epochs`` (0 is the start), for every run (frozen runs repeat):
    ``loss`` (T, R) full training loss; ``signal`` (T, R, 2, m) ⟨w_{j,r}, μ⟩; ``noise``
    (T, R, 2, m, n_max) ⟨w_{j,r}, ξᵢ⟩ (NaN past a run's n); ``noise_active`` (T, R, 2) the share
    of own-class filters active on the noise patch during the epoch's steps, at the real and at
    the phantom weights (NaN where a run took no step); ``test_error`` (T, R, 2) clean and noisy
    labels at the eval epochs (NaN elsewhere), or None without ``eval_every``."""
    epochs: list[int]
    loss: Tensor
    signal: Tensor
    noise: Tensor
    noise_active: Tensor
    test_error: Tensor | None


@dataclass
class Result:
    """Every run's final ``weights`` (R, 2, m, d), ``epochs`` trained, whether it ``stopped`` at the
    loss threshold, its final ``train_loss`` and ``train_error`` (observed labels), ``test_error``
    (R, 2) against clean and noisy test labels, the :class:`Trace`, the observed training
    ``labels`` (R, n_max) with their ``valid`` mask, and the wall time in seconds."""
    runs: list[Run]
    setting: DataSetting
    training: Training
    weights: Tensor
    epochs: Tensor
    stopped: Tensor
    train_loss: Tensor
    train_error: Tensor
    test_error: Tensor
    trace: Trace
    labels: Tensor
    valid: Tensor
    seconds: float

    def signal_learning(self) -> Tensor:
        """max_r j⟨w_{j,r}, μ⟩ averaged over the classes, at every logged epoch: (T, R)."""
        return signal_learning(self.trace.signal)

    def noise_memorization(self) -> Tensor:
        """max_r ⟨w_{yᵢ,r}, ξᵢ⟩ averaged over each run's examples, at every logged epoch: (T, R)."""
        return noise_memorization(self.trace.noise.nan_to_num(), self.labels, self.valid)

    def table(self):
        """One row per run: n, mu_norm, seed, tau, optimizer, epochs, stopped, losses and errors."""
        import pandas as pd
        return pd.DataFrame({
            "n": [r.n for r in self.runs], "mu_norm": [r.mu_norm for r in self.runs],
            "seed": [r.seed for r in self.runs], "tau": [r.tau for r in self.runs],
            "optimizer": [r.optimizer for r in self.runs], "epochs": self.epochs.tolist(),
            "stopped": self.stopped.tolist(), "train_loss": self.train_loss.tolist(),
            "train_error": self.train_error.tolist(), "test_error": self.test_error[:, 0].tolist(),
            "test_error_noisy": self.test_error[:, 1].tolist()})


class _Stack:
    """The padded training data of R runs: x (R, n_max, 2, d), y, signal_patch (R, n_max), valid, on
    ``device``; the sizes ``n`` (R,) stay on the CPU."""

    def __init__(self, runs: list[Run], setting: DataSetting, dtype: torch.dtype, device: torch.device):
        data = [training_data(run, setting, dtype) for run in runs]
        R, n_max, d = len(runs), max(run.n for run in runs), setting.d
        self.n = torch.tensor([run.n for run in runs])
        self.x = torch.zeros(R, n_max, 2, d, dtype=dtype)
        self.noise = torch.zeros(R, n_max, d, dtype=dtype)
        self.y = torch.ones(R, n_max, dtype=dtype)
        self.signal_patch = torch.zeros(R, n_max, dtype=torch.long)
        for i, part in enumerate(data):
            n = runs[i].n
            self.x[i, :n], self.noise[i, :n], self.y[i, :n], self.signal_patch[i, :n] = (
                part.x, part.noise, part.y, part.signal_patch)
        self.valid = torch.arange(n_max) < self.n[:, None]
        self.mu = torch.zeros(R, d, dtype=dtype)
        self.mu[:, 0] = torch.tensor([run.mu_norm for run in runs], dtype=dtype)
        for name in ("x", "noise", "y", "signal_patch", "valid", "mu"):
            setattr(self, name, getattr(self, name).to(device))


def _noise_active(pre: Tensor, noise_patch: Tensor, y: Tensor, valid: Tensor) -> Tensor:
    """How many own-class filters fire on the noise patch: pre (k, B, 2, 2, m) -> (k,) counts."""
    on_noise = torch.where((noise_patch == 0)[..., None, None], pre[:, :, 0], pre[:, :, 1])  # (k, B, 2, m)
    own = torch.where((y > 0)[..., None], on_noise[:, :, 0], on_noise[:, :, 1])  # (k, B, m)
    return ((own > 0) & valid[..., None]).sum(dim=(1, 2))


def _batch_slots(rows: Tensor, stack: _Stack, gens: list, batch_size: int) -> Tensor:
    """Each run's random partition of its n examples, padded with -1: (k, slots * batch_size)."""
    width = math.ceil(int(stack.n[rows].max()) / batch_size) * batch_size
    slots = torch.full((len(rows), width), -1, dtype=torch.long)
    for i, r in enumerate(rows.tolist()):
        slots[i, :stack.n[r]] = torch.randperm(int(stack.n[r]), generator=gens[r])
    return slots


def _train_epoch(W: Tensor, rows: Tensor, tau: Tensor | None, stack: _Stack, gens: list,
                 training: Training, active_counts: Tensor, first_bad: Tensor) -> None:
    """One epoch for ``rows`` (sorted by n, largest first), updating W and active_counts in place, and
    ``first_bad`` (R,): the first batch slot of the epoch whose loss was not finite, per run (-1: none)."""
    B = training.batch_size
    slots, steps = _batch_slots(rows, stack, gens, B).to(W.device), -(-stack.n[rows] // B)
    rows = rows.to(W.device)
    Wk = filters_last(W[rows])
    for b in range(int(steps.max())):
        k = int((steps > b).sum())
        batch = slots[:k, b * B:(b + 1) * B]
        ok = batch >= 0
        flat = (rows[:k, None] * stack.x.shape[1] + batch.clamp(min=0)).flatten()  # index into (R * n_max)
        x = stack.x.flatten(0, 1).index_select(0, flat).reshape(k, B, *stack.x.shape[2:])
        y = stack.y.flatten().index_select(0, flat).reshape(k, B)
        out = optimizer_step(Wk[:k], x, y, ok, training.lr, None if tau is None else tau[:k])
        seen = first_bad[rows[:k]]
        first_bad[rows[:k]] = torch.where((seen < 0) & ~torch.isfinite(out.loss), b, seen)
        noise_patch = 1 - stack.signal_patch.flatten().index_select(0, flat).reshape(k, B)
        active_counts[rows[:k], 0] += _noise_active(out.real, noise_patch, y, ok)
        active_counts[rows[:k], 1] += _noise_active(out.phantom, noise_patch, y, ok)
        active_counts[rows[:k], 2] += ok.sum(dim=1) * W.shape[2]
    W[rows] = Wk


def _check_finite(epoch: int, first_bad: Tensor, W: Tensor, runs: list, training: Training) -> None:
    """Stop at the end of an epoch in which a run's loss, or its weights after the update, stopped being finite."""
    diverged = ~torch.isfinite(W).flatten(1).all(1)
    if not bool(((first_bad >= 0) | diverged).any()):
        return
    slots, diverged = first_bad.cpu(), diverged.cpu()
    bad = ((slots >= 0) | diverged).nonzero().flatten().tolist()
    shown = "; ".join(f"run {i} ({runs[i]}): " + (f"its loss at step {int(slots[i]) + 1} of the epoch" if slots[i] >= 0
                                                   else "its weights after the epoch's last update")
                      for i in bad[:3])
    mus = sorted({runs[i].mu_norm for i in bad})
    raise NonFiniteError(f"training stopped in epoch {epoch}: {len(bad)} of {len(runs)} runs are no longer finite, "
                         f"e.g. {shown}. Likely cause: the learning rate (lr={training.lr:g}) is too large for a "
                         f"signal of norm {', '.join(f'{m:g}' for m in mus)} (or the radius tau of a SAM run): try a "
                         "tenth of it")


def _by_n(rows: Tensor, stack: _Stack):
    for n in stack.n[rows].unique().tolist():
        yield n, rows[stack.n[rows] == n]


def _train_loss_and_error(W: Tensor, rows: Tensor, stack: _Stack) -> tuple[Tensor, Tensor]:
    loss, error = (torch.zeros(len(W), dtype=W.dtype, device=W.device) for _ in range(2))
    for n, sub in _by_n(rows, stack):
        sub = sub.to(W.device)
        margin = margins(W[sub], stack.x[sub, :n], stack.y[sub, :n])
        loss[sub], error[sub] = mean_loss(margin), error_rate(margin)
    return loss, error


def _test_errors(W: Tensor, runs: list[Run], setting: DataSetting, cache: dict | None = None) -> Tensor:
    """(R, 2): error against clean and against noisy test labels; one test set per (seed, ‖μ‖),
    kept in ``cache`` (a dict) when one is given."""
    errors = torch.zeros(len(runs), 2, dtype=W.dtype, device=W.device)
    for key in sorted({(r.seed, r.mu_norm) for r in runs}):
        rows = torch.tensor([i for i, r in enumerate(runs) if (r.seed, r.mu_norm) == key], device=W.device)
        test = cache.get(key) if cache is not None else None
        if test is None:
            test = held_out_data(*key, setting, W.dtype)
            test = PatchData(*(getattr(test, f.name).to(W.device) for f in fields(PatchData)))
            if cache is not None:
                cache[key] = test
        output = margins(W[rows], test.x, 1.0)
        errors[rows, 0], errors[rows, 1] = error_rate(output * test.clean), error_rate(output * test.y)
    return errors


def _log(log: dict, epoch: int, W, stack, counts, runs, setting, tests: dict | None) -> None:
    """Append the epoch's numbers to ``log``, on the CPU."""
    everyone = torch.arange(len(W))
    signal, noise = coefficients(W, stack.mu, stack.noise)
    log["epochs"].append(epoch)
    log["loss"].append(_train_loss_and_error(W, everyone, stack)[0].cpu())
    log["signal"].append(signal.cpu())
    log["noise"].append(noise.masked_fill(~stack.valid[:, None, None, :], math.nan).cpu())
    log["noise_active"].append((counts[:, :2] / counts[:, 2:].where(counts[:, 2:] > 0, math.nan)).cpu())
    log["test_error"].append(_test_errors(W, runs, setting, tests).cpu() if tests is not None
                             else torch.full((len(W), 2), math.nan, dtype=W.dtype))


def train_runs(runs, setting: DataSetting = DataSetting(), training: Training = Training(),
               progress: bool | None = None, desc: str = "runs", *,
               device: torch.device | str | None = None) -> Result:
    """Train every run in ``runs`` (a list of :class:`Run`) simultaneously, on ``device`` (``None``:
    :func:`samlib.scale.device`); see the module docstring. The result is on the CPU."""
    runs = checks.items("runs", runs, "a list of Run(n, mu_norm, seed, tau), e.g. grid_runs(...)")
    if not runs or not all(isinstance(r, Run) for r in runs):
        raise ValueError("runs must be a non-empty list of Run(n, mu_norm, seed, tau), e.g. from grid_runs(...)")
    for name, value, kind in (("setting", setting, DataSetting), ("training", training, Training)):
        if not isinstance(value, kind):
            raise TypeError(f"{name} must be a samlib.memorization {kind.__name__}, got {type(value).__name__}")
    checks.optional(checks.strict_bool, "progress", progress, "or None to follow $SAMLIB_PROGRESS")
    start = time.perf_counter()
    device = scale.device() if device is None else torch.device(device)
    stack = _Stack(runs, setting, training.dtype, device)
    W = init_weights(runs, training.width, training.init_std, setting.d, training.dtype).to(device)
    gens = [generator(run.seed, "batches") for run in runs]
    tau = torch.tensor([run.tau for run in runs], dtype=training.dtype)
    by_size = sorted(range(len(runs)), key=lambda i: -runs[i].n)
    groups = [(torch.tensor([i for i in by_size if perturbs_all(runs[i].optimizer) == sam], dtype=torch.long), sam)
              for sam in (False, True)]  # SGD's runs (one pass per step), then SAM's (two)
    active, epochs = torch.ones(len(runs), dtype=torch.bool), torch.zeros(len(runs), dtype=torch.long)
    log = {key: [] for key in ("epochs", "loss", "signal", "noise", "noise_active", "test_error")}
    counts = torch.zeros(len(runs), 3, dtype=training.dtype, device=device)
    first_bad = torch.full((len(runs),), -1, dtype=torch.long, device=device)
    tests = {} if training.eval_every is not None else None  # test sets kept for repeated evaluation
    _log(log, 0, W, stack, counts, runs, setting, tests)
    for epoch in progress_bar(range(1, training.max_epochs + 1), progress, desc=desc):
        counts.zero_()
        for rows, sam in groups:
            rows = rows[active[rows]]
            if len(rows):
                _train_epoch(W, rows, tau[rows].to(device) if sam else None, stack, gens, training, counts, first_bad)
        _check_finite(epoch, first_bad, W, runs, training)
        epochs[active] = epoch
        if training.stop_loss is not None:
            loss, _ = _train_loss_and_error(W, active.nonzero().flatten(), stack)
            active &= ~(loss < training.stop_loss).cpu()
        last = epoch == training.max_epochs or not active.any()
        eval_now = training.eval_every is not None and (epoch % training.eval_every == 0 or last)
        if eval_now or last or (training.log_every is not None and epoch % training.log_every == 0):
            _log(log, epoch, W, stack, counts, runs, setting, tests if eval_now else None)
        if last:
            break
    loss, error = (t.cpu() for t in _train_loss_and_error(W, torch.arange(len(runs)), stack))
    stopped = ~active if training.stop_loss is not None else torch.zeros_like(active)
    trace = Trace(log["epochs"], *(torch.stack(log[k]) for k in ("loss", "signal", "noise", "noise_active")),
                  torch.stack(log["test_error"]) if training.eval_every is not None else None)
    return Result(runs, setting, training, W.contiguous().cpu(), epochs, stopped, loss, error,
                  _test_errors(W, runs, setting, tests).cpu(), trace, (stack.y * stack.valid).cpu(),
                  stack.valid.cpu(), time.perf_counter() - start)


def train_table(runs, setting: DataSetting = DataSetting(), training: Training = Training(), *,
                by_n: bool = False, progress: bool | None = None, desc: str = "runs",
                device: torch.device | str | None = None):
    """:meth:`Result.table` of :func:`train_runs` (on ``device``) and the seconds it took: all runs in one
    batch, or with ``by_n`` one batch per training-set size (the same numbers, in less memory)."""
    runs = list(runs)
    sizes = sorted({run.n for run in runs}) if checks.strict_bool("by_n", by_n) else [None]
    results = [train_runs([r for r in runs if size is None or r.n == size], setting, training, progress,
                          desc if size is None else f"{desc}, n = {size}", device=device) for size in sizes]
    import pandas as pd
    return pd.concat([r.table() for r in results], ignore_index=True), sum(r.seconds for r in results)
