"""Linear probes, seeding, the scale switch and the model split."""
import random

import numpy as np
import pytest
import torch
from torch import nn

from samlib import scale
from samlib.models import FeaturesAndHead, SmallCNN
from samlib.probe import extract_features, linear_probe
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
