"""The toy's theory regimes (samlib.toy.regimes) and the sweep options they add, and learning-rate scaling along
directions of feature space (samlib.decompose.lr_scaling_along, samlib.experiments.lr_scaling)."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from samlib.decompose import lr_scaling_along, phantom_head
from samlib.probe import linear_probe
from samlib.toy import regimes, study
from samlib.toy.data import make_toy
from samlib.toy.model import init_params, logits, to_module
from samlib.toy.results import lr_factors, probe_errors
from samlib.toy.sweep import Run, ToySettings, grid, initial_params, sweep_step, train_sweep, training_data

SMALL = ToySettings(n=60, hidden=8, steps=40, batch_size=20, log_every=10)


# --- the sweep's two new settings ------------------------------------------------------------------------------


def test_init_scale_multiplies_every_initial_weight_and_step_zero_reads_them():
    runs = grid({"SGD": [0.0]}, [0.5], [3, 4])
    scaled = initial_params(runs, replace(SMALL, init_scale=0.1))
    default = init_params([3, 4], SMALL.hidden, SMALL.dtype)
    for name, value in default.items():
        torch.testing.assert_close(scaled[name], 0.1 * value, rtol=0, atol=1e-15)
    result = train_sweep(runs, replace(SMALL, init_scale=0.1), progress=False)
    for name, value in result.params_at(0).items():
        torch.testing.assert_close(value, scaled[name], rtol=0, atol=0)


@pytest.mark.parametrize("optimizer", ["LSAM", "SAM"])
def test_an_ascent_on_the_whole_batch_is_the_default(optimizer):
    runs = grid({"SGD": [0.0], optimizer: [0.3]}, [0.5], [0, 1])
    default = train_sweep(runs, SMALL, progress=False)
    whole = train_sweep(runs, replace(SMALL, ascent_batch=SMALL.batch_size), progress=False)
    for name in default.params:
        assert torch.equal(default.params[name], whole.params[name]), name


def _hand_step(params, data, m, rho, perturb_all, lr):
    """One m-SAM step from rest by hand on module copies: for each group of m consecutive examples, the ascent from
    the group's mean loss (the head alone, or everything) and the group's gradient at its phantom point; the update
    p - lr * (mean of the groups' gradients)."""
    model = to_module(params, 0).double()
    x = torch.cat([data.x_easy, data.x_hard], dim=1)
    loss = lambda net, rows: F.softplus(-data.y[rows] * net(x[rows])[:, 0]).mean()  # noqa: E731
    total = [torch.zeros_like(p) for p in model.parameters()]
    for start in range(0, len(x), m):
        group, copy = slice(start, start + m), to_module(params, 0).double()
        perturbed = list(copy.parameters()) if perturb_all else [copy.head.weight]
        grads = torch.autograd.grad(loss(copy, group), perturbed)
        norm = torch.sqrt(sum(g.square().sum() for g in grads))
        with torch.no_grad():
            for p, g in zip(perturbed, grads):
                p.add_(rho * g / norm)
        for t, g in zip(total, torch.autograd.grad(loss(copy, group), list(copy.parameters()))):
            t += g / (len(x) // m)
    with torch.no_grad():
        for p, g in zip(model.parameters(), total):
            p.sub_(lr * g)
    return model


@pytest.mark.parametrize("optimizer, rho", [("LSAM", 0.3), ("SAM", 0.3), ("SGD", 0.0)])
def test_an_m_sam_step_equals_a_hand_computed_one(optimizer, rho):
    data = make_toy(30, 0.5, seed=1, dtype=torch.float64)
    params = init_params([0], hidden=6, dtype=torch.float64)
    expected = _hand_step(params, data, 5, rho, optimizer == "SAM", lr=0.1)
    buffers = {k: torch.zeros_like(p) for k, p in params.items()}
    settings = ToySettings(n=30, hidden=6, lr=0.1, momentum=0.9, batch_size=30, ascent_batch=5)
    sweep_step(params, buffers, (data.x_easy[None], data.x_hard[None], data.y[None]),
               torch.tensor([rho], dtype=torch.float64), torch.tensor([float(optimizer == "SAM")],
                                                                       dtype=torch.float64), settings)
    for (name, a), b in zip(expected.named_parameters(), to_module(params, 0).parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12, msg=name)
    whole = _hand_step(init_params([0], hidden=6, dtype=torch.float64), data, 30, rho, optimizer == "SAM", lr=0.1)
    assert torch.allclose(whole.head.weight, expected.head.weight) == (optimizer == "SGD"), \
        "the groups change a SAM step and leave SGD's alone"


@pytest.mark.parametrize("relative", [False, True])
def test_lsams_one_pass_m_sam_equals_its_two_pass_copies(relative):
    """LSAM's m-SAM takes one pass when the sweep has no SAM run; with a SAM run in the sweep every run goes
    through the copies of the two-pass path. Both give LSAM the same steps."""
    settings = replace(SMALL, ascent_batch=5, relative_rho=relative)
    lsam = grid({"SGD": [0.0], "LSAM": [0.3]}, [0.5], [0, 1])
    alone = train_sweep(lsam, settings, progress=False)
    mixed = train_sweep(lsam + [Run("SAM", 0.05, 0.5, 0)], settings, progress=False)
    for name, value in alone.params.items():
        torch.testing.assert_close(mixed.params[name][:len(lsam)], value, rtol=1e-9, atol=1e-12, msg=name)


def test_m_sam_refuses_the_ablations():
    runs = grid({"SGD": [0.0], "IW-only": [0.3]}, [0.5], [0])
    with pytest.raises(ValueError, match="ablations take one ascent on the whole batch; got ascent_batch=10"):
        train_sweep(runs, replace(SMALL, ascent_batch=10), progress=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"init_scale": 0.0}, "init_scale must be"), ({"init_scale": float("nan")}, "init_scale must be"),
    ({"init_scale": -0.1}, "init_scale must be"), ({"ascent_batch": 0}, "ascent_batch"),
    ({"ascent_batch": 21}, "ascent_batch must be None .* or divide the batch size 20 into equal groups, got 21"),
    ({"ascent_batch": 3}, "divide the batch size 20"), ({"ascent_batch": True}, "ascent_batch"),
    ({"ascent_batch": 2.5}, "ascent_batch")])
