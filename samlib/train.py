"""Training loops shared by the chapters: one step for any optimizer, epochs with progress
bars, a metrics history, and checkpoints that let an interrupted run resume exactly.

Beyond one device: :func:`fit` takes a DDP-wrapped model (under ``torchrun``) with :class:`ShardedBatches`, writes
its checkpoint from rank 0 and resumes every rank from it; ``scaler``/``autocast_dtype`` train in mixed precision.

Nothing silent: :func:`fit` checks its arguments before the first step, refuses class labels out of range before
training, names the model, inputs and loss function when its first step fails, and stops with a
:class:`~samlib.checks.NonFiniteError` at the first non-finite loss or gradient (naming the step, the epoch and
the likely cause), before the epoch's checkpoint is written, so the last good one is kept."""
from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext

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
from .optim.distributed import ASCENT_GRADIENTS, is_ddp, rank, unwrapped, world_size
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
    """A ``tqdm.auto`` bar, off when ``progress=False``, or with ``progress=None`` when ``$SAMLIB_PROGRESS`` is off
    (0, false, off or no, in any case; 1, true, on or yes keep it on; anything else is refused)."""
    if progress is None:
        progress = checks.env_flag("SAMLIB_PROGRESS", True)
    else:
        checks.strict_bool("progress", progress, "pass progress=True or False, or None to follow $SAMLIB_PROGRESS")
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
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}: e.g. "
                        "torch.optim.SGD(model.parameters(), lr=0.1)")
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


def _train_epoch(model, optimizer, loss_fn, batches, device, step_options: dict, watch: "_Watch") -> dict:
    model.train()
    loss_sum, correct, count = 0.0, 0.0, 0
    watch.start_epoch()
    for batch in batches:
        inputs, targets = _pair(batch, device)
        loss, outputs = watch.step(lambda: train_step(model, optimizer, loss_fn, inputs, targets, **step_options),
                                   inputs, targets)
        value = loss.item()
        watch.check(value, inputs, targets)
        loss_sum += value * len(targets)
        correct += _correct(outputs, targets)
        count += len(targets)
    watch.end_epoch()
    if is_ddp(model):
        loss_sum, correct, count = _summed_over_processes(loss_sum, correct, count, device=device)
    if count == 0:
        raise ValueError("batches yielded no samples in an epoch: pass a non-empty, re-iterable batches "
                         "(e.g. samlib.train.TensorBatches); a generator is exhausted after one epoch")
    return {"train_loss": loss_sum / count, "train_acc": correct / count}


def _pair(batch, device) -> tuple[Tensor, Tensor]:
    """A batch of ``batches`` as (inputs, targets) on ``device``, or a TypeError that says what fit needs."""
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        shown = f"a {type(batch).__name__} of {len(batch)}" if isinstance(batch, (tuple, list)) else \
            type(batch).__name__
        raise TypeError(f"batches must yield (inputs, targets) pairs, got {shown}: e.g. "
                        "samlib.train.TensorBatches(x, y, batch_size=64)")
    inputs, targets = batch
    for name, value in (("inputs", inputs), ("targets", targets)):
        if not isinstance(value, Tensor):
            raise TypeError(f"batches yielded {name} of type {type(value).__name__}, not a torch.Tensor: convert them "
                            "(torch.as_tensor), e.g. with samlib.train.TensorBatches")
    if targets.ndim == 0 or inputs.ndim == 0 or len(targets) == 0 or len(inputs) != len(targets):
        raise ValueError(f"batches yielded a batch of {len(inputs)} inputs and {len(targets)} targets: every batch "
                         "needs at least one example and one target per input")
    return inputs.to(device), targets.to(device)


def _all_finite(tensors) -> bool:
    """Whether every tensor is free of NaN and infinities (one device synchronisation; True for none)."""
    tensors = [t.coalesce().values() if t.is_sparse else t for t in tensors]
    return bool(torch.stack([t.isfinite().all() for t in tensors]).all()) if tensors else True


def _class_index_loss(loss_fn) -> tuple[str, int | None] | None:
    """For a loss that takes class indices (cross-entropy, NLL): its name and the ignore_index a user chose for it
    (None: the default -100, which fit refuses as a label); None for any other loss."""
    if loss_fn in (F.cross_entropy, F.nll_loss):
        return loss_fn.__name__, None
    if isinstance(loss_fn, (nn.CrossEntropyLoss, nn.NLLLoss)):
        return type(loss_fn).__name__, None if loss_fn.ignore_index == -100 else loss_fn.ignore_index
    return None


