"""The toy: data, the stacked two-branch model, and the batched SGD/SAM/LSAM sweep.

The sweep is checked against independent references: ``torch.optim.SGD`` and ``samlib.optim``'s
SAM and LSAM stepping an ordinary ``nn.Module`` copy of each run, a hand-computed ascent, and the
same runs trained one at a time.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from samlib.optim import LSAM, SAM, AblatedLSAM, ascent
from samlib.toy.data import easy_line, make_toy, spiral
from samlib.toy.model import features, init_params, logits, select_runs, to_module
from samlib.toy.sweep import PHANTOM_PARTS, Run, ToySettings, grid, sweep_step, train_sweep, training_data
from samlib.train import train_step

# --- data ---------------------------------------------------------------------------------------


def test_training_data_has_redundant_features_with_the_promised_geometry():
    d = make_toy(500, 0.75, seed=3, easy_scale=2.0, margin=0.2)
    assert d.x_easy.shape == (500, 1) and d.x_hard.shape == (500, 2) and d.y.shape == (500,)
    assert set(d.y.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(d.y_easy, d.y) and torch.equal(d.y_hard, d.y)
    margins = d.y * d.x_easy[:, 0]
    assert margins.min() >= 2.0 * 0.2 - 1e-6 and margins.max() <= 2.0 + 1e-6  # separable, margin 0.4


def test_spiral_arms_are_rotated_copies_at_the_drawn_radius():
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([1.0, -1.0] * 200, dtype=torch.float64)
    pts = spiral(y, turns=1.0, noise=0.0, generator=g)
    r = pts.norm(dim=1)
    assert r.min() >= 0.1 - 1e-9 and r.max() <= 1 + 1e-9
    angle = torch.atan2(pts[:, 1], pts[:, 0])
    expected = 2 * math.pi * r + math.pi * (y < 0)
    assert torch.allclose(torch.cos(angle - expected), torch.ones_like(r), atol=1e-9)


def test_decorrelated_labels_are_independent_and_correlated_ones_agree():
    d = make_toy(4000, 0.5, seed=1, decorrelated=True)
    agreement = (d.y_easy == d.y_hard).float().mean().item()
    assert 0.46 < agreement < 0.54
    assert torch.equal(d.y, d.y_hard)
    assert torch.all(d.y_easy * d.x_easy[:, 0] > 0)  # the easy input follows the easy label


def test_data_is_reproducible_from_its_seed_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a, b, c = make_toy(50, 0.5, seed=7), make_toy(50, 0.5, seed=7), make_toy(50, 0.5, seed=8)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.x_hard, b.x_hard) and not torch.equal(a.x_hard, c.x_hard)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0, turns=0.5), "positive integer"),
    (dict(n=-3, turns=0.5), "positive integer"),
    (dict(n=10, turns=0.0), "complexity"),
    (dict(n=10, turns=-1.0), "complexity"),
    (dict(n=10, turns=float("nan")), "complexity"),
    (dict(n=10, turns=0.5, easy_scale=0.0), "easy_scale"),
    (dict(n=10, turns=0.5, margin=1.0), "margin"),
    (dict(n=10, turns=0.5, noise=-0.1), "noise"),
])
def test_bad_data_arguments_are_refused_with_a_reason(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_toy(seed=0, **kwargs)


def test_labels_must_be_plus_minus_one():
    with pytest.raises(ValueError, match="-1/\\+1"):
        easy_line(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="-1/\\+1"):
        spiral(torch.ones(3, 1), 0.5)


# --- model ----------------------------------------------------------------------------------------


def test_stacked_features_equal_each_runs_module_and_a_hand_forward():
    params = init_params([0, 1, 2], hidden=8, dtype=torch.float64)
    d = make_toy(20, 0.5, seed=0, dtype=torch.float64)
    xe, xh = d.x_easy.expand(3, -1, -1), d.x_hard.expand(3, -1, -1)
    phi = features(params, xe, xh)
    for r in range(3):
        model = to_module(params, r)
        x = torch.cat([d.x_easy, d.x_hard], dim=1)
        assert torch.allclose(model.features(x), phi[r], atol=1e-12)
        assert torch.allclose(model(x)[:, 0], logits(params, xe, xh)[r], atol=1e-12)
    p = select_runs(params, 1)
    hand_easy = torch.relu(d.x_easy @ p["easy.w1"][0] + p["easy.b1"][0]) @ p["easy.w2"][0] + p["easy.b2"][0]
    assert torch.allclose(hand_easy[:, 0], phi[1, :, 0], atol=1e-12)


def test_equal_seeds_give_equal_models_and_bad_shapes_are_refused():
    params = init_params([5, 5, 6], hidden=4)
    assert all(torch.equal(p[0], p[1]) and not torch.equal(p[0], p[2]) for p in params.values())
    with pytest.raises(ValueError, match="hidden"):
        init_params([0], hidden=0)
    with pytest.raises(ValueError, match=r"x_easy \(R, N, 1\)"):
        features(params, torch.zeros(3, 5, 2), torch.zeros(3, 5, 2))


# --- the sweep's step against samlib.optim on module copies -----------------------------------------


def _one_step_reference(run: Run, params, data, lr, momentum, weight_decay):
    model = to_module(params, 0)
    kw = dict(lr=lr, momentum=momentum, weight_decay=weight_decay)
    if run.optimizer == "SGD":
        opt = torch.optim.SGD(model.parameters(), **kw)
    elif run.optimizer == "SAM":
        opt = SAM(model.parameters(), torch.optim.SGD, rho=run.rho, **kw)
    elif run.optimizer in ("IW-only", "LR-only"):
        effect = {"IW-only": "importance_weighting", "LR-only": "lr_scaling"}[run.optimizer]
        opt = AblatedLSAM(model.parameters(), torch.optim.SGD, head=model.head, rho=run.rho, effect=effect, **kw)
    else:
        opt = LSAM(model.parameters(), torch.optim.SGD, head=model.head, rho=run.rho, **kw)
    x = torch.cat([data.x_easy, data.x_hard], dim=1)
    loss_fn = lambda out, y: F.softplus(-y * out[:, 0]).mean()  # noqa: E731
    for _ in range(2):  # two steps, so momentum matters
        train_step(model, opt, loss_fn, x, data.y)
    return model


@pytest.mark.parametrize("optimizer, rho, recombined", [("SGD", 0.0, False), ("LSAM", 0.3, False), ("SAM", 0.3, False),
                                                        ("SGD", 0.0, True), ("LSAM", 0.3, True),
                                                        ("IW-only", 0.3, True), ("LR-only", 0.3, True)])
def test_two_sweep_steps_equal_samlib_optim_on_a_module_copy(optimizer, rho, recombined):
    """Every path of the sweep's step (recombined: the one sweeps with ablations take) against samlib.optim."""
    run = Run(optimizer, rho, 0.5, seed=0)
    data = make_toy(40, 0.5, seed=0, dtype=torch.float64)
    params = init_params([0], hidden=6, dtype=torch.float64)
    reference = _one_step_reference(run, params, data, lr=0.1, momentum=0.9, weight_decay=1e-3)
    buffers = {k: torch.zeros_like(p) for k, p in params.items()}
    batch = (data.x_easy[None], data.x_hard[None], data.y[None])
    parts = torch.tensor([PHANTOM_PARTS[optimizer]], dtype=torch.float64) if recombined else None
    for _ in range(2):
        sweep_step(params, buffers, batch, torch.tensor([rho], dtype=torch.float64),
                   torch.tensor([float(optimizer == "SAM")], dtype=torch.float64),
                   ToySettings(lr=0.1, momentum=0.9, weight_decay=1e-3), parts=parts)
    ours = to_module(params, 0)
    for (name, a), b in zip(reference.named_parameters(), ours.parameters()):
        assert torch.allclose(a, b, atol=1e-12), name


