"""The noise-memorization setting (Chen et al., 2023) against independent references: hand loops,
autograd on single runs, a hand-written SAM step, one-run-at-a-time training."""
import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from samlib.memorization.data import DataSetting, Run, grid_runs, held_out_data, signal_vector, training_data
from samlib.memorization.model import (
    coefficients,
    init_weights,
    loss_and_gradient,
    network_output,
    noise_memorization,
    optimizer_step,
    sam_perturbation,
    signal_learning,
)
from samlib.memorization.results import compare_optimizers, first_below, signal_to_noise
from samlib.memorization.train import Training, train_runs, train_table

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64
SMALL = DataSetting(d=40, sigma_p=1.0, p=0.2, n_test=300)


def _random_problem(R=3, n=5, m=4, d=7):
    g = torch.Generator().manual_seed(1)
    W = torch.randn(R, 2, m, d, generator=g, dtype=F64)
    x = torch.randn(R, n, 2, d, generator=g, dtype=F64)
    y = torch.randint(0, 2, (R, n), generator=g).to(F64) * 2 - 1
    return W, x, y


def _output_by_hand(w, x):
    """f for one run and one example: a loop over classes, filters and patches."""
    m = w.shape[1]
    f = 0.0
    for j, sign in ((0, 1.0), (1, -1.0)):
        for r in range(m):
            for p in range(x.shape[0]):
                f += sign * torch.relu(w[j, r] @ x[p]) / m
    return f


def _single_run_loss(w, x, y):
    """Mean logistic loss of one run, written directly (used with autograd)."""
    pre = torch.einsum("npd,jmd->npjm", x, w).relu().sum(dim=(1, 3)) / w.shape[1]
    return F.softplus(-y * (pre[:, 0] - pre[:, 1])).mean()


def test_network_output_matches_a_loop_over_patches_and_filters():
    W, x, _ = _random_problem()
    out = network_output(W, x)
    for r in range(W.shape[0]):
        for i in range(x.shape[1]):
            assert out[r, i].item() == pytest.approx(_output_by_hand(W[r], x[r, i]).item(), rel=1e-12)
    shared = network_output(W, x[0])  # one input set for every run
    torch.testing.assert_close(shared, torch.stack([network_output(W[r:r + 1], x[:1])[0] for r in range(3)]))


def test_batched_gradient_equals_autograd_of_each_run_alone():
    W, x, y = _random_problem()
    valid = torch.tensor([[True] * 5, [True, True, False, False, False], [True, False, True, True, False]])
    loss, grad, _ = loss_and_gradient(W, x, y, valid)
    for r in range(3):
        w = W[r].clone().requires_grad_(True)
        single = _single_run_loss(w, x[r, valid[r]], y[r, valid[r]])
        single.backward()
        assert loss[r].item() == pytest.approx(single.item(), rel=1e-12)
        torch.testing.assert_close(grad[r], w.grad)


def test_sam_step_equals_a_hand_computed_step_with_each_runs_own_norm():
    W, x, y = _random_problem()
    tau, lr = torch.tensor([0.0, 0.3, 1.5], dtype=F64), 0.7
    stepped = W.clone()
    optimizer_step(stepped, x, y, None, lr, tau)
    for r in range(3):
        w = W[r].clone().requires_grad_(True)
        g, = torch.autograd.grad(_single_run_loss(w, x[r], y[r]), w)
        phantom = (W[r] + tau[r] * g / g.norm()).requires_grad_(True)
        g_phantom, = torch.autograd.grad(_single_run_loss(phantom, x[r], y[r]), phantom)
        torch.testing.assert_close(stepped[r], W[r] - lr * g_phantom)
    plain = W.clone()
    optimizer_step(plain, x, y, None, lr, None)
    torch.testing.assert_close(stepped[0], plain[0])  # tau = 0 is SGD
    assert not torch.allclose(stepped[1], plain[1])