def test_bad_regime_settings_are_refused_by_name(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        replace(SMALL, **kwargs)


# --- the reads: trajectories, matched loss ----------------------------------------------------------------------


def _brute_loss(result, step):
    """Each run's mean logistic loss on its whole training set after ``step`` steps, one run at a time."""
    out = []
    for i, data in enumerate(training_data(result.runs, result.settings)):
        params = {k: v[i:i + 1] for k, v in result.params_at(step).items()}
        f = logits(params, data.x_easy[None], data.x_hard[None])[0]
        out.append(F.softplus(-data.y * f).mean().item())
    return np.array(out)


def test_the_matched_reads_are_the_first_snapshot_below_each_level(monkeypatch):
    monkeypatch.setattr(regimes, "LOSS_LEVELS", (0.3, 1e-300))  # the second is never reached
    monkeypatch.setattr(regimes, "TRAJECTORY", (0, 20, 40))
    runs = grid({"SGD": [0.0], "LSAM": [0.2]}, [0.5], [0, 1])
    settings = replace(SMALL, steps=40)
    result = train_sweep(runs, settings, progress=False, snapshots=(5, 10, 15, 20, 25, 30, 35))
    reads = regimes.train_reads(result)
    steps = [0, 5, 10, 15, 20, 25, 30, 35, 40]
    losses = np.stack([_brute_loss(result, s) for s in steps])
    for i, run in enumerate(runs):
        mine = reads[(reads.seed == run.seed) & (reads.optimizer == run.optimizer)].set_index("read")
        below = np.flatnonzero(losses[:, i] < 0.3)
        expected = steps[below[0]] if len(below) else math.nan
        assert mine.loc["loss<0.3", "step"] == pytest.approx(expected, nan_ok=True)
        assert math.isnan(mine.loc["loss<1e-300", "step"]) and math.isnan(mine.loc["loss<1e-300", "hard_error"])
        assert list(mine.loc["trajectory", "step"]) == [0, 20, 40]
        if len(below):
            step = int(expected)
            probe = probe_errors(result, step=step, runs=[i]).iloc[0]
            assert mine.loc["loss<0.3", "hard_error"] == probe.hard_error
            assert mine.loc["loss<0.3", "train_loss"] == pytest.approx(losses[below[0], i], rel=1e-12)
    final = reads[reads.read == "final"]
    assert (final.step == 40).all() and len(final) == len(runs)


def test_probe_errors_at_a_step_equal_a_sweep_stopped_there():
    runs = grid({"SGD": [0.0], "LSAM": [0.2]}, [0.5], [0])
    long = train_sweep(runs, SMALL, progress=False, snapshots=(20,))
    short = train_sweep(runs, replace(SMALL, steps=20), progress=False)
    pd.testing.assert_frame_equal(probe_errors(long, step=20), probe_errors(short))
    pd.testing.assert_frame_equal(probe_errors(long, runs=[1]), probe_errors(long).iloc[[1]].reset_index(drop=True))


def _frame(rows):
    return pd.DataFrame(rows, columns=["regime", "seed_set", "optimizer", "rho", "turns", "seed", "read", "step",
                                       "hard_error", "train_error"])


def test_a_run_that_never_reaches_a_read_leaves_with_its_sgd_twin():
    rows = []
    for seed in range(12):
        rows += [("r", "held-out", "SGD", 0.0, 1.0, seed, "fit", 10.0, 0.4, 0.0),
                 ("r", "held-out", "LSAM", 0.1, 1.0, seed, "fit", 20.0 if seed else math.nan,
                  0.2 if seed else math.nan, 0.0)]
    table = regimes.regime_table(_frame(rows), "fit")
    row = table.loc[("r", "held-out", "LSAM", 0.1, 1.0)]
    assert row.pairs == 11 and row["median ratio"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="read must be one of"):
        regimes.regime_table(_frame(rows), "trajectory")


def _tuning(errors):
    """Tuning rows: per LSAM/SAM radius, (median hard error, train error) on every complexity; SGD at 0.4."""
    rows = []
    for seed in range(10):
        for turns in (0.5, 1.0):
            rows.append(("r", "tuning", "SGD", 0.0, turns, seed, "final", 3000.0, 0.4, 0.0))
            for (optimizer, rho), (hard, train) in errors.items():
                rows.append(("r", "tuning", optimizer, rho, turns, seed, "final", 3000.0, hard, train))
    return _frame(rows)


def test_the_radius_is_the_best_one_that_fits_else_the_smallest():
    frame = _tuning({("LSAM", 0.1): (0.3, 0.0), ("LSAM", 0.2): (0.1, 0.2), ("LSAM", 0.4): (0.35, 0.005),
                     ("SAM", 0.01): (0.3, 0.3), ("SAM", 0.02): (0.1, 0.4)})
    assert regimes.chosen_radii(frame, "r") == {"LSAM": 0.1, "SAM": 0.01}


def test_a_regime_runs_one_seed_set_at_a_time_and_resumes_where_it_stopped(monkeypatch, tmp_path):
    """A tiny regime end to end: the tuning seeds, then the held-out seeds at the radii chosen on them, each seed set
    written as it ends; a second run trains nothing, and one stopped after the tuning seeds trains only the rest."""
    tiny = regimes._regime("tiny", replace(SMALL, init_scale=0.5))
    monkeypatch.setattr(regimes, "REGIMES", {"tiny": replace(tiny, turns=(0.5,))})
    monkeypatch.setattr(regimes, "SEED_SETS", {"tuning": (0, 1), "held-out": (600,)})
    monkeypatch.setattr(regimes, "TRAJECTORY", (0, 20, 40))
    monkeypatch.setattr(regimes, "SNAPSHOTS", (10, 20, 30))
    monkeypatch.setattr(regimes, "ROWS", replace(regimes.ROWS, path=tmp_path / "regimes.csv"))
    assert regimes.run_regime("tiny", tmp_path / "checkpoints", progress=False) == ["tuning", "held-out"]
    rows = regimes.ROWS.load()
    assert list(rows.columns) == regimes.COLUMNS and set(rows.regime) == {"tiny"}
    held = rows[rows.seed_set == "held-out"]
    chosen = regimes.chosen_radii(rows, "tiny")
    assert set(zip(held.optimizer, held.rho)) == {("SGD", 0.0), *chosen.items()}
    units = {0.0, *regimes.RHO_UNITS["LSAM"], *regimes.RHO_UNITS["SAM"]}
    assert set(rows[rows.seed_set == "tuning"].rho_units) == units
    assert regimes.run_regime("tiny", progress=False) == []
    regimes.ROWS.replace(rows[rows.seed_set == "tuning"], lambda kept: kept.regime == "tiny")  # stopped there
    assert regimes.run_regime("tiny", progress=False) == ["held-out"]
    pd.testing.assert_frame_equal(regimes.ROWS.load(), rows)


# --- learning-rate scaling along directions ---------------------------------------------------------------------


def test_along_the_axes_it_is_the_toys_per_feature_factor():
    runs = [Run("LSAM", 0.5, 0.5, 0)]
    result = train_sweep(runs, SMALL, progress=False)
    v, vp = result.history["v"][:, 0], result.history["v_phantom"][:, 0]
    along = torch.stack([lr_scaling_along((v[t][None], None), (vp[t][None], None), torch.eye(2, dtype=v.dtype),
                                          "logistic") for t in range(len(v))])
    torch.testing.assert_close(along.abs(), lr_factors(result, 0), rtol=1e-12, atol=0)


def test_for_two_classes_it_is_the_ratio_of_the_gradients_that_reach_the_features():
    """Brute force: autograd's gradient of the loss with respect to the features, with the real head and with the
    phantom head in the chain rule (the logit gradient kept at the real head), projected on u: their ratio is the
    same for every example and equals the factor."""
    g = torch.Generator().manual_seed(0)
    phi = torch.randn(50, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (50,), generator=g)
    head = (torch.randn(2, 6, generator=g, dtype=torch.float64), torch.randn(2, generator=g, dtype=torch.float64))
    phantom = phantom_head(phi, y, head, 0.7, "cross_entropy")
    u = torch.randn(3, 6, generator=g, dtype=torch.float64)
    z = F.linear(phi, *head).requires_grad_(True)
    G = torch.autograd.grad(F.cross_entropy(z, y, reduction="sum"), z)[0]
    leaf = phi.clone().requires_grad_(True)
    real = torch.autograd.grad((G * F.linear(leaf, head[0])).sum(), leaf)[0]
    leaf = phi.clone().requires_grad_(True)
    through_phantom = torch.autograd.grad((G * F.linear(leaf, phantom[0])).sum(), leaf)[0]
    ratios = (through_phantom @ u.T) / (real @ u.T)  # (N, K): one value per direction, whatever the example
    factor = lr_scaling_along(head, phantom, u, "cross_entropy")
    torch.testing.assert_close(ratios, factor.expand_as(ratios), rtol=1e-9, atol=0)
    uncentred = (F.linear(u, phantom[0]) * F.linear(u, head[0])).sum(1) / F.linear(u, head[0]).square().sum(1)
    assert not torch.allclose(uncentred, factor), "centring matters when the head's rows do not sum to zero"


def test_bad_directions_are_refused():
    head = (torch.ones(2, 4), None)
    with pytest.raises(ValueError, match=r"directions must be a tensor \(K, D\) with D = 4"):
        lr_scaling_along(head, head, torch.ones(4), "cross_entropy")
    with pytest.raises(ValueError, match="loss must be one of"):
        lr_scaling_along(head, head, torch.ones(1, 4), "hinge")


def test_a_probes_direction_reads_the_label_in_the_features_own_units():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 3, generator=g, dtype=torch.float64) * torch.tensor([100.0, 1.0, 0.01])
    y = (x[:, 2] > 0).long()  # only the third, tiny feature reads the label
    probe = linear_probe(x, y, x, y)
    direction = probe.direction / np.linalg.norm(probe.direction)
    assert abs(direction[2]) > 0.99 and direction[2] > 0  # pointing towards class 1
    assert linear_probe(x, torch.arange(400) % 3, x, torch.arange(400) % 3).direction is None


