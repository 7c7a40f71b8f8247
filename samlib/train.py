"""Training loops shared by the chapters: one step for any optimizer, epochs with progress
bars, a metrics history, and checkpoints that let an interrupted run resume exactly.

Beyond one device: :func:`fit` takes a DDP-wrapped model (under ``torchrun``) with :class:`ShardedBatches`, writes
its checkpoint from rank 0 and resumes every rank from it; ``scaler``/``autocast_dtype`` train in mixed precision."""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import checks
from .checkpoint import (
    RESUME,
    load_resumable,
    module_fingerprint,
    optimizer_fingerprint,
    save_atomic,
    stamped,
    tensor_digest,
)
from .optim import LSAM, SAM, sam_step
from .optim.distributed import is_ddp, rank, unwrapped, world_size
from .repro import rng_state, set_rng_state

__all__ = ["History", "TensorBatches", "ShardedBatches", "progress_bar", "train_step", "run_fingerprint", "fit"]

LossFn = Callable[[Tensor, Tensor], Tensor]


class History:
    """Per-epoch metrics: a list of rows (dicts of numbers)."""

    def __init__(self, rows: Iterable[dict] = ()):
        self.rows = [dict(r) for r in rows]

    def append(self, **metrics: float) -> None:
        self.rows.append(metrics)

    def column(self, name: str) -> list[float]:
        return [row[name] for row in self.rows]

    @property
    def last(self) -> dict:
        return self.rows[-1] if self.rows else {}

    def to_frame(self):
        import pandas as pd
        return pd.DataFrame(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"History({len(self)} epochs, last={self.last})"


def progress_bar(iterable: Iterable, progress: bool | None = None, **kwargs):
    """A ``tqdm.auto`` bar, off when ``progress=False`` or when ``$SAMLIB_PROGRESS=0``."""
    if progress is None:
        progress = os.environ.get("SAMLIB_PROGRESS", "1") != "0"
    return tqdm(iterable, disable=not progress, **kwargs)


class TensorBatches:
    """Mini-batches of in-memory tensors (same first dimension), reshuffled every epoch
    with torch's global generator (so :func:`samlib.setup` makes the order reproducible)."""

    def __init__(self, *tensors: Tensor, batch_size: int, shuffle: bool = True):
        if not tensors or any(not isinstance(t, Tensor) or t.ndim == 0 or len(t) != len(tensors[0]) for t in tensors):
            raise ValueError("TensorBatches needs tensors with the same first dimension, got "
                             f"{[tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__ for t in tensors]}")
        if len(tensors[0]) == 0:
            raise ValueError("TensorBatches got empty tensors (0 samples): there is nothing to train on")
        self.batch_size = checks.positive_int("batch_size", batch_size, "pass the number of samples a batch holds")
        self.shuffle = checks.strict_bool("shuffle", shuffle)
        self.tensors = tensors

    def fingerprint(self) -> dict[str, str]:
        """What a checkpoint records of these batches: a digest of the tensors, the batch size, the shuffle."""
        return {"data": tensor_digest(*self.tensors), "data.shapes": str([tuple(t.shape) for t in self.tensors]),
                "data.batch_size": str(self.batch_size), "data.shuffle": str(self.shuffle)}

    def __len__(self) -> int:
        return math.ceil(len(self.tensors[0]) / self.batch_size)

    def _order(self) -> Tensor:
        """The epoch's order of the examples (indices)."""
        n = len(self.tensors[0])
        return torch.randperm(n) if self.shuffle else torch.arange(n)

    def __iter__(self):
        order = self._order()
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            yield tuple(t[idx] for t in self.tensors)


class ShardedBatches(TensorBatches):
    """This process's shard of in-memory tensors under ``torch.distributed``: a ``DistributedSampler`` (seeded by
    ``seed``, reshuffled by :meth:`set_epoch`, which :func:`fit` calls) picks the examples, ``batch_size`` per
    process. The order depends on the seed, the epoch and the world size only, so a run is reproducible for a
    given world size and resumes exactly."""

    def __init__(self, *tensors: Tensor, batch_size: int, seed: int, shuffle: bool = True):
        from torch.utils.data import DistributedSampler

        super().__init__(*tensors, batch_size=batch_size, shuffle=shuffle)
        self.seed = checks.seed("seed", seed)
        self.sampler = DistributedSampler(range(len(tensors[0])), num_replicas=world_size(), rank=rank(),
                                          shuffle=self.shuffle, seed=self.seed)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def fingerprint(self) -> dict[str, str]:
        return {**super().fingerprint(), "data.seed": str(self.seed), "data.world_size": str(world_size())}

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def _order(self) -> Tensor:
        return torch.tensor(list(self.sampler))


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: LossFn,
               inputs: Tensor, targets: Tensor, *, scaler: torch.amp.GradScaler | None = None,
               autocast_dtype: torch.dtype | None = None, ascent_gradient: str | None = None) -> tuple[Tensor, Tensor]:
    """One update with any optimizer; returns the loss and outputs at the real weights (detached).

    * :class:`~samlib.optim.LSAM` on a model with ``features``/``head``: the fast one-backbone-pass step;
    * :class:`~samlib.optim.SAM` (LSAM included otherwise, e.g. on a DDP-wrapped model or in mixed precision):
      :func:`~samlib.optim.sam_step`, two passes, running BatchNorm statistics updated by the first only;
    * any other optimizer: one forward, one backward, one step.

    ``autocast_dtype`` (e.g. ``torch.bfloat16``): the forward passes run under ``torch.autocast``; ``scaler``: a
    ``torch.amp.GradScaler`` scales the backward passes (and skips steps whose gradients overflow);
    ``ascent_gradient``: SAM's on a DDP-wrapped model, ``"per_device"`` (its default) or ``"synchronized"``.
    """
    amp = scaler is not None or autocast_dtype is not None
    if isinstance(optimizer, LSAM) and hasattr(model, "features") and not amp:
        return optimizer.fast_step(model.features(inputs), lambda outputs: loss_fn(outputs, targets))
    first_outputs = []

    def compute_loss() -> Tensor:
        with _autocast(inputs.device, autocast_dtype):
            outputs = model(inputs)
            first_outputs.append(outputs)
            return loss_fn(outputs, targets)

    if isinstance(optimizer, SAM):
        loss = sam_step(optimizer, compute_loss, model=model, ascent_gradient=ascent_gradient, scaler=scaler)
    else:
        loss = _plain_step(optimizer, compute_loss, scaler)
    return loss.detach(), first_outputs[0].detach()


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def _plain_step(optimizer: torch.optim.Optimizer, compute_loss: Callable[[], Tensor], scaler) -> Tensor:
    """One forward, one (scaled) backward and one step of a plain optimizer."""
    optimizer.zero_grad()
    loss = compute_loss()
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return loss