def test_sam_perturbation_has_radius_tau_per_run_and_no_nan_at_zero_gradient():
    grad = torch.randn(3, 2, 4, 5, dtype=F64)
    grad[2] = 0
    eps = sam_perturbation(grad, torch.tensor([0.5, 2.0, 1.0], dtype=F64))
    torch.testing.assert_close(eps.flatten(1).norm(dim=1), torch.tensor([0.5, 2.0, 0.0], dtype=F64))
    torch.testing.assert_close(eps[0] / eps[0].norm(), grad[0] / grad[0].norm())


def test_sam_switches_off_noise_neurons_at_the_phantom_point():
    """The mechanism: at w + eps, fewer own-class filters fire on the training noise than at w."""
    run = Run(n=10, mu_norm=1.0, seed=0, tau=0.5)
    data = training_data(run, DataSetting(d=400, p=0.0), F64)
    W = init_weights([run], width=10, init_std=0.01, d=400, dtype=F64)
    out = optimizer_step(W, data.x[None], data.y[None], None, 1.0, torch.tensor([0.5], dtype=F64))
    noise_patch = 1 - data.signal_patch
    own = 1 - (data.y > 0).long()

    def share(pre):
        return (pre[0, torch.arange(10), noise_patch, own] > 0).double().mean().item()
    assert share(out.phantom) < 0.5 * share(out.real)


def test_coefficients_and_their_summaries_match_dot_products():
    W, x, y = _random_problem(R=2, n=4, m=3, d=6)
    mu, noise = torch.randn(2, 6, dtype=F64), x[:, :, 1]
    signal, memorized = coefficients(W, mu, noise)
    assert signal[1, 0, 2].item() == pytest.approx((W[1, 0, 2] @ mu[1]).item())
    assert memorized[0, 1, 1, 3].item() == pytest.approx((W[0, 1, 1] @ noise[0, 3]).item())
    expected = 0.5 * (max(W[0, 0, r] @ mu[0] for r in range(3)) + max(-W[0, 1, r] @ mu[0] for r in range(3)))
    assert signal_learning(signal)[0].item() == pytest.approx(expected.item())
    valid = torch.tensor([[True, True, True, False], [True] * 4])
    own = [max(W[0, 0 if y[0, i] > 0 else 1, r] @ noise[0, i] for r in range(3)) for i in range(3)]
    assert noise_memorization(memorized, y, valid)[0].item() == pytest.approx(sum(own).item() / 3)


def test_data_noise_is_orthogonal_to_the_signal_and_patches_are_in_random_order():
    setting = DataSetting(d=30, sigma_p=2.0, p=0.1)
    data = training_data(Run(n=4000, mu_norm=1.5, seed=3), setting)
    mu = signal_vector(1.5, 30)
    assert data.x.shape == (4000, 2, 30)
    assert (data.noise @ mu).abs().max() == 0
    rows = torch.arange(4000)
    torch.testing.assert_close(data.x[rows, data.signal_patch], data.clean[:, None] * mu)
    torch.testing.assert_close(data.x[rows, 1 - data.signal_patch], data.noise)
    assert abs(data.signal_patch.double().mean().item() - 0.5) < 0.03
    assert abs(data.noise[:, 1:].std().item() - 2.0) < 0.02
    assert abs((data.y != data.clean).double().mean().item() - 0.1) < 0.015
    assert abs(data.clean.mean().item()) < 0.05


def test_data_is_determined_by_the_seed_and_shared_by_sgd_and_sam():
    a = training_data(Run(20, 2.0, seed=5, tau=0.0), SMALL)
    b = training_data(Run(20, 2.0, seed=5, tau=0.5), SMALL)
    c = training_data(Run(20, 2.0, seed=6), SMALL)
    torch.testing.assert_close(a.x, b.x)
    assert not torch.allclose(a.x, c.x)
    torch.testing.assert_close(training_data(Run(20, 3.0, seed=5), SMALL).noise, a.noise)  # same noise, other ‖μ‖
    assert not torch.allclose(held_out_data(5, 2.0, SMALL).noise[:20], a.noise)  # test set is a fresh draw
    runs = [Run(20, 2.0, 5, 0.0), Run(40, 1.0, 5, 0.5), Run(20, 2.0, 6)]
    W = init_weights(runs, 3, 0.01, SMALL.d)
    torch.testing.assert_close(W[0], W[1])
    assert not torch.allclose(W[0], W[2])


