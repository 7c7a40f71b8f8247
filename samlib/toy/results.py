"""What a toy sweep learned: hard- and easy-feature probe errors, summaries over seeds, phantom ratios.

The **hard-feature probing error** of a run: freeze its representation (Phi_easy, Phi_hard), train a
linear probe (``samlib.probe.linear_probe``) on decorrelated toy data to predict the *hard* label,
and report its error on fresh decorrelated data. 0 means the hard feature is fully learned, 0.5 means
not at all. The probe sets depend only on the run's complexity and seed (drawn with seeds
``PROBE_SEED + seed`` and ``PROBE_SEED + 1000 + seed``), so every optimizer is probed on the same points.
"""
from __future__ import annotations

import pandas as pd
import torch

from .. import checks
from ..probe import linear_probe
from .data import make_toy
from .model import features, logits, select_runs
from .sweep import SweepResult, losses_and_logits, training_data

__all__ = ["PROBE_SEED", "CHAOTIC_FROM", "chaotic", "probe_errors", "summarize", "best_rho", "phantom_ratios",
           "final_losses", "lr_factors", "train_errors", "probe_set", "decision_follows"]

PROBE_SEED = 10_000
CHAOTIC_FROM = {"LSAM": 2.0, "LR-only": 1.0, "SAM": 0.1}
"""The radius from which toy runs of the book's settings are chaotic (measured; ``.ci/check_kernels``): runs at
or above it end elsewhere when one CPU kernel rounds a last bit differently (torch's AVX2 kernels vs its scalar
ones, MKL's AVX2 vs its compatible path, even in float64). LR-only starts at 1: under the other code paths of
``.ci/check_kernels`` one of its runs at rho = 1 ended 6e-4 apart in its weights and a probe point apart, while
LSAM's runs at rho = 1 stayed within 3e-8. SGD and IW-only (whose chain rule keeps the real head) are not chaotic.
The chapters print these runs apart, and the notebook checks do not compare their digits."""


def chaotic(frame: pd.DataFrame) -> pd.Series:
    """Per row of ``frame`` (columns optimizer and rho): whether its run is in the chaotic range
    (:data:`CHAOTIC_FROM`)."""
    start = frame.optimizer.map(CHAOTIC_FROM)
    return start.notna() & (frame.rho >= start.fillna(float("inf")))


def _run_columns(result: SweepResult) -> pd.DataFrame:
    return pd.DataFrame([{"optimizer": r.optimizer, "rho": r.rho, "turns": r.turns, "seed": r.seed,
                          "hard_only": r.hard_only} for r in result.runs])


def probe_set(result: SweepResult, run: int, n_probe: int = 2000, fit: bool = False):
    """The decorrelated points on which run ``run`` of ``result`` is probed: the probe's test set, or (``fit``) the
    set it is fit on (:func:`probe_errors`)."""
    spec = result.runs[run]
    return make_toy(n_probe, spec.turns, seed=PROBE_SEED + (0 if fit else 1000) + spec.seed, decorrelated=True,
                    easy_scale=result.settings.easy_scale, noise=result.settings.noise, dtype=result.settings.dtype)


@torch.no_grad()
def decision_follows(result: SweepResult, runs: list[int], n_probe: int = 2000) -> pd.DataFrame:
    """Which input each run's own classifier follows: on its decorrelated probe test points (where the easy and
    the hard label disagree half the time), the share whose predicted sign equals the easy label
    (``follows_easy``) and the hard label (``follows_hard``). One row per run of ``runs``."""
    rows = []
    for i in runs:
        data = probe_set(result, i, n_probe)
        f = logits(select_runs(result.params, i), data.x_easy[None], data.x_hard[None])[0]
        rows.append({"follows_easy": (torch.sign(f) == data.y_easy).double().mean().item(),
                     "follows_hard": (torch.sign(f) == data.y_hard).double().mean().item()})
    return pd.concat([_run_columns(result).iloc[list(runs)].reset_index(drop=True), pd.DataFrame(rows)], axis=1)