def test_batched_ascent_matches_a_hand_computation_for_lsam_and_sam():
    head = torch.tensor([[3.0, 4.0], [3.0, 4.0], [1.0, 0.0]])
    body = torch.tensor([[[0.0, 12.0]], [[0.0, 12.0]], [[0.0, 0.0]]])
    sam_runs = torch.tensor([0.0, 1.0, 0.0])  # run 0 LSAM (head only), run 1 SAM (everything), run 2 SGD
    eps_head, eps_body = ascent([head, body], torch.tensor([0.5, 0.5, 0.0]), perturbed=[True, sam_runs], runs=True)
    assert torch.allclose(eps_head[0], torch.tensor([0.3, 0.4]))            # LSAM: 0.5 * (3, 4) / 5
    assert torch.equal(eps_body[0], torch.zeros(1, 2))                      # LSAM leaves the body alone
    assert torch.allclose(eps_head[1], torch.tensor([3.0, 4.0]) * 0.5 / 13)  # SAM: norm over all = 13
    assert torch.allclose(eps_body[1], torch.tensor([[0.0, 12.0]]) * 0.5 / 13)
    assert torch.equal(eps_head[2], torch.zeros(2))                         # SGD: rho = 0
    zero = ascent([torch.zeros(1, 2)], torch.tensor([0.5]), runs=True)[0]
    assert torch.equal(zero, torch.zeros(1, 2))                             # no NaN on a zero gradient


