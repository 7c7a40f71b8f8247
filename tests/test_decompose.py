"""The phantom decomposition and the ablation optimizers: reconstruction of the LSAM gradient, independent
references for each effect, Lorenz/Gini by hand, and bad input."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from samlib import decompose as dc
from samlib.models import FeaturesAndHead
from samlib.optim import LSAM, SAM, AblatedLSAM, lsam_param_groups
from samlib.toy.data import make_toy
from samlib.toy.model import init_params, to_module
from samlib.train import train_step

pytestmark = pytest.mark.usefixtures("float64")  # tests/conftest.py: float64 as the default dtype


def mlp(d=4, h=6, c=3, bias=True):
    return FeaturesAndHead(nn.Sequential(nn.Linear(d, h), nn.Tanh(), nn.Linear(h, h), nn.ReLU()),
                           nn.Linear(h, c, bias=bias))


def toy_net():
    return to_module({k: v.double() for k, v in init_params([3], hidden=8).items()}, 0)


def toy_batch(n=40):
    d = make_toy(n, 0.5, seed=1)
    return torch.cat([d.x_easy, d.x_hard], 1).double(), d.y.double()


def cases():
    """(model, x, y, loss): binary logistic on the toy (head without bias) and 3-class cross-entropy (with bias)."""
    x, y = toy_batch()
    yield toy_net(), x, y, "logistic"
    yield mlp(), torch.randn(30, 4), torch.randint(0, 3, (30,)), "cross_entropy"


def grads_of(net, loss):
    return [g.clone() for g in torch.autograd.grad(loss, list(net.parameters()))]


def lsam_phantom_head(net, x, y, loss, rho):
    """The head after samlib.LSAM's (two-pass) first step, an independent route to V~."""
    net = copy.deepcopy(net)
    opt = SAM(lsam_param_groups(net.parameters(), net.head), torch.optim.SGD, rho=rho, lr=0.1)
    dc.head_loss(net(x), y, loss).backward()
    opt.first_step()
    return net.head.weight.detach().clone(), (net.head.bias.detach().clone() if net.head.bias is not None else None)


@pytest.mark.parametrize("case", range(2))
def test_parts_recombine_to_the_autograd_gradient_at_the_phantom_point(case):
    net, x, y, loss = list(cases())[case]
    rho = 0.7
    d = dc.decompose(net.features(x), y, net.head, rho, loss)
    expected_head = lsam_phantom_head(net, x, y, loss, rho)
    for got, want in zip(d.phantom_head, expected_head):
        assert (got is None and want is None) or torch.allclose(got, want, atol=1e-12)
    phantom_net = copy.deepcopy(net)
    with torch.no_grad():
        phantom_net.head.weight.copy_(d.phantom_head[0])
        if net.head.bias is not None:
            phantom_net.head.bias.copy_(d.phantom_head[1])
    want = grads_of(phantom_net, dc.head_loss(phantom_net(x), y, loss))
    got = grads_of(net, dc.ablation_loss(net.features(x), y, net.head, d.phantom_head, loss,
                                         phantom_weights=True, phantom_chain=True))
    assert all(torch.allclose(g, w, atol=1e-12) for g, w in zip(got, want))
    sgd = grads_of(net, dc.head_loss(net(x), y, loss))
    real = grads_of(net, dc.ablation_loss(net.features(x), y, net.head, d.phantom_head, loss,
                                          phantom_weights=False, phantom_chain=False))
    assert all(torch.allclose(g, w, atol=1e-12) for g, w in zip(real, sgd))
    assert not all(torch.allclose(g, w, atol=1e-6) for g, w in zip(got, sgd))  # the phantom point matters


