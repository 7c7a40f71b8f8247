"""LSAM: a hand computation, fast == generic, and bad input."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from samlib.models import FeaturesAndHead, SmallCNN
from samlib.optim import LSAM, SAM, backward, lsam_param_groups
from samlib.train import train_step

pytestmark = pytest.mark.usefixtures("float64")  # tests/conftest.py: float64 as the default dtype


def tanh_net(d=4, h=5, c=3):
    return FeaturesAndHead(nn.Sequential(nn.Linear(d, h), nn.Tanh()), nn.Linear(h, c))


def hand_lsam_step(x, y, A, a, V, c, rho, lr):
    """One LSAM step on mean((tanh(x A^T + a) V^T + c - y)**2) with plain tensor algebra."""
    z = torch.tanh(x @ A.T + a)
    scale = 2 / y.numel()
    d = scale * (z @ V.T + c - y)                      # dL/dlogits at the real head
    gV, gc = d.T @ z, d.sum(0)
    norm = torch.sqrt((gV**2).sum() + (gc**2).sum())
    V_ph, c_ph = V + rho * gV / norm, c + rho * gc / norm
    d_ph = scale * (z @ V_ph.T + c_ph - y)              # dL/dlogits at the phantom head
    dpre = (d_ph @ V_ph) * (1 - z**2)                   # back through tanh, features unchanged
    return A - lr * dpre.T @ x, a - lr * dpre.sum(0), V - lr * d_ph.T @ z, c - lr * d_ph.sum(0)


def params_of(net):
    return [p.detach().clone() for p in (net.features[0].weight, net.features[0].bias, net.head.weight, net.head.bias)]


def one_step(opt, net, x, y, form):
    """One LSAM step on mean((net(x) - y)**2): the one-backbone-pass ``fast`` form or the ``generic`` two-pass one."""
    loss_fn = lambda out: ((out - y) ** 2).mean()  # noqa: E731
    if form == "fast":
        opt.fast_step(net.features(x), loss_fn)
    else:
        opt.step(lambda: backward(loss_fn(net(x))))


@pytest.mark.parametrize("form", ["fast", "generic"])
def test_one_lsam_step_matches_hand_computation(form):
    net = tanh_net()
    x, y = torch.randn(10, 4), torch.randn(10, 3)
    start = params_of(net)
    expected = hand_lsam_step(x, y, *start, rho=0.3, lr=0.1)
    one_step(LSAM(net.parameters(), torch.optim.SGD, head=net.head, rho=0.3, lr=0.1), net, x, y, form)
    for got, want in zip(params_of(net), expected):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # a zero ascent would give SGD's step (rho = 0), which is far from the expected one
    sgd_step = hand_lsam_step(x, y, *start, rho=0.0, lr=0.1)
    assert max((a - b).abs().max().item() for a, b in zip(expected, sgd_step)) > 1e-3


@pytest.mark.parametrize("form", ["fast", "generic"])
def test_relative_lsam_is_lsam_at_rho_times_the_head_norm(form):
    """rho * ||(V, c)|| as the radius: the hand step at that absolute radius (the backbone's weights do not count)."""
    net = tanh_net()
    x, y = torch.randn(10, 4), torch.randn(10, 3)
    start = params_of(net)
    head_norm = torch.sqrt((start[2] ** 2).sum() + (start[3] ** 2).sum()).item()
    expected = hand_lsam_step(x, y, *start, rho=0.3 * head_norm, lr=0.1)
    one_step(LSAM(net.parameters(), torch.optim.SGD, head=net.head, rho=0.3, relative=True, lr=0.1), net, x, y, form)
    for got, want in zip(params_of(net), expected):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_fast_and_generic_lsam_agree_on_a_cnn_with_batchnorm():
    torch.manual_seed(1)
    fast_net = SmallCNN(in_channels=1, num_classes=3, widths=(4, 8), batchnorm=True)
    generic_net = copy.deepcopy(fast_net)
    fast = LSAM(fast_net.parameters(), torch.optim.SGD, head=fast_net.head, rho=0.2, lr=0.05, momentum=0.9)
    generic = SAM(lsam_param_groups(generic_net.parameters(), generic_net.head), torch.optim.SGD, rho=0.2,
                  lr=0.05, momentum=0.9, model=generic_net)
    for _ in range(3):
        x, y = torch.randn(12, 1, 8, 8), torch.randint(0, 3, (12,))
        loss_fast, _ = train_step(fast_net, fast, F.cross_entropy, x, y)
        loss_generic = generic.step(lambda: backward(F.cross_entropy(generic_net(x), y)))
        torch.testing.assert_close(loss_fast, loss_generic.detach())
    for (name, a), b in zip(fast_net.state_dict().items(), generic_net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=name)


def test_fast_and_generic_lsam_agree_for_a_head_without_bias():
    nets = [FeaturesAndHead(nn.Sequential(nn.Linear(4, 5), nn.Tanh()), nn.Linear(5, 3, bias=False))]
    nets.append(copy.deepcopy(nets[0]))
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    fast, generic = (LSAM(n.parameters(), torch.optim.SGD, head=n.head, rho=0.3, lr=0.1) for n in nets)
    fast.fast_step(nets[0].features(x), lambda out: F.cross_entropy(out, y))
    generic.step(lambda: backward(F.cross_entropy(nets[1](x), y)))
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_lsam_moves_the_backbone_but_perturbs_only_the_head():
    net = tanh_net()
    x, y = torch.randn(10, 4), torch.randn(10, 3)
    before = params_of(net)
    opt = LSAM(net.parameters(), torch.optim.SGD, head=net.head, rho=0.3, lr=0.1)
    ((net(x) - y) ** 2).mean().backward()
    opt.first_step()
    perturbed = params_of(net)
    assert torch.equal(perturbed[0], before[0]) and torch.equal(perturbed[1], before[1])
    assert not torch.equal(perturbed[2], before[2])
    opt.second_step()
    assert not torch.equal(params_of(net)[0], before[0])


def test_lsam_groups_keep_group_options_and_drop_empty_parts():
    net = tanh_net()
    groups = lsam_param_groups([{"params": list(net.features.parameters()), "lr": 0.5},
                                {"params": list(net.head.parameters()), "lr": 0.1}], net.head)
    assert [(g["perturb"], g["lr"], len(g["params"])) for g in groups] == [(False, 0.5, 2), (True, 0.1, 2)]


def test_head_that_is_not_linear_is_refused_with_advice():
    net = FeaturesAndHead(nn.Identity(), nn.Linear(3, 2))
    with pytest.raises(TypeError, match="LSAM perturbs a linear last layer, but head is Sequential"):
        LSAM(net.parameters(), torch.optim.SGD, head=nn.Sequential(net.head), lr=0.1)


def test_head_outside_params_is_refused():
    net = tanh_net()
    with pytest.raises(ValueError, match="head's parameters are not all among params"):
        LSAM(net.features.parameters(), torch.optim.SGD, head=net.head, lr=0.1)


def test_adaptive_lsam_points_to_sam_with_lsam_groups():
    net = tanh_net()
    with pytest.raises(ValueError, match="adaptive=True"):
        LSAM(net.parameters(), torch.optim.SGD, head=net.head, adaptive=True, lr=0.1)


def test_bad_rho_and_feature_shape_are_refused():
    net = tanh_net()
    with pytest.raises(ValueError, match="rho must be a finite number"):
        LSAM(net.parameters(), torch.optim.SGD, head=net.head, rho=float("nan"), lr=0.1)
    opt = LSAM(net.parameters(), torch.optim.SGD, head=net.head, lr=0.1)
    with pytest.raises(ValueError, match=r"features must have shape \(batch, 5\)"):
        opt.fast_step(torch.randn(4, 7), lambda out: out.sum())