def test_relative_radius_scales_with_the_weights_norm():
    eps = ascent([torch.tensor([[3.0, 4.0]])], torch.tensor([0.5]), params=[torch.tensor([[0.0, 2.0]])],
                 relative=True, runs=True)[0]
    assert torch.allclose(eps, torch.tensor([[0.6, 0.8]]))  # radius 0.5 * ||v|| = 1


# --- whole sweeps -------------------------------------------------------------------------------------


SMALL = ToySettings(n=60, hidden=8, steps=40, batch_size=20, log_every=10)


def test_batched_sweep_equals_training_each_run_alone():
    runs = grid({"SGD": [0.0], "LSAM": [0.5]}, [0.5, 1.0], [0, 1])
    together = train_sweep(runs, SMALL, progress=False)
    for i, run in enumerate(runs):
        alone = train_sweep([run], SMALL, progress=False)
        for k in together.params:
            assert torch.allclose(together.params[k][i], alone.params[k][0], atol=1e-5), (run, k)


def test_sam_runs_batched_with_lsam_runs_match_the_fast_path():
    """A sweep holding a SAM run takes the two-pass step for all runs; its LSAM runs must come out as
    in a sweep of LSAM runs alone (one-pass step)."""
    lsam = [Run("LSAM", 0.4, 0.5, 0), Run("SGD", 0.0, 0.5, 0)]
    mixed = train_sweep(lsam + [Run("SAM", 0.1, 0.5, 0)], SMALL, progress=False)
    fast = train_sweep(lsam, SMALL, progress=False)
    for k in fast.params:
        assert torch.allclose(mixed.params[k][:2], fast.params[k], atol=1e-5), k


def test_ablation_sweeps_keep_their_sgd_and_lsam_runs_and_refuse_sam():
    base = [Run("LSAM", 0.4, 0.5, 0), Run("SGD", 0.0, 0.5, 0)]
    ablations = [Run("IW-only", 0.4, 0.5, 0), Run("LR-only", 0.4, 0.5, 0)]
    mixed = train_sweep(base + ablations, SMALL, progress=False)
    fast = train_sweep(base, SMALL, progress=False)
    for k in fast.params:
        assert torch.allclose(mixed.params[k][:2], fast.params[k], atol=1e-5), k
    assert not all(torch.allclose(mixed.params[k][2], mixed.params[k][3], atol=1e-4) for k in fast.params)
    with pytest.raises(ValueError, match="cannot mix SAM"):
        train_sweep(ablations + [Run("SAM", 0.1, 0.5, 0)], SMALL, progress=False)