@pytest.mark.parametrize("case", range(2))
def test_logit_gradients_and_weights_match_brute_force(case):
    net, x, y, loss = list(cases())[case]
    z = net(x).detach().requires_grad_(True)
    brute = -len(y) * torch.autograd.grad(dc.head_loss(z, y, loss), z)[0]
    assert torch.allclose(dc.logit_gradients(z.detach(), y, loss), brute, atol=1e-12)
    lam = dc.importance_weights(z.detach(), y, loss)
    if loss == "logistic":
        hand = torch.tensor([1 / (1 + np.exp(yi * zi)) for yi, zi in zip(y.tolist(), z[:, 0].tolist())])
    else:
        hand = 1 - z.detach().softmax(1)[torch.arange(len(y)), y]
    assert torch.allclose(lam, hand, atol=1e-12)


def test_cross_entropy_weight_for_two_classes_equals_the_logistic_one():
    z = torch.randn(20, 1)
    y = torch.randint(0, 2, (20,))
    two = torch.cat([torch.zeros_like(z), z], 1)  # class-1 logit minus class-0 logit = z
    assert torch.allclose(dc.importance_weights(two, y, "cross_entropy"),
                          dc.importance_weights(z, 2.0 * y - 1, "logistic"), atol=1e-12)


def test_single_output_lr_scaling_is_the_elementwise_ratio():
    net, x, y, loss = next(cases())
    d = dc.decompose(net.features(x), y, net.head, 0.5, loss)
    assert torch.allclose(d.lr_scaling, d.phantom_head[0][0] / d.head[0][0])
    head = (torch.tensor([[1.0, 2.0], [3.0, 0.0]]), None)
    phantom = (torch.tensor([[2.0, 1.0], [3.0, 4.0]]), None)
    assert torch.allclose(dc.lr_scaling(head, phantom), torch.tensor([(2 + 9) / 10, 2 / 4]))


def per_feature_gradients(net, x, y, loss):
    """Gradient of the real loss flowing through each feature column alone (the others detached): [k][param]."""
    out = []
    phi = net.features(x)
    for k in range(phi.shape[1]):
        mask = torch.zeros(phi.shape[1], dtype=torch.bool)
        mask[k] = True
        mixed = torch.where(mask, phi, phi.detach())
        grads = torch.autograd.grad(dc.head_loss(net.head(mixed), y, loss), list(net.features.parameters()),
                                    retain_graph=True, allow_unused=True)
        out.append([g if g is not None else torch.zeros_like(p) for g, p in zip(grads, net.features.parameters())])
    return out


def test_importance_weighting_only_is_a_reweighted_real_loss():
    """Independent reference (logistic): G~ with the real head is the gradient of sum_i c_i l_i,
    c_i = lambda~_i / lambda_i."""
    net, x, y, loss = next(cases())
    d = dc.decompose(net.features(x), y, net.head, 0.8, loss)
    c = d.phantom_weights / d.weights
    reweighted = (c * F.softplus(-y * net(x)[:, 0])).mean()
    want = grads_of(net, reweighted)
    got = grads_of(net, dc.ablation_loss(net.features(x), y, net.head, d.phantom_head, loss,
                                         phantom_weights=True, phantom_chain=False))
    assert all(torch.allclose(g, w, atol=1e-12) for g, w in zip(got, want))


def test_lr_scaling_only_rescales_each_features_real_gradient():
    """Independent reference (one output): feature k's share of the real gradient times v~_k / v_k."""
    net, x, y, loss = next(cases())
    d = dc.decompose(net.features(x), y, net.head, 0.8, loss)
    parts = per_feature_gradients(net, x, y, loss)
    want = [sum(s * part[j] for s, part in zip(d.lr_scaling, parts)) for j in range(len(parts[0]))]
    got = grads_of(net, dc.ablation_loss(net.features(x), y, net.head, d.phantom_head, loss,
                                         phantom_weights=False, phantom_chain=True))
    n_feat = len(list(net.features.parameters()))
    assert all(torch.allclose(g, w, atol=1e-12) for g, w in zip(got[:n_feat], want))
    assert torch.allclose(got[n_feat], grads_of(net, dc.head_loss(net(x), y, loss))[n_feat])  # head moves as SGD's