def test_batched_training_equals_one_run_at_a_time():
    runs = grid_runs([4, 7], [1.0, 3.0], [0, 1], [0.0, 0.3])
    training = Training(width=3, lr=0.5, batch_size=3, max_epochs=6, stop_loss=0.3, dtype=F64)
    together = train_runs(runs, SMALL, training, progress=False)
    for i, run in enumerate(runs):
        alone = train_runs([run], SMALL, training, progress=False)
        torch.testing.assert_close(together.weights[i], alone.weights[0])
        assert together.epochs[i] == alone.epochs[0]
        torch.testing.assert_close(together.test_error[i], alone.test_error[0])
        logged = len(alone.trace.epochs)  # alone, the loop ends when this run stops; together, it goes on frozen
        torch.testing.assert_close(together.trace.loss[:logged, i], alone.trace.loss[:, 0])
        rest = together.trace.loss[logged:, i]
        torch.testing.assert_close(rest, alone.trace.loss[-1, 0].expand_as(rest))


def test_train_table_by_n_gives_the_same_rows():
    runs = grid_runs([4, 7], [2.0], [0], [0.0, 0.3])
    training = Training(width=2, batch_size=3, max_epochs=4, dtype=F64)
    together, _ = train_table(runs, SMALL, training, progress=False)
    split, seconds = train_table(runs, SMALL, training, by_n=True, progress=False)
    pd.testing.assert_frame_equal(together.sort_values(["n", "tau"]).reset_index(drop=True),
                                  split.sort_values(["n", "tau"]).reset_index(drop=True))
    assert seconds > 0


def test_stopping_rule_freezes_a_run_where_its_loss_first_falls_below_the_threshold():
    runs = [Run(8, 3.0, seed, tau) for seed in (0, 1) for tau in (0.0, 0.2)]
    base = dict(width=4, lr=1.0, batch_size=4, max_epochs=80, log_every=1, dtype=F64)
    stopped = train_runs(runs, SMALL, Training(stop_loss=0.1, **base), progress=False)
    free = train_runs(runs, SMALL, Training(stop_loss=None, **base), progress=False)
    assert stopped.stopped.all() and (stopped.epochs < 80).all() and (stopped.train_loss < 0.1).all()
    assert not free.stopped.any() and (free.epochs == 80).all()
    stops = first_below(free.trace.loss, 0.1)
    for i in range(len(runs)):
        epoch = stopped.epochs[i].item()
        assert free.trace.epochs[stops[i]] == epoch
        assert free.trace.loss[stops[i] - 1, i] >= 0.1
        frozen = torch.tensor(stopped.trace.epochs) >= epoch
        assert (stopped.trace.signal[frozen, i] == stopped.trace.signal[-1, i]).all()
    last = free.epochs.max().item() == 80
    assert last and not torch.allclose(free.weights, stopped.weights)


def test_first_below_and_signal_to_noise():
    loss = torch.tensor([[0.9, 0.9], [0.4, 0.8], [0.1, 0.7]])
    assert first_below(loss, 0.5).tolist() == [1, -1]
    assert signal_to_noise(20, 2.0, DataSetting(d=1000, sigma_p=1.0)) == pytest.approx(0.32)