def test_sweep_is_deterministic_and_logs_the_phantom_head():
    runs = grid({"SGD": [0.0], "LSAM": [0.5]}, [0.5], [0])
    a, b = (train_sweep(runs, SMALL, progress=False) for _ in range(2))
    assert all(torch.equal(a.params[k], b.params[k]) for k in a.params)
    h = a.history
    assert h["steps"].tolist() == [0, 10, 20, 30, 39]
    assert h["loss"].shape == (5, 2) and h["v_phantom"].shape == (5, 2, 2)
    assert torch.equal(h["v"][:, 0], h["v_phantom"][:, 0])  # SGD: no perturbation
    gap = (h["v_phantom"][:, 1] - h["v"][:, 1]).norm(dim=1)
    assert torch.allclose(gap, torch.full_like(gap, 0.5), atol=1e-5)  # LSAM: ||v~ - v|| = rho


def test_training_reduces_the_loss_and_the_hard_only_control_zeroes_the_easy_input():
    runs = [Run("SGD", 0.0, 0.5, 0), Run("SGD", 0.0, 0.5, 0, hard_only=True)]
    data = training_data(runs, SMALL)
    assert torch.equal(data[1].x_easy, torch.zeros_like(data[1].x_easy))
    assert torch.equal(data[0].x_hard, data[1].x_hard)
    res = train_sweep(runs, ToySettings(n=60, hidden=8, steps=200), progress=False)
    assert torch.all(res.history["loss"][-1] < 0.5 * res.history["loss"][0])


def test_an_interrupted_sweep_resumes_to_the_same_result(tmp_path):
    runs = grid({"SGD": [0.0], "LSAM": [0.5]}, [0.5], [0])
    path = tmp_path / "sweep.pt"
    full = train_sweep(runs, SMALL, progress=False)
    train_sweep(runs, ToySettings(**{**SMALL.__dict__, "steps": 20}), checkpoint=path, checkpoint_every=10,
                progress=False)
    assert path.exists()
    resumed = train_sweep(runs, SMALL, checkpoint=path, checkpoint_every=10, progress=False)
    assert all(torch.equal(full.params[k], resumed.params[k]) for k in full.params)
    assert torch.equal(full.history["loss"], resumed.history["loss"])
    with pytest.raises(ValueError, match="belongs to another run(.|\n)*runs: checkpoint 2 runs"):
        train_sweep(runs[:1], SMALL, checkpoint=path, progress=False)


@pytest.mark.parametrize("args, match", [
    (("Adam", 0.1, 0.5, 0), "optimizer must be one of"),
    (("SGD", 0.1, 0.5, 0), "SGD takes rho=0"),
    (("LSAM", 0.0, 0.5, 0), "rho > 0"),
    (("LSAM", -0.1, 0.5, 0), "finite number >= 0"),
    (("LSAM", float("inf"), 0.5, 0), "finite number >= 0"),
    (("LSAM", 0.1, 0.0, 0), "complexity"),
])
def test_bad_runs_are_refused_with_a_reason(args, match):
    with pytest.raises(ValueError, match=match):
        Run(*args)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="steps"):
        ToySettings(steps=0)
    with pytest.raises(ValueError, match="batch_size"):
        ToySettings(n=10, batch_size=11)
    with pytest.raises(ValueError, match="runs must be a non-empty list"):
        train_sweep([], SMALL)


# --- results ------------------------------------------------------------------------------------------