@pytest.mark.parametrize("effect,flags", [("importance_weighting", (True, False)), ("lr_scaling", (False, True))])
@pytest.mark.parametrize("case", range(2))
def test_ablated_lsam_step_applies_the_recombined_gradient(effect, flags, case):
    net, x, y, loss = list(cases())[case]
    lr, rho = 0.1, 0.6
    d = dc.decompose(net.features(x), y, net.head, rho, loss)
    grads = grads_of(net, dc.ablation_loss(net.features(x), y, net.head, d.phantom_head, loss,
                                           phantom_weights=flags[0], phantom_chain=flags[1]))
    want = [p.detach() - lr * g for p, g in zip(net.parameters(), grads)]
    opt = AblatedLSAM(net.parameters(), torch.optim.SGD, head=net.head, rho=rho, effect=effect, lr=lr)
    train_step(net, opt, lambda out, t: dc.head_loss(out, t, loss), x, y)
    assert all(torch.allclose(p, w, atol=1e-12) for p, w in zip(net.parameters(), want))


def test_ablations_sit_between_sgd_and_lsam_and_agree_at_rho_zero():
    net, x, y, loss = next(cases())
    steps = {}
    for name in ("SGD", "LSAM", "importance_weighting", "lr_scaling"):
        copy_ = copy.deepcopy(net)
        if name == "SGD":
            opt = torch.optim.SGD(copy_.parameters(), lr=0.1)
        elif name == "LSAM":
            opt = LSAM(copy_.parameters(), torch.optim.SGD, head=copy_.head, rho=0.8, lr=0.1)
        else:
            opt = AblatedLSAM(copy_.parameters(), torch.optim.SGD, head=copy_.head, rho=0.8, effect=name, lr=0.1)
        train_step(copy_, opt, lambda out, t: dc.head_loss(out, t, loss), x, y)
        steps[name] = torch.cat([p.detach().flatten() for p in copy_.parameters()])
    for a in steps:
        for b in steps:
            assert a == b or not torch.allclose(steps[a], steps[b], atol=1e-9), (a, b)
    zero = copy.deepcopy(net)
    opt = AblatedLSAM(zero.parameters(), torch.optim.SGD, head=zero.head, rho=0.0, effect="lr_scaling", lr=0.1)
    train_step(zero, opt, lambda out, t: dc.head_loss(out, t, loss), x, y)
    assert torch.allclose(torch.cat([p.detach().flatten() for p in zero.parameters()]), steps["SGD"], atol=1e-12)


def test_feature_contributions_add_up_to_the_margin():
    net, x, y, loss = next(cases())
    contrib = dc.feature_contributions(net.features(x), y, net.head, loss)
    assert torch.allclose(contrib.sum(1), y * net(x)[:, 0].detach())
    net, x, y, loss = list(cases())[1]
    contrib = dc.feature_contributions(net.features(x), y, net.head, loss)
    z, b = net(x).detach(), net.head.bias.detach()
    assert torch.allclose(contrib.sum(1), z[torch.arange(len(y)), y] - z.mean(1) - (b[y] - b.mean()))


def test_lorenz_and_gini_by_hand():
    assert dc.gini(np.ones(7)) == pytest.approx(0.0)
    assert dc.gini([0, 0, 0, 5.0]) == pytest.approx(3 / 4)
    assert dc.gini(torch.tensor([0.0] * 9 + [2.0])) == pytest.approx(9 / 10)
    assert dc.gini([4, 1, 3, 2]) == pytest.approx(0.25)  # sorted 1,2,3,4: (-3 - 2 + 3 + 12) / (4 * 10)
    x, y = dc.lorenz_curve([3, 1])
    assert np.allclose(x, [0, 0.5, 1]) and np.allclose(y, [0, 0.25, 1])
    w = np.random.default_rng(0).exponential(size=200)
    x, y = dc.lorenz_curve(w)
    area = np.sum((y[1:] + y[:-1]) / 2 * np.diff(x))
    assert dc.gini(w) == pytest.approx(1 - 2 * area)  # twice the area between the diagonal and the curve


