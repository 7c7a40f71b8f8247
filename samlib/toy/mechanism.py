"""The phantom decomposition applied to toy sweeps: per-run importance weights, their inequality (Gini),
the learning-rate scaling over mini-batches and where the weight sits (by feature contribution).

Each run is decomposed on its own training data, at its own radius (rho = 0 for SGD, so there
lambda~ = lambda), through :func:`samlib.toy.model.to_module` and :func:`samlib.decompose.decompose`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .. import checks
from ..decompose import Decomposition, ablation_loss, binned_median, decompose, feature_contributions, gini, head_loss
from .data import ToyData
from .model import to_module
from .sweep import SweepResult, training_data

__all__ = ["Schematic", "schematic", "toy_inputs", "run_decomposition", "reconstruction_gap", "gini_table",
           "equal_loss_steps", "matched_loss_gini", "paired_gini", "lr_scaling_over_batches", "weight_by_contribution"]

FEATURES = ("easy", "hard")


@dataclass(frozen=True)
class Schematic:
    """One LSAM phantom step on made-up numbers (:func:`schematic`): the head ``v``, the ascent ``eps`` and the
    phantom head ``v_tilde`` (each (2,): easy, hard), every example's signed features ``y * Phi`` (n, 2), and its
    real and phantom importance weights ``lam``, ``lam_tilde`` (n,)."""

    v: torch.Tensor
    eps: torch.Tensor
    v_tilde: torch.Tensor
    signed_features: torch.Tensor
    lam: torch.Tensor
    lam_tilde: torch.Tensor


def schematic(rho: float = 1.0, n: int = 300, seed: int = 0) -> Schematic:
    """The mechanism before any data: a head that already relies on the easy feature (v = (2, 0.5)), ``n``
    examples whose easy feature always agrees with the label (y Phi_easy uniform on [0.2, 1]) and whose hard
    feature, still poorly learned, barely does (y Phi_hard normal, mean 0.05, sd 0.4), and LSAM's phantom head at radius
    ``rho`` for the logistic loss: eps = rho grad_v L / ||grad_v L||, lambda = sigma(-y f)."""
    rho = checks.real("rho", rho, low=0.0, low_open=True)
    n = checks.int_at_least("n", n, 2)
    seed = checks.seed("seed", seed)
    generator = torch.Generator().manual_seed(seed)
    signed = torch.stack([0.2 + 0.8 * torch.rand(n, generator=generator, dtype=torch.float64),
                          0.05 + 0.4 * torch.randn(n, generator=generator, dtype=torch.float64)], dim=1)
    v = torch.tensor([2.0, 0.5], dtype=torch.float64)
    lam = torch.sigmoid(-signed @ v)
    grad = -(lam[:, None] * signed).mean(dim=0)
    eps = rho * grad / grad.norm()
    return Schematic(v, eps, v + eps, signed, lam, torch.sigmoid(-signed @ (v + eps)))


def toy_inputs(data: ToyData) -> torch.Tensor:
    """The module input [x_easy, x_hard] (N, 3) of :func:`samlib.toy.model.to_module`."""
    return torch.cat([data.x_easy, data.x_hard], dim=1)


@torch.no_grad()
def _run_features(result: SweepResult, run: int, step: int | None):
    """Run ``run``'s features (N, 2) on its training data, the labels (N,) and its head, after ``step`` steps."""
    data = training_data([result.runs[run]], result.settings)[0]
    model = to_module(result.params_at(step), run)
    return model.features(toy_inputs(data)), data.y, model.head


def run_decomposition(result: SweepResult, run: int, index: torch.Tensor | None = None, step: int | None = None
                      ) -> Decomposition:
    """Run ``run`` decomposed on its training data (or the points ``index`` of it), at its parameters after
    ``step`` steps (a snapshot of the sweep; None: the final ones)."""
    phi, y, head = _run_features(result, run, step)
    if index is not None:
        phi, y = phi[index], y[index]
    return decompose(phi, y, head, result.runs[run].rho, "logistic")


def reconstruction_gap(result: SweepResult, run: int, step: int | None = None) -> float:
    """Largest |difference| between the recombined parts (lambda~, v~) and autograd's gradient of the loss at
    the phantom head, over every parameter of run ``run`` on its training data: 0 up to rounding."""
    d = run_decomposition(result, run, step=step)
    x = toy_inputs(training_data([result.runs[run]], result.settings)[0])
    model, phantom = to_module(result.params_at(step), run), to_module(result.params_at(step), run)
    with torch.no_grad():
        phantom.head.weight.copy_(d.phantom_head[0])
    autograd = torch.autograd.grad(head_loss(phantom(x), d.y, d.loss), list(phantom.parameters()))
    parts = ablation_loss(model.features(x), d.y, model.head, d.phantom_head, d.loss, phantom_weights=True,
                          phantom_chain=True)
    recombined = torch.autograd.grad(parts, list(model.parameters()))
    return max((a - b).abs().max().item() for a, b in zip(autograd, recombined))


def _columns(result: SweepResult, run: int) -> dict:
    r = result.runs[run]
    return {"optimizer": r.optimizer, "rho": r.rho, "turns": r.turns, "seed": r.seed}


def gini_table(result: SweepResult, steps: list[int | None] = (None,), runs: list[int] | None = None) -> pd.DataFrame:
    """Per run (all, or the indices ``runs``) and step (a snapshot; None: the end), on the run's whole training
    set: its mean training ``loss``, the Gini coefficient of the real importance weights lambda (``gini_real``)
    and of the phantom ones lambda~ (``gini_phantom``), and the mean of each."""
    rows = []
    for step in steps:
        for i in (range(len(result.runs)) if runs is None else runs):
            d = run_decomposition(result, i, step=step)
            rows.append({"run": i, **_columns(result, i), "step": step or result.settings.steps,
                         "loss": d.mean_loss, "gini_real": gini(d.weights), "gini_phantom": gini(d.phantom_weights),
                         "mean_real": d.weights.mean().item(), "mean_phantom": d.phantom_weights.mean().item()})
    return pd.DataFrame(rows)


