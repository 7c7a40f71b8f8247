"""SAM: sharpness-aware minimization (Foret et al., 2021) around any torch optimizer.

One SAM step on a batch with loss L and weights w:

    g      = grad L(w)
    eps    = rho * g / ||g||            (the ascent step; ||.|| is the L2 norm over all perturbed weights)
    w~     = w + eps                    (the *phantom* weights)
    w     <- base_update(w, grad L(w~)) (e.g. SGD: w - lr * grad L(w~))

With ``adaptive=True`` the ascent is ASAM's element-wise scaled one (Kwon et al., 2021),
``eps = rho * w**2 * g / || |w| * g ||``, as in the widely used ``davda54/sam``. With ``relative=True`` the
radius is ``rho * ||w||`` over the perturbed weights (the toy chapter's scale-free radius), so that it grows
with the weights instead of shrinking relative to them.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch import Tensor

from .. import checks
from .ascent import ascent
from .batchnorm import frozen_bn_stats
from .distributed import is_ddp

__all__ = ["SAM", "backward", "check_rho"]


def check_rho(rho, name: str = "rho") -> float:
    """Return ``rho`` as a float, or raise a ``TypeError``/``ValueError`` that says how to fix it."""
    return checks.real(name, rho, low=0, hint="the radius of the ascent step: typical values are 0.01 to 0.5, "
                       "and rho=0 gives the base optimizer's plain step")


def _check_eps(eps) -> float:
    return checks.real("eps", eps, low=0, low_open=True,
                       hint="eps is added to the gradient norm of the ascent; keep the default 1e-12")


def _check_closure_loss(loss, which: str) -> Tensor:
    if not isinstance(loss, Tensor):
        raise TypeError(f"the closure's {which} call returned {type(loss).__name__} {loss!r}: a SAM closure must run "
                        "forward and backward and return the loss tensor, e.g. lambda: backward(loss_fn(model(x), y))")
    return loss


def _check_base_optimizer(base_optimizer) -> None:
    if isinstance(base_optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"base_optimizer must be an optimizer class, got an instance of {type(base_optimizer).__name__}; "
            "pass the class and its keyword arguments, e.g. SAM(params, torch.optim.SGD, rho=0.05, lr=0.1)"
        )
    if not (isinstance(base_optimizer, type) and issubclass(base_optimizer, torch.optim.Optimizer)):
        raise TypeError(
            f"base_optimizer must be a torch.optim.Optimizer subclass such as torch.optim.SGD, got {base_optimizer!r}"
        )
    if issubclass(base_optimizer, SAM):
        raise TypeError(f"base_optimizer is {base_optimizer.__name__}, itself a SAM optimizer: SAM inside SAM would "
                        "take four passes and perturb twice; pass the plain update, e.g. torch.optim.SGD, and set the "
                        "radius with rho=")
    if issubclass(base_optimizer, torch.optim.LBFGS):
        raise TypeError(f"base_optimizer {base_optimizer.__name__} re-evaluates its own closure several times per "
                        "step, which SAM's two fixed passes cannot give it: use a first-order optimizer such as "
                        "torch.optim.SGD or torch.optim.Adam")
    if issubclass(base_optimizer, torch.optim.SparseAdam):
        raise TypeError("base_optimizer SparseAdam takes sparse gradients only, and SAM's ascent needs dense ones: "
                        "use torch.optim.Adam (and dense gradients, e.g. nn.Embedding(sparse=False))")


def _check_params(params) -> list:
    """``params`` as a list: tensors or parameter-group dicts (not a module, a method or a single number)."""
    if isinstance(params, torch.nn.Module):
        raise TypeError(f"params must be the parameters to optimize, got the module {type(params).__name__} itself: "
                        "pass model.parameters()")
    if isinstance(params, Tensor):
        return [params]
    if callable(params) or isinstance(params, (str, bytes, dict)) or not hasattr(params, "__iter__"):
        raise TypeError(f"params must be an iterable of parameters or of parameter-group dicts, got "
                        f"{type(params).__name__}: pass model.parameters() (called, with its parentheses)")
    return list(params)


class SAM(torch.optim.Optimizer):
    """Sharpness-aware minimization wrapping a base optimizer class.

    Drop-in for the interface of ``davda54/sam``::

        opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)
        loss_fn(model(x), y).backward(); opt.first_step(zero_grad=True)
        loss_fn(model(x), y).backward(); opt.second_step(zero_grad=True)

    or ``loss = opt.step(closure)``, where ``closure`` runs forward and backward and returns
    the loss. Unlike ``davda54/sam``, ``step`` runs *both* passes itself (it zeroes the
    gradients first) and returns the loss at the real weights.

    ``relative=True``: the radius is ``rho`` times the norm of all perturbed weights (one norm, like the
    gradient's). Parameter groups take ``rho``, ``adaptive`` and ``perturb`` (default ``True``); a group with
    ``perturb=False`` is updated but never perturbed, which is how last-layer SAM is built
    (see :func:`samlib.optim.lsam_param_groups`). The ascent norm runs over perturbed groups only.

    Differences from ``davda54/sam`` that fix its reported bugs:

    * every perturbed weight is restored from a saved copy, also one that receives no gradient
      in the second pass (davda54 restores only weights whose ``grad`` is not ``None``);
    * a zero gradient gives no perturbation and no NaN;
    * ``state_dict()`` holds the base optimizer's state (momentum buffers) and no weight copies,
      and ``load_state_dict`` re-links the shared parameter groups;
    * BatchNorm policy: pass ``model=`` and its running statistics are updated by the first
      pass only (both passes normalise with batch statistics), see :func:`frozen_bn_stats`.

    Learning-rate schedulers attach to the SAM object itself.
    """

    def __init__(self, params, base_optimizer: type[torch.optim.Optimizer], rho: float = 0.05,
                 adaptive: bool = False, *, relative: bool = False, eps: float = 1e-12,
                 model: torch.nn.Module | None = None, **base_kwargs):
        _check_base_optimizer(base_optimizer)
        params = _check_params(params)
        if not params:
            raise ValueError("SAM got no parameters: pass model.parameters() or a non-empty list of parameter groups")
        if model is not None and not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be the torch.nn.Module being trained (or None), got {type(model).__name__}")
        for key, value in base_kwargs.items():  # the base optimizer checks signs; NaN and infinities pass it
            if isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isfinite(value):
                raise ValueError(f"{key} must be a finite number, got {value}: the base optimizer "
                                 f"{base_optimizer.__name__} would turn every weight into NaN")
        defaults = dict(rho=check_rho(rho), adaptive=checks.strict_bool("adaptive", adaptive), perturb=True,
                        **base_kwargs)
        self.eps = _check_eps(eps)
        self.relative = checks.strict_bool("relative", relative)
        super().__init__(params, defaults)
        self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self.model = model
        self._saved: dict[Tensor, Tensor] = {}  # weight -> its value before first_step
        self._ascended = False  # between first_step and second_step

    def add_param_group(self, param_group: dict) -> None:
        if not isinstance(param_group, dict):
            raise TypeError(f"a parameter group must be a dict such as {{'params': [...], 'lr': 0.1}}, got "
                            f"{type(param_group).__name__}")
        members = param_group.get("params")
        param_group["params"] = [members] if isinstance(members, Tensor) else _check_params(members)
        _check_group(param_group)
        if not hasattr(self, "base_optimizer"):  # called by Optimizer.__init__
            return super().add_param_group(param_group)
        for key in ("rho", "adaptive", "perturb"):
            param_group.setdefault(key, self.defaults[key])
        self.base_optimizer.add_param_group(param_group)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move every perturbed weight to its phantom value w + eps (saving w)."""
        checks.strict_bool("zero_grad", zero_grad)
        if self._ascended:
            raise RuntimeError("first_step() was called twice: call second_step() to restore the weights first")
        chosen = self._with_gradients("first_step()", "call loss.backward() before first_step(), or use step(closure)")
        if chosen:
            steps = ascent([p.grad for _, p in chosen], [g["rho"] for g, _ in chosen], params=[p for _, p in chosen],
                           adaptive=[g["adaptive"] for g, _ in chosen], relative=self.relative, eps=self.eps)
            for (_, p), e in zip(chosen, steps):
                self._saved[p] = p.detach().clone()
                p.add_(e)
        self._ascended = True
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore the real weights and apply the base optimizer with the phantom gradients."""
        checks.strict_bool("zero_grad", zero_grad)
        if not self._ascended:
            raise RuntimeError("second_step() without first_step(): the gradients are not taken at the phantom "
                               "weights, so this would be a plain base-optimizer step; call first_step() after the "
                               "first backward pass, or use step(closure)")
        if not self._has_gradients():
            self._restore()  # never leave the weights at the phantom point
            raise RuntimeError("second_step() found no gradient on any parameter: run the second forward and "
                               "backward pass (at the phantom weights that first_step() set) before second_step(); "
                               "the real weights are restored")
        self._restore()
        self._base_step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor:
        """One full SAM step; ``closure`` runs forward and backward and returns the loss.

        Returns the loss at the real weights (the closure's first value).
        """
        if closure is None:
            raise RuntimeError(
                "SAM.step needs a closure that runs forward + backward and returns the loss, "
                "e.g. opt.step(lambda: backward(loss_fn(model(x), y))); or call first_step() and second_step()"
            )
        if not callable(closure):
            raise TypeError(f"closure must be callable, got {type(closure).__name__}: pass a function that runs "
                            "forward and backward and returns the loss")
        if is_ddp(self.model):
            raise RuntimeError("SAM.step(closure) cannot choose what a DistributedDataParallel model all-reduces in "
                               "the ascent: use samlib.optim.sam_step(optimizer, compute_loss, "
                               "ascent_gradient='per_device' or 'synchronized')")
        closure = torch.enable_grad()(closure)
        return self.two_pass_step(lambda: self._first_closure_call(closure),
                                  lambda: _check_closure_loss(closure(), "second"), model=self.model)

    def two_pass_step(self, first_pass: Callable[[], Tensor], second_pass: Callable[[], object], *,
                      model: torch.nn.Module | None = None, ascend: Callable[[], bool] | None = None,
                      descend: Callable[[], bool] | None = None) -> Tensor:
        """SAM's two passes, the one sequence that :meth:`step` and :func:`samlib.optim.sam_step` both take:

        1. zero the gradients, then ``loss = first_pass()`` (forward and backward at the real weights);
        2. the ascent (:meth:`first_step`, which zeroes the gradients);
        3. ``second_pass()`` (forward and backward at the phantom weights), with ``model``'s BatchNorm running
           statistics frozen (:func:`frozen_bn_stats`); if it raises, the real weights are put back first;
        4. the descent (:meth:`second_step`): the real weights, updated with the phantom gradients.

        ``ascend`` and ``descend`` (no arguments; ``None``: always go on) are asked before steps 2 and 4; when one
        returns False the step is skipped: the weights stay at (or go back to) their real values, unchanged, and
        the gradients are zeroed (how :func:`~samlib.optim.sam_step` skips a mixed-precision overflow).
        Returns ``loss``, the first pass's value.
        """
        self.zero_grad()
        loss = first_pass()
        if ascend is not None and not ascend():
            self.zero_grad()
            return loss
        self.first_step(zero_grad=True)
        try:
            with frozen_bn_stats(model):
                second_pass()
        except BaseException:
            self._restore()  # never leave the weights at the phantom point
            raise
        if descend is None or descend():
            self.second_step()
        else:
            self._restore()
            self.zero_grad()
        return loss

    def _first_closure_call(self, closure: Callable[[], Tensor]) -> Tensor:
        """The closure's first call, which must leave a gradient on some parameter."""
        loss = _check_closure_loss(closure(), "first")
        if not self._has_gradients():
            raise RuntimeError("the closure produced no gradient: a SAM closure must run forward and backward (call "
                               "loss.backward() on a loss of these parameters) and return the loss, e.g. "
                               "lambda: backward(loss_fn(model(x), y))")
        return loss

    def _has_gradients(self) -> bool:
        return any(p.grad is not None for group in self.param_groups for p in group["params"])

    def _with_gradients(self, where: str, fix: str) -> list[tuple[dict, Tensor]]:
        """The (group, parameter) pairs of the perturbed groups that have a gradient; a ``RuntimeError`` if no
        parameter at all has one, or one is sparse."""
        chosen, found = [], False
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                found = True
                if grad.is_sparse:
                    raise RuntimeError(f"{where} got a sparse gradient (a parameter of shape {tuple(p.shape)}): "
                                       "SAM's ascent norm needs dense gradients; build the layer with dense "
                                       "gradients, e.g. nn.Embedding(..., sparse=False)")
                if group["perturb"]:
                    chosen.append((group, p))
        if not found:
            raise RuntimeError(f"{where} found no gradient on any parameter: nothing to take a step with; {fix}")
        return chosen

    @torch.no_grad()
    def _restore(self) -> None:
        """Put back the real weights that first_step saved."""
        for p, saved in self._saved.items():
            p.copy_(saved)
        self._saved.clear()
        self._ascended = False

    def _base_step(self) -> None:
        self.base_optimizer.step()
        self._opt_called = True  # tells LR schedulers that the optimizer stepped

    def state_dict(self) -> dict:
        """The base optimizer's state and the shared parameter groups (with rho, adaptive, perturb)."""
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        _check_state_fits(state_dict, self.param_groups)
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups
        for group in self.param_groups:
            if not {"rho", "adaptive", "perturb"} <= set(group):
                raise ValueError("state_dict is not a SAM/LSAM state (its parameter groups lack rho, adaptive and "
                                 "perturb): it was saved from another optimizer; load it into that optimizer")
            _check_group(group)


def _check_state_fits(state_dict, groups: list[dict]) -> None:
    """A ``ValueError`` unless ``state_dict`` (an optimizer's) has as many groups and parameters as ``groups``, and
    every saved per-parameter tensor (momentum, Adam's moments) has its parameter's shape."""
    if not (isinstance(state_dict, dict) and isinstance(state_dict.get("state"), dict)
            and isinstance(state_dict.get("param_groups"), list)):
        raise ValueError(f"state_dict must be what an optimizer's state_dict() returned (a dict with 'state' and "
                         f"'param_groups'), got {type(state_dict).__name__}")
    saved = state_dict["param_groups"]
    if len(saved) != len(groups):
        raise ValueError(f"state_dict has {len(saved)} parameter group(s) but this optimizer {len(groups)}: it was "
                         "saved from an optimizer of another model or grouping; load it into that one")
    for i, (old, group) in enumerate(zip(saved, groups)):
        if not isinstance(old, dict) or len(old.get("params", ())) != len(group["params"]):
            raise ValueError(f"state_dict's parameter group {i} holds {len(old.get('params', ()))} parameters but "
                             f"this optimizer's {len(group['params'])}: it was saved from another model")
        for index, p in zip(old["params"], group["params"]):
            for key, value in state_dict["state"].get(index, {}).items():
                if isinstance(value, Tensor) and value.ndim > 0 and value.shape != p.shape:
                    raise ValueError(f"state_dict does not fit these parameters: its {key!r} of parameter {index} "
                                     f"(group {i}) has shape {tuple(value.shape)}, the parameter {tuple(p.shape)}; it "
                                     "was saved from a model of another shape: load it into that model's optimizer")


def _check_group(group: dict) -> None:
    """The SAM options of a parameter group: rho a number >= 0, adaptive and perturb True/False; some parameters."""
    if not group.get("params"):
        raise ValueError("a parameter group has no parameters ({'params': []}): drop the empty group, or pass the "
                         "parameters it should hold")
    if "rho" in group:
        check_rho(group["rho"], "a parameter group's rho")
    for key in ("adaptive", "perturb"):
        if key in group:
            checks.strict_bool(f"a parameter group's {key}", group[key])


def backward(loss: Tensor) -> Tensor:
    """``loss.backward()`` that returns the loss, for one-line closures: ``lambda: backward(loss_fn(...))``."""
    loss.backward()
    return loss