def test_the_image_factors_are_one_at_radius_zero():
    from samlib.experiments import cifar_mnist
    from samlib.experiments import lr_scaling as study_module

    preset = replace(cifar_mnist.CLUTTERED, n_train=64, n_probe=64)
    sets = cifar_mnist.load_sets(preset)
    torch.manual_seed(0)
    model = cifar_mnist.build_model(preset, sets)
    read = study_module.factors(model, sets, rho=0.0, batches=2, batch_size=16)
    assert read["easy_factor"] == pytest.approx(1.0) and read["hard_factor"] == pytest.approx(1.0)
    moved = study_module.factors(model, sets, rho=0.5, batches=2, batch_size=16)
    assert moved["easy_factor"] != pytest.approx(1.0)
    with pytest.raises(ValueError, match="batches \\* batch_size = 128 is more than the 64 images"):
        study_module.factors(model, sets, batches=2, batch_size=64)


# --- the shipped studies ----------------------------------------------------------------------------------------


def test_the_shipped_regimes_follow_their_protocol():
    frame = regimes.load_regimes()
    assert list(frame.columns) == regimes.COLUMNS
    assert list(pd.unique(frame.regime)) == list(regimes.REGIMES)
    used = set(study.load_study().seed)
    for name in regimes.REGIMES:
        part = frame[frame.regime == name]
        tuning, held = part[part.seed_set == "tuning"], part[part.seed_set == "held-out"]
        assert set(tuning.seed) == set(regimes.TUNING_SEEDS) and set(held.seed) == set(regimes.HELD_OUT_SEEDS)
        assert not set(held.seed) & used, "the held-out seeds must be new to the book's toy studies"
        chosen = regimes.chosen_radii(frame, name)
        assert set(zip(held.optimizer, held.rho)) == {("SGD", 0.0), *chosen.items()}, name
        assert set(held.read) == set(regimes.READS) and set(tuning.read) == {"final"}