def _correct(outputs: Tensor, targets: Tensor) -> float:
    if outputs.ndim == 2 and targets.ndim == 1 and not targets.is_floating_point():
        return (outputs.argmax(1) == targets).sum().item()
    return math.nan


def _train_epoch(model, optimizer, loss_fn, batches, device, step_options: dict) -> dict:
    model.train()
    loss_sum, correct, count = 0.0, 0.0, 0
    for inputs, targets in batches:
        inputs, targets = inputs.to(device), targets.to(device)
        loss, outputs = train_step(model, optimizer, loss_fn, inputs, targets, **step_options)
        loss_sum += loss.item() * len(targets)
        correct += _correct(outputs, targets)
        count += len(targets)
    if is_ddp(model):
        loss_sum, correct, count = _summed_over_processes(loss_sum, correct, count, device=device)
    if count == 0:
        raise ValueError("batches yielded no samples in an epoch: pass a non-empty, re-iterable batches "
                         "(e.g. samlib.train.TensorBatches); a generator is exhausted after one epoch")
    return {"train_loss": loss_sum / count, "train_acc": correct / count}


def _summed_over_processes(*numbers: float, device) -> list[float]:
    """Each number summed over the processes of ``torch.distributed`` (one all-reduce)."""
    total = torch.tensor(numbers, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(total)
    return total.tolist()


def run_fingerprint(model: nn.Module, optimizer: torch.optim.Optimizer, batches, loss_fn: LossFn,
                    identity: dict | None = None) -> dict[str, str]:
    """What determines a :func:`fit` run apart from its length: the optimizer and its hyperparameters, the model's
    parameter shapes, the loss, the data (a digest of :class:`TensorBatches`, or ``identity["data"]``) and every
    other field of ``identity`` (e.g. the seed)."""
    identity = dict(identity or {})
    if isinstance(batches, TensorBatches):
        data = batches.fingerprint()
    elif "data" in identity:
        data = {}
    else:
        raise ValueError(f"fit cannot fingerprint batches of type {type(batches).__name__} for its checkpoint: pass "
                         "samlib.train.TensorBatches, or identity={'data': '<a name for this data set>'}")
    loss = getattr(loss_fn, "__qualname__", type(loss_fn).__qualname__)
    return {**optimizer_fingerprint(optimizer), **module_fingerprint(unwrapped(model)), "loss": loss, **data,
            **{f"run.{key}": str(value) for key, value in identity.items()}}


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable, *, epochs: int,
        loss_fn: LossFn = F.cross_entropy, evaluate: Callable[[nn.Module], dict] | None = None,
        checkpoint: str | os.PathLike | None = None, resume: str = "check", identity: dict | None = None,
        progress: bool | None = None, desc: str = "training", scaler: torch.amp.GradScaler | None = None,
        autocast_dtype: torch.dtype | None = None, ascent_gradient: str | None = None) -> History:
    """Train for ``epochs`` passes over ``batches`` (re-iterable, yields ``(inputs, targets)``).

    Each epoch adds a history row: ``epoch``, ``train_loss``, ``train_acc`` (for class-index
    targets) and whatever ``evaluate(model)`` returns (run in eval mode without gradients).
    With ``checkpoint``, a run resumes from that file if it exists and saves model,
    optimizer, history and random-generator states there after every epoch, atomically:
    an interrupted run resumed later ends with the same weights as an uninterrupted one.

    The checkpoint holds a fingerprint (:func:`run_fingerprint`: optimizer, hyperparameters, model shapes, data
    digest and the fields of ``identity``, not ``epochs``); a file from another run is refused, naming the fields
    that differ, unless ``resume="force"``. Asking for more epochs than the file holds continues the run.

    Mixed precision: ``autocast_dtype`` and ``scaler`` as in :func:`train_step`; the scaler's state is saved and
    resumed with the rest. Under ``torchrun``: pass the DDP-wrapped model and :class:`ShardedBatches` (and
    ``ascent_gradient``, see :func:`samlib.optim.sam_step`, for SAM and LSAM); the
    metrics are summed over the processes, rank 0 alone writes the checkpoint and every rank resumes from it
    (the world size is part of the fingerprint).
    """
    epochs = checks.non_negative_int("epochs", epochs, "pass the number of passes over the data, e.g. epochs=10")
    checks.choice("resume", resume, RESUME)
    checks.optional(checks.choice, "autocast_dtype", autocast_dtype, (torch.bfloat16, torch.float16),
                    "or None for float32; float16 wants a scaler=torch.amp.GradScaler(device)")
    parameters = list(model.parameters())
    if not parameters:
        raise ValueError(f"model ({type(model).__name__}) has no parameters: there is nothing to train")
    device = parameters[0].device
    history, start = History(), 0
    step_options = {"scaler": scaler, "autocast_dtype": autocast_dtype, "ascent_gradient": ascent_gradient}
    identity = {**(identity or {}), **_scale_identity(step_options)}
    fingerprint = None if checkpoint is None else run_fingerprint(model, optimizer, batches, loss_fn, identity)
    if checkpoint is not None and Path(checkpoint).exists():
        required = ("epoch", "model", "optimizer", "history", "rng") + (("scaler",) if scaler is not None else ())
        state = load_resumable(checkpoint, "fit", fingerprint, required, resume)
        fingerprint = state["fingerprint"]  # this run's, or with resume="force" the settings the file holds
        unwrapped(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None:
            scaler.load_state_dict(state["scaler"])
        history, start = History(state["history"]), state["epoch"]
        if start > epochs:
            raise ValueError(f"checkpoint {checkpoint} is at epoch {start}, past epochs={epochs}: "
                             "ask for at least that many epochs, or pass another checkpoint path")
        set_rng_state(state["rng"])
    progress = False if rank() != 0 else progress
    for epoch in progress_bar(range(start, epochs), progress, desc=desc, initial=start, total=epochs):
        if hasattr(batches, "set_epoch"):
            batches.set_epoch(epoch)
        row = {"epoch": epoch + 1, **_train_epoch(model, optimizer, loss_fn, batches, device, step_options)}
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                row.update(evaluate(unwrapped(model)))
            model.train()
        history.append(**row)
        if checkpoint is not None and rank() == 0:
            save_atomic(stamped("fit", fingerprint, {
                "epoch": epoch + 1, "model": unwrapped(model).state_dict(), "optimizer": optimizer.state_dict(),
                "history": history.rows, "rng": rng_state(),
                **({"scaler": scaler.state_dict()} if scaler is not None else {})}), checkpoint)
    return history


def _scale_identity(step_options: dict) -> dict:
    """What a run's scale adds to its fingerprint: the world size beyond one process, the ascent gradient, the
    autocast dtype and the gradient scaler's settings when given (nothing for a plain single-process run, so its
    fingerprint is as before)."""
    scaler, dtype = step_options["scaler"], step_options["autocast_dtype"]
    out = {"world_size": world_size()} if world_size() > 1 else {}
    if step_options["ascent_gradient"] is not None:
        out["ascent_gradient"] = step_options["ascent_gradient"]
    if dtype is not None:
        out["autocast_dtype"] = dtype
    if scaler is not None:
        out["grad_scaler"] = {k: v for k, v in scaler.state_dict().items() if k in ("growth_factor", "backoff_factor",
                                                                                       "growth_interval")}
    return out