def equal_loss_steps(table: pd.DataFrame, run_a: int, run_b: int, near: float) -> tuple[int, int]:
    """Steps (a, b) of two runs in a :func:`gini_table` whose training losses are closest to each other (in log
    scale), among run b's snapshots with a loss within a factor of 10 of ``near``."""
    a, b = (table[table.run == r] for r in (run_a, run_b))
    b = b[(b.loss > near / 10) & (b.loss < near * 10)]
    if a.empty or b.empty:
        raise ValueError(f"no snapshots of runs {run_a} and {run_b} near a loss of {near:g}")
    gap = np.abs(np.log(a.loss.to_numpy())[:, None] - np.log(b.loss.to_numpy())[None, :])
    i, j = np.unravel_index(np.argmin(gap), gap.shape)
    return int(a.step.iloc[i]), int(b.step.iloc[j])


def matched_loss_gini(table: pd.DataFrame, rho: float) -> pd.DataFrame:
    """LSAM (at ``rho``) against SGD at the same training loss: for each LSAM snapshot of each (turns, seed),
    its loss, the Gini of its lambda and lambda~, and the Gini of SGD's lambda interpolated (in log loss) along
    the same (turns, seed)'s SGD snapshots at that loss (NaN outside SGD's range of losses)."""
    rows = []
    for (turns, seed), g in table.groupby(["turns", "seed"]):
        sgd = g[g.optimizer == "SGD"].sort_values("loss")
        log_loss = np.log(sgd.loss.to_numpy())
        for _, r in g[(g.optimizer == "LSAM") & (g.rho == rho)].iterrows():
            x = np.log(r.loss)
            inside = log_loss.size > 1 and log_loss[0] <= x <= log_loss[-1]
            rows.append({"turns": turns, "seed": seed, "step": r.step, "loss": r.loss, "lsam_real": r.gini_real,
                         "lsam_phantom": r.gini_phantom,
                         "sgd_same_loss": float(np.interp(x, log_loss, sgd.gini_real)) if inside else np.nan})
    return pd.DataFrame(rows)


def lr_scaling_over_batches(result: SweepResult, runs: list[int], batches: int = 100, batch_size: int = 50,
                            seed: int = 0, step: int | None = None) -> pd.DataFrame:
    """v~_k / v_k of each run in ``runs`` on ``batches`` random mini-batches of its training data (the
    same batch indices for every run): one row per (run, batch) with columns ``easy`` and ``hard``."""
    checks.positive_int("batches", batches, "the number of mini-batches to draw, e.g. 100")
    checks.positive_int("batch_size", batch_size, "e.g. batch_size=50")
    g = torch.Generator().manual_seed(checks.seed("seed", seed))
    picks = [torch.randperm(result.settings.n, generator=g)[:batch_size] for _ in range(batches)]
    rows = []
    for i in runs:
        phi, y, head = _run_features(result, i, step)
        for b, index in enumerate(picks):
            scale = decompose(phi[index], y[index], head, result.runs[i].rho, "logistic").lr_scaling
            rows.append({**_columns(result, i), "batch": b, **dict(zip(FEATURES, scale.tolist()))})
    return pd.DataFrame(rows)


def weight_by_contribution(result: SweepResult, run: int, bins: int = 6, phantom: bool = True,
                           step: int | None = None) -> dict:
    """Median importance weight (lambda~ if ``phantom`` else lambda) of run ``run``'s training points over a
    bins x bins grid of their feature contributions y v_easy Phi_easy (rows) and y v_hard Phi_hard (columns),
    with quantile edges. Returns {"easy_edges", "hard_edges", "median" (bins, bins), "count" (bins, bins),
    "row_medians" (each easy row's median weight over its filled bins), "easy_span" (log10 of the lowest easy row's
    median weight over the top row's), "row_spread" (log10 of the largest over the smallest filled bin within a row,
    at most over the rows), "hard_max" (largest |hard contribution|), "easy_min" (smallest easy contribution)}."""
    d = run_decomposition(result, run, step=step)
    contrib = feature_contributions(d.features, d.y, d.head, d.loss)
    weights = d.phantom_weights if phantom else d.weights
    easy, hard, median, count = binned_median(contrib[:, 0], contrib[:, 1], weights, bins)
    rows = np.nanmedian(median, axis=1)
    return {"easy_edges": easy, "hard_edges": hard, "median": median, "count": count, "row_medians": rows,
            "easy_span": float(np.log10(rows[0] / rows[-1])),  # orders of magnitude from the lowest to the top row
            "row_spread": float(np.nanmax(np.log10(np.nanmax(median, axis=1) / np.nanmin(median, axis=1)))),
            "hard_max": float(contrib[:, 1].abs().max()), "easy_min": float(contrib[:, 0].min())}


def paired_gini(table: pd.DataFrame, rho: float, step: int) -> pd.DataFrame:
    """SGD's Gini of lambda beside LSAM's (at ``rho``) Gini of lambda and of lambda~, one row per (turns, seed),
    at one ``step`` of a :func:`gini_table`."""
    at = table[table.step == step]
    sgd = at[at.optimizer == "SGD"].set_index(["turns", "seed"]).gini_real
    lsam = at[(at.optimizer == "LSAM") & (at.rho == rho)].set_index(["turns", "seed"])
    return pd.DataFrame({"SGD λ": sgd, "LSAM λ (real)": lsam.gini_real, "LSAM λ̃ (phantom)": lsam.gini_phantom})