SHIPPED = "init 0.1"


def test_a_held_out_run_of_the_shipped_regimes_comes_back_when_rerun():
    """SGD and LSAM of one held-out seed and complexity, re-trained from scratch (float64): every read comes back."""
    frame = regimes.load_regimes()
    held = frame[(frame.regime == SHIPPED) & (frame.seed_set == "held-out") & (frame.seed == 600)
                 & (frame.turns == 0.75) & frame.optimizer.isin(["SGD", "LSAM"])]
    rho = float(held[held.optimizer == "LSAM"].rho.iloc[0])
    settings = regimes.REGIMES[SHIPPED].settings
    kept = tuple(s for s in sorted({*regimes.SNAPSHOTS, *regimes.TRAJECTORY}) if 0 < s < settings.steps)
    result = train_sweep([Run("SGD", 0.0, 0.75, 600), Run("LSAM", rho, 0.75, 600)], settings, progress=False,
                         snapshots=kept)
    rerun = regimes.train_reads(result)
    keys = ["optimizer", "read", "step"]
    merged = rerun.dropna(subset=["step"]).merge(held, on=keys, suffixes=("", "_shipped"))
    assert len(merged) == held.step.notna().sum()
    for column in ("hard_error", "easy_error", "train_error"):
        np.testing.assert_allclose(merged[column], merged[f"{column}_shipped"], atol=1e-6)
    np.testing.assert_allclose(merged.train_loss, merged.train_loss_shipped, rtol=1e-4, atol=1e-6)