def _bad_labels(targets: Tensor, classes: int | None, ignored: int | None) -> Tensor:
    """The class labels of ``targets`` outside [0, classes) (below 0 when ``classes`` is None), ``ignored`` aside."""
    bad = targets < 0 if classes is None else (targets < 0) | (targets >= classes)
    return bad & (targets != ignored) if ignored is not None else bad


def _check_labels(targets: Tensor, classes: int | None, rule: tuple[str, int | None], where: str) -> None:
    """A ValueError naming the labels of ``targets`` that the class-index loss ``rule`` cannot take."""
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        return
    bad = _bad_labels(targets, classes, rule[1])
    if bool(bad.any()):
        values = torch.unique(targets[bad]).tolist()
        shown = ", ".join(map(str, values[:5])) + (f" and {len(values) - 5} more" if len(values) > 5 else "")
        span = f"[0, {classes})" if classes is not None else "[0, number of classes)"
        raise ValueError(f"{where} hold {int(bad.sum())} label(s) outside {span}: {shown}. {rule[0]} takes class "
                         f"indices 0..C-1; -100 is its ignore_index, whose examples are silently dropped (a batch of "
                         "only them gives a NaN loss): fix or remove those labels before training")


def _head_classes(model: nn.Module) -> int | None:
    head = getattr(unwrapped(model), "head", None)
    return head.out_features if isinstance(head, nn.Linear) else None


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__


def _scalar_loss(loss_fn, first: "_Watch"):
    """``loss_fn`` that refuses a forward returning something other than a tensor and a loss that is not a scalar
    (the same call, the same numbers); on the first step it also checks every label against the outputs' width."""
    def loss(outputs, targets):
        if not isinstance(outputs, Tensor):
            raise TypeError(f"the model's forward returned {type(outputs).__name__}, not a tensor of outputs: fit "
                            "gives loss_fn the forward's output, so make forward return the logits alone (e.g. the "
                            "first element of that tuple)")
        first.check_labels_against(outputs, targets)
        value = loss_fn(outputs, targets)
        if not isinstance(value, Tensor) or value.numel() != 1:
            shown = f"a tensor of shape {tuple(value.shape)}" if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"loss_fn ({_name(loss_fn)}) returned {shown}, not a scalar: it must reduce the batch "
                             "to one number, e.g. reduction='mean' (not 'none'), or .mean() of the per-example "
                             "losses")
        return value
    return loss