@torch.no_grad()
def probe_errors(result: SweepResult, n_probe: int = 2000, step: int | None = None, runs=None) -> pd.DataFrame:
    """One row per run: ``hard_error`` (probe for the hard label) and ``easy_error`` (for the easy label), of the
    final parameters or of those after ``step`` steps (:meth:`SweepResult.params_at`); ``runs``: the indices of
    the runs to probe (default: all)."""
    rows, probe_sets = [], {}
    every = result.params_at(step)
    runs = range(len(result.runs)) if runs is None else [int(i) for i in runs]
    for i in runs:
        run = result.runs[i]
        if (run.turns, run.seed) not in probe_sets:  # runs of one complexity and seed share their probe sets
            probe_sets[run.turns, run.seed] = [probe_set(result, i, n_probe, fit=True), probe_set(result, i, n_probe)]
        splits = probe_sets[run.turns, run.seed]
        params = select_runs(every, i)
        phi = [features(params, d.x_easy[None], d.x_hard[None])[0] for d in splits]
        rows.append({f"{name}_error": linear_probe(phi[0], getattr(splits[0], f"y_{name}"),
                                                   phi[1], getattr(splits[1], f"y_{name}")).test_error
                     for name in ("hard", "easy")})
    return pd.concat([_run_columns(result).iloc[list(runs)].reset_index(drop=True), pd.DataFrame(rows)], axis=1)


@torch.no_grad()
def train_errors(result: SweepResult) -> pd.DataFrame:
    """One row per run: ``train_loss`` and ``train_error`` of the final real model on its whole training set."""
    rows = []
    for i, data in enumerate(training_data(result.runs, result.settings)):
        batch = (data.x_easy[None], data.x_hard[None], data.y[None])
        loss, f = losses_and_logits(select_runs(result.params, i), batch, result.settings)
        rows.append({"train_loss": loss.item(), "train_error": (data.y * f[0] <= 0).double().mean().item()})
    return pd.DataFrame(rows)


def summarize(frame: pd.DataFrame, value: str = "hard_error", by=("optimizer", "rho", "turns")) -> pd.DataFrame:
    """Mean, standard deviation, median, quartiles (q25, q75), worst and count of ``value`` over seeds, per
    ``by`` group."""
    quartiles = {"q25": lambda v: v.quantile(0.25), "q75": lambda v: v.quantile(0.75)}
    return frame.groupby(list(by))[value].agg(["mean", "std", "median", *quartiles.items(), "max", "count"]
                                              ).reset_index()


def best_rho(summary: pd.DataFrame, optimizer: str, statistic: str = "median") -> float:
    """The radius of ``optimizer`` whose ``statistic`` over seeds ("median" or "mean"), averaged over the
    complexities, is lowest (``summary`` from :func:`summarize`)."""
    checks.choice("statistic", statistic, ("median", "mean"))
    rows = summary[summary.optimizer == optimizer]
    if rows.empty:
        raise ValueError(f"no {optimizer} rows in the summary; it holds {sorted(summary.optimizer.unique())}")
    return float(rows.groupby("rho")[statistic].mean().idxmin())


def phantom_ratios(result: SweepResult, skip: int = 1) -> pd.DataFrame:
    """Per run, the median over the logged steps (after the first ``skip``) of the real ratio
    |v_hard| / |v_easy| and of the phantom ratio v~_hard / v~_easy, each phantom weight oriented by
    the sign of its real weight (so the ratio turns negative if the perturbation flips v_easy's sign)."""
    v, vp = result.history["v"][skip:], result.history["v_phantom"][skip:]  # (T, R, 2)
    oriented = vp * torch.sign(v)
    real = v[..., 1].abs() / v[..., 0].abs().clamp_min(1e-12)
    phantom = oriented[..., 1] / torch.where(oriented[..., 0].abs() < 1e-12, 1e-12, oriented[..., 0])
    return _run_columns(result).assign(real_ratio=real.median(dim=0).values.tolist(),
                                       phantom_ratio=phantom.median(dim=0).values.tolist())


def final_losses(result: SweepResult) -> pd.DataFrame:
    """Per run, the last logged training loss and error and the norm of the head ||v||."""
    h = result.history
    return _run_columns(result).assign(loss=h["loss"][-1].tolist(), train_error=h["error"][-1].tolist(),
                                       head_norm=h["v"][-1].norm(dim=-1).tolist())


def lr_factors(result: SweepResult, run: int) -> torch.Tensor:
    """LSAM's learning-rate scaling of run ``run`` at every logged step: |v~_k / v_k| for the easy and the hard
    feature (T, 2); 1 means no scaling (SGD)."""
    v, phantom = result.history["v"][:, run], result.history["v_phantom"][:, run]
    return (phantom / v.where(v != 0, 1e-300)).abs()