def test_compare_optimizers_pairs_seeds_and_counts_wins():
    rows = []
    for seed, (sgd_a, sam_a, sgd_b, sam_b) in enumerate([(0.3, 0.1, 0.02, 0.03), (0.4, 0.1, 0.0, 0.0)]):
        rows += [dict(n=10, mu_norm=1.0, seed=seed, tau=0.0, optimizer="SGD", test_error=sgd_a),
                 dict(n=10, mu_norm=1.0, seed=seed, tau=0.5, optimizer="SAM", test_error=sam_a),
                 dict(n=10, mu_norm=2.0, seed=seed, tau=0.0, optimizer="SGD", test_error=sgd_b),
                 dict(n=10, mu_norm=2.0, seed=seed, tau=0.5, optimizer="SAM", test_error=sam_b)]
    cells = compare_optimizers(pd.DataFrame(rows))
    assert cells.loc[(10, 1.0), "difference"] == pytest.approx(-0.25)
    assert cells.loc[(10, 1.0), "SGD"] == pytest.approx(0.35)
    assert (cells.loc[(10, 1.0), "wins"], cells.loc[(10, 1.0), "seeds"]) == (2, 2)
    assert cells.loc[(10, 1.0), "every_seed"] == "SAM lower"
    assert (cells.loc[(10, 2.0), "wins"], cells.loc[(10, 2.0), "losses"]) == (0, 1)  # 0.03 > 0.02, then a tie
    assert cells.loc[(10, 2.0), "every_seed"] == "mixed"
    with pytest.raises(ValueError, match="several SAM radii"):
        compare_optimizers(pd.DataFrame(rows + [dict(rows[1], tau=0.2)]))


def test_result_table_has_one_row_per_run():
    runs = grid_runs([5], [2.0], [0], [0.0, 0.4])
    result = train_runs(runs, SMALL, Training(width=2, max_epochs=2, batch_size=5), progress=False)
    table = result.table()
    assert list(table.optimizer) == ["SGD", "SAM"] and list(table.tau) == [0.0, 0.4]
    assert ((table.test_error >= 0) & (table.test_error <= 1)).all()
    assert result.trace.epochs[0] == 0 and result.trace.noise.shape[:2] == (len(result.trace.epochs), 2)


@pytest.mark.parametrize("make, match", [
    (lambda: DataSetting(p=0.5), r"p \(the label-flip probability\) must be a finite number in \[0, 0.5\), got 0.5; "
                                 "at p >= 0.5 the observed labels carry no information"),
    (lambda: DataSetting(p=-0.1), r"p \(the label-flip probability\) must be a finite number in \[0, 0.5\), got -0.1"),
    (lambda: DataSetting(d=1), "d must be an integer >= 2, got 1; the signal takes one direction"),
    (lambda: DataSetting(sigma_p=0.0), "sigma_p must be a finite number > 0"),
    (lambda: Run(n=0, mu_norm=1.0), "n must be a positive integer, got 0; the number of training points"),
    (lambda: Run(n=5, mu_norm=-1.0), "mu_norm must be a finite number >= 0"),
    (lambda: Run(n=5, mu_norm=1.0, tau=-0.1), "tau is SAM's radius"),
    (lambda: Training(width=0), "width must be a positive integer, got 0"),
    (lambda: Training(stop_loss=0.0), "stop_loss must be a finite number > 0"),
    (lambda: Training(lr=float("nan")), "lr must be a finite number > 0, got nan"),
    (lambda: train_runs([], SMALL), "runs must be a non-empty list"),
])
def test_bad_input_gets_a_clear_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_types_get_a_type_error():
    with pytest.raises(TypeError, match="n must be a positive integer, got float 2.5"):
        Run(n=2.5, mu_norm=1.0)
    with pytest.raises(TypeError, match="tau is SAM's radius"):
        Run(n=5, mu_norm=1.0, tau="big")


def test_grid_benchmark_runs_and_agrees(capsys):
    spec = importlib.util.spec_from_file_location("memorization_grid", ROOT / "benchmarks" / "memorization_grid.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(["--ns", "4", "6", "--mus", "1", "3", "--seeds", "0", "1", "--d", "20", "--width", "2",
                         "--max-epochs", "3", "--every", "2", "--n-test", "50"])
    assert report["runs"] == 16 and report["loop_runs"] == 8
    assert report["max_weight_difference"] < 1e-4 and report["epochs_equal"]
    assert "one at a time" in capsys.readouterr().out
