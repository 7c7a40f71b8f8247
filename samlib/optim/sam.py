"""SAM: sharpness-aware minimization (Foret et al., 2021) around any torch optimizer.

One SAM step on a batch with loss L and weights w:

    g      = grad L(w)
    eps    = rho * g / ||g||            (the ascent step; ||.|| is the L2 norm over all perturbed weights)
    w~     = w + eps                    (the *phantom* weights)
    w     <- base_update(w, grad L(w~)) (e.g. SGD: w - lr * grad L(w~))

With ``adaptive=True`` the ascent is ASAM's element-wise scaled one (Kwon et al., 2021),
``eps = rho * w**2 * g / || |w| * g ||``, as in the widely used ``davda54/sam``.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch import Tensor

from .ascent import ascent
from .batchnorm import frozen_bn_stats

__all__ = ["SAM", "backward", "check_rho"]


def check_rho(rho) -> float:
    """Return ``rho`` as a float, or raise a ``TypeError``/``ValueError`` that says how to fix it."""
    if isinstance(rho, bool) or not isinstance(rho, numbers.Real):
        raise TypeError(f"rho must be a real number, got {type(rho).__name__} {rho!r}; pass e.g. rho=0.05")
    if not math.isfinite(rho) or rho < 0:
        raise ValueError(
            f"rho must be a finite number >= 0 (the radius of the ascent step), got {rho}; "
            "typical values are 0.01 to 0.5, and rho=0 gives the base optimizer's plain step"
        )
    return float(rho)


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


class SAM(torch.optim.Optimizer):
    """Sharpness-aware minimization wrapping a base optimizer class.

    Drop-in for the interface of ``davda54/sam``::

        opt = SAM(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9)
        loss_fn(model(x), y).backward(); opt.first_step(zero_grad=True)
        loss_fn(model(x), y).backward(); opt.second_step(zero_grad=True)

    or ``loss = opt.step(closure)``, where ``closure`` runs forward and backward and returns
    the loss. Unlike ``davda54/sam``, ``step`` runs *both* passes itself (it zeroes the
    gradients first) and returns the loss at the real weights.

    Parameter groups take ``rho``, ``adaptive`` and ``perturb`` (default ``True``); a group with
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
                 adaptive: bool = False, *, eps: float = 1e-12, model: torch.nn.Module | None = None,
                 **base_kwargs):
        _check_base_optimizer(base_optimizer)
        params = list(params)
        if not params:
            raise ValueError("SAM got no parameters: pass model.parameters() or a non-empty list of parameter groups")
        defaults = dict(rho=check_rho(rho), adaptive=bool(adaptive), perturb=True, **base_kwargs)
        super().__init__(params, defaults)
        self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self.eps = eps
        self.model = model
        self._saved: dict[Tensor, Tensor] = {}  # weight -> its value before first_step

    def add_param_group(self, param_group: dict) -> None:
        if "rho" in param_group:
            check_rho(param_group["rho"])
        if not hasattr(self, "base_optimizer"):  # called by Optimizer.__init__
            return super().add_param_group(param_group)
        for key in ("rho", "adaptive", "perturb"):
            param_group.setdefault(key, self.defaults[key])
        self.base_optimizer.add_param_group(param_group)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move every perturbed weight to its phantom value w + eps (saving w)."""
        if self._saved:
            raise RuntimeError("first_step() was called twice: call second_step() to restore the weights first")
        chosen = [(g, p) for g in self.param_groups if g["perturb"] for p in g["params"] if p.grad is not None]
        if chosen:
            steps = ascent([p.grad for _, p in chosen], [g["rho"] for g, _ in chosen], params=[p for _, p in chosen],
                           adaptive=[g["adaptive"] for g, _ in chosen], eps=self.eps)
            for (_, p), e in zip(chosen, steps):
                self._saved[p] = p.detach().clone()
                p.add_(e)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore the real weights and apply the base optimizer with the phantom gradients."""
        for p, saved in self._saved.items():
            p.copy_(saved)
        self._saved.clear()
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
        closure = torch.enable_grad()(closure)
        self.zero_grad()
        loss = closure()
        self.first_step(zero_grad=True)
        with frozen_bn_stats(self.model):
            closure()
        self.second_step()
        return loss

    def _base_step(self) -> None:
        self.base_optimizer.step()
        self._opt_called = True  # tells LR schedulers that the optimizer stepped

    def state_dict(self) -> dict:
        """The base optimizer's state and the shared parameter groups (with rho, adaptive, perturb)."""
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups
        for group in self.param_groups:
            check_rho(group["rho"])


def backward(loss: Tensor) -> Tensor:
    """``loss.backward()`` that returns the loss, for one-line closures: ``lambda: backward(loss_fn(...))``."""
    loss.backward()
    return loss