def test_the_shipped_lr_scaling_covers_every_seed_set_and_its_new_seeds_are_new():
    from samlib.experiments import lr_scaling as study_module
    from samlib.experiments import replication, testbeds

    used = {*testbeds.load_study().seed, *replication.load_replication().seed}
    new = study_module.SEED_SETS["new"]
    assert len(new) >= 20 and not set(new) & used, "the verdict's seeds must be new to the image studies"
    frame = study_module.load_lr_scaling()
    assert list(frame.columns) == study_module.COLUMNS
    for seed_set, seeds in study_module.SEED_SETS.items():
        part = frame[frame.seed_set == seed_set]
        assert set(part.seed) == set(seeds) and set(part.optimizer) == {"SGD", "LSAM"}
        assert (part.groupby(["optimizer", "seed"]).epoch.apply(tuple) == study_module.EPOCHS).all()
    assert frame[["easy_factor", "hard_factor"]].notna().all().all()



def test_the_ratio_along_training_pairs_each_seed_with_its_sgd_twin_at_the_same_step():
    rows = [{"regime": "r", "seed_set": "held-out", "read": "trajectory", "optimizer": opt, "rho": rho, "turns": 0.5,
             "seed": seed, "step": step, "hard_error": 0.4 if opt == "SGD" else 0.4 * (1 - step / 200) * (1 + seed)}
            for opt, rho in (("SGD", 0.0), ("LSAM", 0.5)) for seed in (0, 1, 2) for step in (0, 100)]
    ratios = regimes.ratio_along_training(pd.DataFrame(rows))
    assert ratios.loc[(0.5, 0), "r"] == pytest.approx(2.0) and ratios.loc[(0.5, 100), "r"] == pytest.approx(1.0)