class _Watch:
    """What fit watches while it trains: the step and epoch, the first step (whose failure it explains), the labels
    against the outputs' width, and every loss and gradient (a non-finite one stops the run)."""

    def __init__(self, model, optimizer, loss_fn, batches, scaler, checkpoint, epoch: int):
        self.model, self.optimizer, self.loss_fn, self.scaler = model, optimizer, loss_fn, scaler
        self.checkpoint, self.epoch, self.first, self.step_count = checkpoint, epoch, True, 0
        self.batch, self.batches_per_epoch, self.losses, self.skipped = 0, None, deque(maxlen=50), 0
        self.rule = _class_index_loss(loss_fn)
        self.labels = batches.tensors[1] if isinstance(batches, TensorBatches) and len(batches.tensors) == 2 \
            else None
        try:
            self.batches_per_epoch = len(batches)
        except TypeError:
            pass

    def check_labels_up_front(self) -> None:
        """Labels of TensorBatches below 0 (or, with a linear head, at or past its width): refused before training."""
        if self.rule is not None and self.labels is not None:
            _check_labels(self.labels, _head_classes(self.model), self.rule, "the batches' targets")

    def check_labels_against(self, outputs: Tensor, targets) -> None:
        """On the first step: every label (of TensorBatches, else of the first batch) below the outputs' width."""
        if self.first and self.rule is not None and outputs.ndim >= 2 and isinstance(targets, Tensor):
            if self.labels is not None:
                _check_labels(self.labels, outputs.shape[1], self.rule, "the batches' targets")
            else:
                _check_labels(targets, outputs.shape[1], self.rule, "the first batch's targets")

    def start_epoch(self) -> None:
        self.epoch += 1
        self.batch, self.skipped = 0, 0

    def step(self, call, inputs: Tensor, targets: Tensor):
        self.batch += 1
        self.step_count += 1
        if not self.first:
            return call()
        if self.rule is not None and self.labels is None:
            _check_labels(targets, None, self.rule, "the first batch's targets")
        try:
            result = call()
        except Exception as exc:
            raise _explained(exc, self, inputs, targets) from exc
        self.first = False
        return result

    def where(self) -> str:
        of = f" of {self.batches_per_epoch}" if self.batches_per_epoch else ""
        return f"step {self.step_count} (epoch {self.epoch}, batch {self.batch}{of})"

    def check(self, loss: float, inputs: Tensor, targets: Tensor) -> None:
        """After a step: stop at a non-finite loss or gradient (with a scaler, a skipped step is not an error)."""
        self.losses.append(loss)
        if self.scaler is not None:
            self.skipped += not math.isfinite(loss)
            return
        grads = [p.grad for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        if math.isfinite(loss) and _all_finite(grads):
            return
        if math.isfinite(loss):
            what, cause = "a gradient is not finite (the loss was finite)", self.gradient_cause()
        else:
            what, cause = f"the loss is {loss}", self.causes(inputs, targets)
        raise checks.NonFiniteError(f"training stopped at {self.where()}: {what}. Likely cause: {cause}.{self.kept()}")

    def end_epoch(self) -> None:
        """With a scaler: refuse an epoch whose every step had a non-finite loss (it cannot be an overflow)."""
        if self.scaler is not None and self.batch and self.skipped == self.batch:
            raise checks.NonFiniteError(
                f"training stopped after epoch {self.epoch}: the loss was not finite in all {self.batch} of its "
                "steps, so the GradScaler skipped every one. A skipped step is an overflow of the scaled gradients; "
                f"a loss that is never finite is not: check the inputs, the labels and the learning rate.{self.kept()}")

    def check_weights(self, parameters) -> None:
        """Before an epoch's evaluation and checkpoint: the trained weights must be finite (a frozen parameter may
        hold an infinity on purpose, e.g. a mask)."""
        if not _all_finite([p.detach() for p in parameters if p.requires_grad]):
            raise checks.NonFiniteError(
                f"training stopped at the end of epoch {self.epoch} ({self.where()} was its last step): the weights "
                f"are no longer finite, so the last update diverged. Likely cause: {self.lr_cause()}.{self.kept()}")

    def kept(self) -> str:
        if self.checkpoint is None:
            return ""
        return (f" The checkpoint {self.checkpoint} is kept as it was (the last good state, written after an earlier "
                "epoch, if any); fix the cause and rerun to resume from it.")

    def lr_cause(self) -> str:
        lrs = sorted({g["lr"] for g in self.optimizer.param_groups if "lr" in g}, key=float)
        shown = ", ".join(f"{float(lr):g}" for lr in lrs) or "its value"
        finite = [v for v in self.losses if math.isfinite(v)]
        trend = (f"; the loss went from {finite[0]:.3g} to {finite[-1]:.3g} over the last {len(finite)} finite steps"
                 if len(finite) >= 2 else "")
        return f"the learning rate (lr={shown}) is too large for this model and data{trend}: try a tenth of it"

    def gradient_cause(self) -> str:
        names = [name for name, p in self.model.named_parameters()
                 if p.grad is not None and not _all_finite([p.grad])]
        return (f"an operation of the model or of loss_fn ({_name(self.loss_fn)}) without a finite derivative here "
                "(sqrt or log at 0, a division by zero, a power of a negative number), in the gradient of "
                f"{', '.join(names[:3]) or 'a parameter'}; or {self.lr_cause()}")

    def causes(self, inputs: Tensor, targets: Tensor) -> str:
        found = []
        if inputs.is_floating_point() or inputs.is_complex():
            bad = int((~torch.isfinite(inputs)).sum())
            if bad:
                found.append(f"an input: this batch's inputs hold {bad} NaN or infinite value(s) (clean the data, "
                             "e.g. drop the rows where not torch.isfinite(x).all(dim=1))")
        if targets.is_floating_point():
            bad = int((~torch.isfinite(targets)).sum())
            if bad:
                found.append(f"a target: this batch's targets hold {bad} NaN or infinite value(s)")
        elif self.rule is not None and targets.dtype != torch.bool:
            bad = _bad_labels(targets, _head_classes(self.model), self.rule[1])
            if bool(bad.any()):
                found.append(f"a label out of range: this batch's labels hold {torch.unique(targets[bad]).tolist()[:5]}"
                             f", which {self.rule[0]} cannot take (class indices 0..C-1)")
        if not found and not _all_finite([p.detach() for p in self.model.parameters() if p.requires_grad]):
            return f"the weights are no longer finite, so an update before this step diverged: {self.lr_cause()}"
        return "; or ".join(found) if found else self.lr_cause()


def _explained(exc: Exception, watch: _Watch, inputs: Tensor, targets: Tensor) -> Exception:
    """``exc`` (the first step's failure) again, its message followed by what fit was training: the model's class,
    its parameters' dtype, the inputs' and targets' shapes and dtypes, and the loss function's name."""
    params = [p for p in watch.model.parameters() if p.requires_grad]
    dtypes = ", ".join(sorted({str(p.dtype) for p in params}))
    hints = []
    if params and inputs.is_floating_point() and inputs.dtype != params[0].dtype:
        hints.append(f"the inputs are {inputs.dtype} but the model's parameters {params[0].dtype}: convert one "
                     f"(e.g. x.to({params[0].dtype}))")
    elif params and not inputs.is_floating_point() and params[0].is_floating_point():
        hints.append(f"the inputs are {inputs.dtype}: unless the model starts with an embedding, pass floating-point "
                     f"inputs (e.g. x.to({params[0].dtype}))")
    text = str(exc)
    if "shapes cannot be multiplied" in text or "size mismatch" in text or "Expected input" in text:
        hints.append("the inputs' width does not match the model's first layer")
    if watch.rule is not None and targets.is_floating_point() and targets.ndim == 1:
        hints.append(f"{watch.rule[0]} takes int64 class indices: pass targets.long()")
    message = (f"{text}\n(fit's first step failed: model {type(unwrapped(watch.model)).__name__} with "
               f"{len(params)} trainable parameter tensor(s) of {dtypes or 'no dtype'}, inputs of shape "
               f"{tuple(inputs.shape)} and dtype {inputs.dtype}, targets of shape {tuple(targets.shape)} and dtype "
               f"{targets.dtype}, loss_fn {_name(watch.loss_fn)}"
               + ("".join(f"; {h}" for h in hints)) + ")")
    try:
        explained = type(exc)(message)
        if str(explained) != message:
            explained = RuntimeError(message)
    except Exception:
        explained = RuntimeError(message)
    return explained


def _check_fit_arguments(model, optimizer, loss_fn, evaluate, identity, scaler, ascent_gradient, batches,
                         progress) -> None:
    """fit's arguments, before anything else: what each must be, and that they fit together."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    checks.function("loss_fn", loss_fn, "e.g. torch.nn.functional.cross_entropy (outputs, targets) -> scalar")
    checks.optional(checks.function, "evaluate", evaluate, "a function of the model that returns a dict of metrics")
    if identity is not None and not isinstance(identity, Mapping):
        raise TypeError(f"identity must be a dict of what else identifies the run (e.g. {{'seed': 0}}), got "
                        f"{type(identity).__name__}")
    if scaler is not None and not isinstance(scaler, torch.amp.GradScaler):
        raise TypeError(f"scaler must be a torch.amp.GradScaler (or None), got {type(scaler).__name__}")
    checks.optional(checks.choice, "ascent_gradient", ascent_gradient, ASCENT_GRADIENTS)
    checks.optional(checks.strict_bool, "progress", progress, "or None to follow $SAMLIB_PROGRESS")
    if isinstance(batches, (Tensor, str, bytes)) or not hasattr(batches, "__iter__"):
        raise TypeError(f"batches must be a re-iterable of (inputs, targets) pairs, got {type(batches).__name__}: "
                        "e.g. samlib.train.TensorBatches(x, y, batch_size=64)")
    parameters = list(model.parameters())
    if not parameters:
        raise ValueError(f"model ({type(model).__name__}) has no parameters: there is nothing to train")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer over the model's parameters, got "
                        f"{type(optimizer).__name__} {optimizer!r:.40}; e.g. torch.optim.SGD(model.parameters(), "
                        "lr=0.1) or samlib.SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1)")
    trainable = [p for p in parameters if p.requires_grad]
    if not trainable:
        raise ValueError(f"model ({type(model).__name__}) has no trainable parameter: all {len(parameters)} are "
                         "frozen (requires_grad=False), so nothing would train; unfreeze some with "
                         "p.requires_grad_(True)")
    for i, group in enumerate(optimizer.param_groups):
        for key, value in group.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isfinite(value):
                raise ValueError(f"the optimizer's {key} (parameter group {i}) is {value}: every weight would turn "
                                 f"into NaN; pass a finite {key}")
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if not any(id(p) in held for p in trainable):
        raise ValueError(f"optimizer ({type(optimizer).__name__}) holds none of the model's trainable parameters, so "
                         "the model would never change: build it from this model, e.g. "
                         f"{type(optimizer).__name__}(model.parameters(), ...)")


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
    loss = _name(loss_fn)
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
    that differ, unless ``resume="force"``. Asking for more epochs than the file holds continues the run. A file
    whose bytes changed since it was written is refused (:class:`~samlib.checkpoint.CheckpointCorrupt`).

    Before the first step every argument is checked (a frozen model, an optimizer of other parameters, a
    checkpoint path that is empty or a folder, class labels out of range for cross-entropy: refused). A failing
    first step is re-raised with the model's class, the inputs' shape and dtype and the loss function's name. A
    non-finite loss or gradient stops training with :class:`~samlib.checks.NonFiniteError` (naming the step, the
    epoch and the likely cause: an input, a label, the learning rate) before the epoch's checkpoint is written.

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
    _check_fit_arguments(model, optimizer, loss_fn, evaluate, identity, scaler, ascent_gradient, batches, progress)
    checkpoint = checks.optional(checks.path, "checkpoint", checkpoint)
    parameters = list(model.parameters())
    device = parameters[0].device
    history, start = History(), 0
    step_options = {"scaler": scaler, "autocast_dtype": autocast_dtype, "ascent_gradient": ascent_gradient}
    identity = {**(identity or {}), **_scale_identity(step_options)}
    fingerprint = None if checkpoint is None else run_fingerprint(model, optimizer, batches, loss_fn, identity)
    if checkpoint is not None and checkpoint.exists():
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
    watch = _Watch(model, optimizer, loss_fn, batches, scaler, checkpoint, start)
    if start < epochs:
        watch.check_labels_up_front()
    checked_loss = _scalar_loss(loss_fn, watch)
    progress = False if rank() != 0 else progress
    for epoch in progress_bar(range(start, epochs), progress, desc=desc, initial=start, total=epochs):
        if hasattr(batches, "set_epoch"):
            batches.set_epoch(epoch)
        row = {"epoch": epoch + 1, **_train_epoch(model, optimizer, checked_loss, batches, device, step_options,
                                                  watch)}
        watch.check_weights(parameters)
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                row.update(_metrics(evaluate(unwrapped(model)), set(row)))
            model.train()
        history.append(**row)
        if checkpoint is not None and rank() == 0:
            save_atomic(stamped("fit", fingerprint, {
                "epoch": epoch + 1, "model": unwrapped(model).state_dict(), "optimizer": optimizer.state_dict(),
                "history": history.rows, "rng": rng_state(),
                **({"scaler": scaler.state_dict()} if scaler is not None else {})}), checkpoint)
    return history


def _metrics(metrics, taken: set) -> Mapping:
    """What ``evaluate`` returned, if it is a mapping of names to values that fit does not fill itself."""
    if not isinstance(metrics, Mapping):
        raise TypeError(f"evaluate must return a dict of metrics (name -> number), got {type(metrics).__name__} "
                        f"{metrics!r:.60}: e.g. lambda model: {{'test_acc': accuracy(model)}}")
    for key in metrics:
        if not isinstance(key, str):
            raise TypeError(f"evaluate's metrics must be named by strings, got the key {key!r}")
        if key in taken:
            raise ValueError(f"evaluate returned the metric {key!r}, which fit fills itself "
                             f"({', '.join(sorted(taken))}): rename it")
    return metrics


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
