"""The decomposition applied to toy sweeps: snapshots, Gini tables, equal-loss matching, LR scaling over
batches, contribution bins and the ablation summaries."""
import numpy as np
import pandas as pd
import pytest
import torch

from samlib.decompose import gini
from samlib.toy import mechanism as mech
from samlib.toy.sweep import ToySettings, grid, train_sweep

SMALL = ToySettings(n=80, hidden=8, steps=60, batch_size=20, log_every=10)


@pytest.fixture(scope="module")
def sweep():
    return train_sweep(grid({"SGD": [0.0], "LSAM": [0.5]}, [0.5], [0, 1]), SMALL, progress=False, snapshots=(10, 30))


def test_snapshots_equal_a_shorter_sweep_and_survive_a_resume(sweep, tmp_path):
    short = train_sweep(sweep.runs, ToySettings(**{**SMALL.__dict__, "steps": 30}), progress=False)
    assert all(torch.equal(sweep.params_at(30)[k], short.params[k]) for k in short.params)
    assert sweep.params_at(None) is sweep.params and sweep.params_at(SMALL.steps) is sweep.params
    with pytest.raises(KeyError, match="no snapshot at step 20"):
        sweep.params_at(20)
    with pytest.raises(ValueError, match="snapshots must be step counts"):
        train_sweep(sweep.runs, SMALL, progress=False, snapshots=(0,))
    path = tmp_path / "sweep.pt"
    cut = ToySettings(**{**SMALL.__dict__, "steps": 40})
    train_sweep(sweep.runs, cut, progress=False, snapshots=(10, 30), checkpoint=path, checkpoint_every=20)
    resumed = train_sweep(sweep.runs, SMALL, progress=False, snapshots=(10, 30), checkpoint=path, checkpoint_every=20)
    for step in (10, 30, None):
        assert all(torch.equal(resumed.params_at(step)[k], sweep.params_at(step)[k]) for k in sweep.params)


def test_gini_table_matches_a_direct_computation(sweep):
    table = mech.gini_table(sweep, [10, None])
    assert len(table) == 2 * len(sweep.runs) and set(table.step) == {10, SMALL.steps}
    row = table[(table.step == 10) & (table.run == 1)].iloc[0]
    d = mech.run_decomposition(sweep, 1, step=10)
    assert row.gini_phantom == pytest.approx(gini(d.phantom_weights))
    sgd = table[table.optimizer == "SGD"]
    assert np.allclose(sgd.gini_real, sgd.gini_phantom)  # rho = 0: lambda~ = lambda
    lsam = table[table.optimizer == "LSAM"]
    assert (lsam.mean_phantom > lsam.mean_real).all()  # the phantom head is a step up the loss
    assert mech.reconstruction_gap(sweep, 1, 10) < 1e-5


def test_equal_loss_matching_on_a_hand_made_table():
    table = pd.DataFrame({"run": [0, 0, 0, 1, 1], "optimizer": ["SGD"] * 3 + ["LSAM"] * 2, "rho": [0, 0, 0, 1, 1],
                          "turns": 0.5, "seed": 0, "step": [10, 20, 30, 10, 20], "loss": [1.0, 0.1, 0.01, 0.5, 0.02],
                          "gini_real": [0.1, 0.5, 0.9, 0.2, 0.7], "gini_phantom": [0.1, 0.5, 0.9, 0.1, 0.6]})
    assert mech.equal_loss_steps(table, 0, 1, near=0.01) == (30, 20)
    with pytest.raises(ValueError, match="no snapshots"):
        mech.equal_loss_steps(table, 0, 1, near=1e-6)
    matched = mech.matched_loss_gini(table, 1)
    # loss 0.5 lies between SGD's 1.0 and 0.1: Gini interpolated in log loss
    expected = np.interp(np.log(0.5), np.log([0.01, 0.1, 1.0]), [0.9, 0.5, 0.1])
    assert matched.sgd_same_loss.tolist() == pytest.approx([expected, np.interp(np.log(0.02), np.log([0.01, 0.1, 1.0]),
                                                                                 [0.9, 0.5, 0.1])])
    assert matched.lsam_phantom.tolist() == [0.1, 0.6]


def test_lr_scaling_over_batches_and_contribution_bins(sweep):
    frame = mech.lr_scaling_over_batches(sweep, [0, 1], batches=3, batch_size=10)
    assert len(frame) == 6 and set(frame.columns) >= {"easy", "hard", "batch"}
    assert np.allclose(frame[frame.optimizer == "SGD"][["easy", "hard"]], 1.0)  # no perturbation
    index = torch.randperm(SMALL.n, generator=torch.Generator().manual_seed(0))[:10]
    assert frame.iloc[3][["easy", "hard"]].tolist() == pytest.approx(
        mech.run_decomposition(sweep, 1, index).lr_scaling.tolist())
    grid_ = mech.weight_by_contribution(sweep, 1, bins=3)
    assert grid_["count"].sum() == SMALL.n and grid_["median"].shape == (3, 3)
    assert grid_["hard_max"] >= 0 and np.isfinite(grid_["easy_span"])
    m = grid_["median"]  # the rows' medians and the widest row, against the grid itself
    assert np.allclose(grid_["row_medians"], [np.nanmedian(r) for r in m], equal_nan=True)
    assert grid_["row_spread"] == pytest.approx(max(np.log10(np.nanmax(r) / np.nanmin(r)) for r in m
                                                    if not np.isnan(r).all()))


def test_schematic_is_one_lsam_ascent_by_autograd():
    """The schematic's phantom head is v + rho * grad / ||grad|| of the mean logistic loss (autograd, by hand)."""
    s = mech.schematic(rho=0.7, n=50, seed=3)
    v = s.v.clone().requires_grad_(True)
    loss = torch.nn.functional.softplus(-(s.signed_features @ v)).mean()
    (grad,) = torch.autograd.grad(loss, v)
    torch.testing.assert_close(s.eps, 0.7 * grad / grad.norm())
    torch.testing.assert_close(s.v_tilde, s.v + s.eps)
    torch.testing.assert_close(s.lam, torch.sigmoid(-(s.signed_features @ s.v)))
    torch.testing.assert_close(s.lam_tilde, torch.sigmoid(-(s.signed_features @ s.v_tilde)))
    assert (s.v_tilde / s.v)[0] < (s.v_tilde / s.v)[1]  # the easy weight is cut more: learning-rate scaling
    assert gini(s.lam_tilde) < gini(s.lam)               # and the weights even out: importance weighting
    assert torch.equal(mech.schematic(rho=0.7, n=50, seed=3).signed_features, s.signed_features)


@pytest.mark.parametrize("kwargs, match", [({"rho": 0.0}, "rho"), ({"rho": -1.0}, "rho"), ({"n": 1}, "n"),
                                           ({"seed": -1}, "seed"), ({"rho": float("nan")}, "rho")])
def test_schematic_refuses_bad_arguments(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        mech.schematic(**kwargs)