def test_probe_errors_summaries_and_phantom_ratios():
    from samlib.toy.results import final_losses, lr_factors, phantom_ratios, probe_errors, summarize, train_errors

    runs = [Run("SGD", 0.0, 0.5, 0), Run("LSAM", 0.5, 0.5, 0), Run("SGD", 0.0, 0.5, 0, hard_only=True)]
    res = train_sweep(runs, ToySettings(n=200, hidden=8, steps=150, batch_size=50, log_every=10), progress=False)
    errors = probe_errors(res, n_probe=400)
    assert list(errors.columns[:5]) == ["optimizer", "rho", "turns", "seed", "hard_only"]
    assert errors.easy_error[0] < 0.05          # the trained run learned the easy feature
    assert errors.hard_error.between(0, 0.6).all()
    s = summarize(errors[~errors.hard_only])
    assert s["count"].tolist() == [1, 1] and set(s.optimizer) == {"SGD", "LSAM"}
    ratios = phantom_ratios(res)
    assert ratios.real_ratio[0] == ratios.phantom_ratio[0]  # SGD: the phantom head is the head
    assert ratios.real_ratio[1] != ratios.phantom_ratio[1]
    assert (final_losses(res).loss < 0.7).all()
    fits = train_errors(res)
    for i, data in enumerate(training_data(res.runs, res.settings)):  # by hand: the real model's error on its data
        f = logits(select_runs(res.params, i), data.x_easy[None], data.x_hard[None])[0]
        assert fits.train_error[i] == (data.y * f <= 0).double().mean().item()
    assert fits.train_error[0] < 0.1 and (fits.train_loss < 0.7).all()
    factors = lr_factors(res, 1)
    expected = (res.history["v_phantom"][:, 1] / res.history["v"][:, 1]).abs()
    assert factors.shape == (16, 2) and torch.equal(factors, expected)  # 150 steps, logged every 10
    assert torch.equal(lr_factors(res, 0), torch.ones(16, 2, dtype=factors.dtype))  # SGD: no scaling


def test_best_rho_on_a_hand_made_summary():
    import pandas as pd

    from samlib.toy.results import best_rho

    summary = pd.DataFrame({"optimizer": ["SGD", "SGD", "LSAM", "LSAM", "LSAM", "LSAM"],
                            "rho": [0.0, 0.0, 0.5, 0.5, 1.0, 1.0], "turns": [0.5, 1.0] * 3,
                            "mean": [0.4, 0.5, 0.2, 0.45, 0.3, 0.3], "median": [0.4, 0.5, 0.1, 0.3, 0.3, 0.3]})
    assert best_rho(summary, "LSAM", "mean") == 1.0  # mean over turns: 0.325 (rho 0.5) vs 0.30 (rho 1)
    assert best_rho(summary, "LSAM") == 0.5          # median over turns: 0.2 (rho 0.5) vs 0.30 (rho 1)
    with pytest.raises(ValueError, match="statistic must be one of"):
        best_rho(summary, "LSAM", "max")
    with pytest.raises(ValueError, match="no SAM rows"):
        best_rho(summary, "SAM")


def test_decision_follows_counts_agreement_of_the_models_own_sign_with_each_label():
    from samlib.toy.results import decision_follows, probe_set

    runs = [Run("SGD", 0.0, 0.5, 0), Run("LSAM", 0.5, 0.5, 0)]
    res = train_sweep(runs, ToySettings(n=200, hidden=8, steps=150, batch_size=50, log_every=10), progress=False)
    table = decision_follows(res, [1, 0], n_probe=300)
    assert table.optimizer.tolist() == ["LSAM", "SGD"]
    for row, i in zip(table.itertuples(), (1, 0)):
        data = probe_set(res, i, 300)
        assert data.turns == 0.5 and not torch.equal(data.y_easy, data.y_hard)  # decorrelated
        sign = torch.sign(logits(select_runs(res.params, i), data.x_easy[None], data.x_hard[None])[0])
        assert row.follows_easy == (sign == data.y_easy).double().mean().item()
        assert row.follows_hard == (sign == data.y_hard).double().mean().item()
    assert not torch.equal(probe_set(res, 0, 300).x_hard, probe_set(res, 0, 300, fit=True).x_hard)