@pytest.mark.parametrize("weights,match", [([], "non-empty"), ([1.0, -0.1], ">= 0"), ([1.0, np.nan], "finite"),
                                           ([0.0, 0.0], "all weights are 0"), (np.ones((2, 2)), "1-D")])
def test_gini_rejects_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        dc.gini(weights)
    with pytest.raises(ValueError, match=match):
        dc.lorenz_curve(weights)


def test_binned_median_by_hand():
    x = np.array([0.0, 0.0, 1.0, 1.0, 2.0, 3.0])
    y = np.array([0.0, 5.0, 0.0, 5.0, 0.0, 5.0])
    v = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 7.0])
    ex, ey, med, count = dc.binned_median(x, y, v, bins=2)
    assert np.allclose(ex, [0, 1, 3]) and np.allclose(ey, [0, 2.5, 5])  # quantile edges; a value on an edge goes up
    assert count.tolist() == [[1, 1], [2, 2]]
    assert np.allclose(med, [[1.0, 2.0], [4.0, 5.5]])
    with pytest.raises(ValueError, match="one length"):
        dc.binned_median(x, y[:3], v)
    with pytest.raises(ValueError, match="bins"):
        dc.binned_median(x, y, v, bins=0)


def test_decompose_is_deterministic():
    net, x, y, loss = list(cases())[1]
    a, b = (dc.decompose(net.features(x), y, net.head, 0.3, loss) for _ in range(2))
    assert torch.equal(a.phantom_weights, b.phantom_weights) and torch.equal(a.phantom_head[0], b.phantom_head[0])


def test_zero_gradient_gives_the_real_head():
    phi, y = torch.zeros(5, 3), torch.tensor([1.0, -1, 1, -1, 1])
    head = nn.Linear(3, 1, bias=False)
    d = dc.decompose(phi, y, head, 0.5, "logistic")
    assert torch.equal(d.phantom_head[0], head.weight.detach())


def test_bad_input_gets_clear_errors():
    net, x, y, loss = next(cases())
    phi = net.features(x)
    with pytest.raises(ValueError, match=r"labels in \{-1, \+1\}"):
        dc.decompose(phi, (y > 0).double(), net.head, 0.1, "logistic")
    with pytest.raises(ValueError, match="loss must be one of"):
        dc.decompose(phi, y, net.head, 0.1, "hinge")
    with pytest.raises(ValueError, match="targets"):
        dc.decompose(phi, y[:-1], net.head, 0.1, loss)
    with pytest.raises(ValueError, match="columns"):
        dc.decompose(phi[:, :1], y, net.head, 0.1, loss)
    with pytest.raises(ValueError, match="empty"):
        dc.decompose(phi[:0], y[:0], net.head, 0.1, loss)
    with pytest.raises(ValueError, match="rho must be a finite number >= 0"):
        dc.decompose(phi, y, net.head, -1.0, loss)
    with pytest.raises(ValueError, match="one output"):
        dc.importance_weights(torch.randn(4, 3), torch.ones(4), "logistic")
    with pytest.raises(ValueError, match="integer class indices"):
        dc.importance_weights(torch.randn(4, 3), torch.tensor([0, 1, 3, 1]), "cross_entropy")
    with pytest.raises(TypeError, match="linear last layer"):
        dc.decompose(phi, y, nn.Sequential(net.head), 0.1, loss)


def test_ablated_lsam_bad_input():
    net = mlp()
    with pytest.raises(ValueError, match="effect must be one of"):
        AblatedLSAM(net.parameters(), torch.optim.SGD, head=net.head, effect="both", lr=0.1)
    opt = AblatedLSAM(net.parameters(), torch.optim.SGD, head=net.head, effect="lr_scaling", lr=0.1)
    with pytest.raises(RuntimeError, match="fast_step"):
        opt.step(lambda: None)
    with pytest.raises(ValueError, match="rho must be a finite number"):
        AblatedLSAM(net.parameters(), torch.optim.SGD, head=net.head, rho=float("inf"), effect="lr_scaling", lr=0.1)
