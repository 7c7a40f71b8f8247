"""Linear probes, seeding, the scale switch and the model split."""
import random

import numpy as np
import pytest
import torch
from torch import nn

from samlib import scale
from samlib.models import FeaturesAndHead, SmallCNN
from samlib.probe import SOLVERS, extract_features, linear_probe
from samlib.repro import configure, rng_state, seed_everything, set_rng_state


def test_probe_reads_a_linear_feature_and_not_noise():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(400, 5, generator=g)
    labels = (feats[:, 2] > 0).long()
    good = linear_probe(feats[:200], labels[:200], feats[200:], labels[200:])
    assert good.test_accuracy > 0.95
    noise = torch.randn(400, 5, generator=g)
    bad = linear_probe(noise[:200], labels[:200], noise[200:], labels[200:])
    assert 0.35 < bad.test_accuracy < 0.65
    assert bad.test_error == pytest.approx(1 - bad.test_accuracy)


def test_probe_refuses_bad_input():
    x, y = torch.randn(10, 3), torch.tensor([0, 1] * 5)
    with pytest.raises(ValueError, match="features must be \\(N, D\\)"):
        linear_probe(x, y[:9], x, y)
    with pytest.raises(ValueError, match="differ in width"):
        linear_probe(x, y, torch.randn(10, 4), y)
    with pytest.raises(ValueError, match="single class"):
        linear_probe(x, torch.zeros(10), x, y)
    with pytest.raises(ValueError, match="NaN or infinite"):
        linear_probe(x.clone().fill_(float("nan")), y, x, y)
    with pytest.raises(ValueError, match="solver must be one of 'lbfgs', 'newton-cholesky'; got str 'sgd'"):
        linear_probe(x, y, x, y, solver="sgd")
    for bad in (0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="C must be a finite number > 0"):
            linear_probe(x, y, x, y, C=bad)
    with pytest.raises(TypeError, match="C must be a finite number"):
        linear_probe(x, y, x, y, C="1")


def _ill_conditioned(n=300, d=300, seed=0):
    """Float32 features whose second half nearly repeats the first, and a noisy linear label: a probe problem
    that L-BFGS, stopped early, does not solve to its optimum."""
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(2 * n, d)) * rng.uniform(0.1, 3, size=d)).astype(np.float32)
    x[:, d // 2:] = 0.9 * x[:, :d - d // 2] + 0.1 * x[:, d // 2:]
    y = (x[:, :20].sum(1) + 3 * rng.normal(size=2 * n) > 0).astype(int)
    return x[:n], y[:n], x[n:], y[n:]


def _reference_accuracy(x_train, y_train, x_test, y_test, C=1.0):
    """Test accuracy at the optimum of 0.5 |w|^2 + C sum log(1 + exp(-s (x.w + b))) (s = +-1, the intercept not
    penalised) on standardised float64 features, by plain Newton steps: independent of scikit-learn."""
    mean, std = x_train.mean(0, dtype=np.float64), x_train.std(0, dtype=np.float64)
    a = np.hstack([(x_train - mean) / std, np.ones((len(x_train), 1))])
    s = 2.0 * y_train - 1
    theta = np.zeros(a.shape[1])
    penalty = np.r_[np.ones(a.shape[1] - 1), 0.0]
    for _ in range(50):
        p = 1 / (1 + np.exp(s * (a @ theta)))  # sigma(-s z)
        grad = penalty * theta - C * a.T @ (s * p)
        hessian = np.diag(penalty) + C * (a * (p * (1 - p))[:, None]).T @ a
        theta -= np.linalg.solve(hessian, grad)
    assert np.abs(grad).max() < 1e-6  # the reference itself converged
    z = np.hstack([(x_test - mean) / std, np.ones((len(x_test), 1))]) @ theta
    return float(((z > 0) == y_test).mean())


def test_the_newton_probe_reaches_the_optimum_and_lbfgs_stops_short():
    data = _ill_conditioned()
    reference = _reference_accuracy(*data)
    assert linear_probe(*data, solver="newton-cholesky").test_accuracy == reference
    assert linear_probe(*data).test_accuracy != reference  # the default (lbfgs) stops before the optimum
    assert linear_probe(*data) == linear_probe(*data, solver=SOLVERS[0]) == linear_probe(*data, solver="lbfgs")


def test_the_newton_probe_solves_in_float64_whatever_the_input_dtype():
    x_train, y_train, x_test, y_test = _ill_conditioned(seed=1)
    results = {linear_probe(x_train.astype(dtype), y_train, x_test.astype(dtype), y_test, solver="newton-cholesky")
               for dtype in (np.float32, np.float64)}
    assert len(results) == 1


def test_extract_features_uses_eval_mode_and_restores_it():
    model = SmallCNN(in_channels=1, widths=(4,), batchnorm=True)
    model.train()
    x = torch.randn(7, 1, 4, 4)
    feats = extract_features(model, x, batch_size=3)
    assert feats.shape == (7, 4) and model.training
    torch.testing.assert_close(feats, model.eval().features(x))
    with pytest.raises(TypeError, match="no .features"):
        extract_features(nn.Linear(2, 2), torch.zeros(1, 2))


def test_models_split_into_features_and_linear_head():
    model = SmallCNN(in_channels=3, num_classes=5, widths=(4, 8))
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(model(x), model.head(model.features(x)))
    with pytest.raises(TypeError, match="head must be an nn.Linear"):
        FeaturesAndHead(nn.Identity(), nn.ReLU())
    with pytest.raises(ValueError, match="widths must name"):
        SmallCNN(widths=())


def test_configure_makes_every_generator_repeat():
    draws = []
    for _ in range(2):
        configure(seed=7, threads=2)
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert draws[0] == draws[1] and torch.get_num_threads() == 2
    for bad in (-1, 1.5, True):
        with pytest.raises((TypeError, ValueError), match="seed must be a non-negative integer"):
            seed_everything(bad)


def test_rng_state_round_trip():
    configure(seed=1)
    state = rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_scale_switch(monkeypatch):
    monkeypatch.delenv("SAMLIB_SCALE", raising=False)
    assert scale.current() == "book" and scale.choose(book=1, paper=2) == 1
    monkeypatch.setenv("SAMLIB_SCALE", "paper")
    assert scale.choose(book=1, paper=2) == 2
    scale.set_scale("book")
    assert scale.current() == "book"
    scale.set_scale(None)
    monkeypatch.setenv("SAMLIB_SCALE", "huge")
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        scale.current()
    with pytest.raises(ValueError, match="unknown scale"):
        scale.set_scale("tiny")
