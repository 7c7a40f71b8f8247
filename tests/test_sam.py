"""SAM against hand computations, and the bugs of the popular implementation it must not have."""
import copy
import math
import warnings

import pytest
import torch
from torch import nn

from samlib.optim import SAM, backward, frozen_bn_stats

pytestmark = pytest.mark.usefixtures("float64")  # tests/conftest.py: float64 as the default dtype


def regression_data(n=8, d=3):
    x = torch.randn(n, d)
    y = torch.randn(n)
    return x, y


def mse_grads(x, y, w, b):
    """Gradient of mean((x @ w + b - y)**2) by hand."""
    r = x @ w + b - y
    return 2 * x.T @ r / len(y), 2 * r.mean()


def test_one_sam_step_matches_hand_computation():
    x, y = regression_data()
    w0, b0 = torch.randn(3), torch.tensor(0.3)
    rho, lr = 0.2, 0.1
    gw, gb = mse_grads(x, y, w0, b0)
    norm = torch.sqrt((gw**2).sum() + gb**2)
    ew, eb = rho * gw / norm, rho * gb / norm
    pw, pb = mse_grads(x, y, w0 + ew, b0 + eb)
    expected_w, expected_b = w0 - lr * pw, b0 - lr * pb

    w, b = nn.Parameter(w0.clone()), nn.Parameter(b0.clone())
    opt = SAM([w, b], torch.optim.SGD, rho=rho, lr=lr)
    opt.step(lambda: backward(((x @ w + b - y) ** 2).mean()))

    torch.testing.assert_close(w.detach(), expected_w, rtol=0, atol=1e-12)
    torch.testing.assert_close(b.detach(), expected_b, rtol=0, atol=1e-12)
    # the step really differs from SGD's (a SAM whose eps is zero would fail above)
    assert (expected_w - (w0 - lr * gw)).abs().max() > 1e-3


def test_first_and_second_step_equal_step_closure():
    x, y = regression_data()
    w1, w2 = nn.Parameter(torch.randn(3)), None
    w2 = nn.Parameter(w1.detach().clone())
    opt1 = SAM([w1], torch.optim.SGD, rho=0.1, lr=0.1, momentum=0.9)
    opt2 = SAM([w2], torch.optim.SGD, rho=0.1, lr=0.1, momentum=0.9)
    for _ in range(3):
        opt1.step(lambda: backward(((x @ w1 - y) ** 2).mean()))
        ((x @ w2 - y) ** 2).mean().backward()
        opt2.first_step(zero_grad=True)
        ((x @ w2 - y) ** 2).mean().backward()
        opt2.second_step(zero_grad=True)
    torch.testing.assert_close(w1, w2, rtol=0, atol=0)


def test_step_returns_loss_at_real_weights():
    x, y = regression_data()
    w = nn.Parameter(torch.randn(3))
    expected = ((x @ w - y) ** 2).mean().item()
    loss = SAM([w], torch.optim.SGD, rho=0.5, lr=0.1).step(lambda: backward(((x @ w - y) ** 2).mean()))
    assert loss.item() == pytest.approx(expected)


def test_adaptive_ascent_matches_hand_computation():
    x, y = regression_data()
    w0 = torch.randn(3)
    rho = 0.3
    g, _ = mse_grads(x, y, w0, torch.tensor(0.0))
    e = rho * w0**2 * g / torch.linalg.norm(w0.abs() * g)
    w = nn.Parameter(w0.clone())
    opt = SAM([w], torch.optim.SGD, rho=rho, adaptive=True, lr=0.1)
    ((x @ w - y) ** 2).mean().backward()
    opt.first_step()
    torch.testing.assert_close(w.detach(), w0 + e, rtol=0, atol=1e-12)


def test_relative_ascent_scales_the_radius_by_the_weight_norm():
    x, y = regression_data()
    w0, b0 = torch.randn(3), torch.tensor(0.3)
    rho = 0.05
    gw, gb = mse_grads(x, y, w0, b0)
    radius = rho * torch.sqrt((w0**2).sum() + b0**2)  # one norm over every perturbed weight, like the gradient's
    norm = torch.sqrt((gw**2).sum() + gb**2)
    w, b = nn.Parameter(w0.clone()), nn.Parameter(b0.clone())
    opt = SAM([w, b], torch.optim.SGD, rho=rho, relative=True, lr=0.1)
    ((x @ w + b - y) ** 2).mean().backward()
    opt.first_step()
    torch.testing.assert_close(w.detach(), w0 + radius * gw / norm, rtol=0, atol=1e-12)
    torch.testing.assert_close(b.detach(), b0 + radius * gb / norm, rtol=0, atol=1e-12)
    with pytest.raises(TypeError, match="relative must be True or False"):
        SAM([w], torch.optim.SGD, rho=rho, relative="yes", lr=0.1)


def test_rho_zero_is_the_base_optimizer():
    x, y = regression_data()
    w_sam, w_sgd = nn.Parameter(torch.randn(3)), None
    w_sgd = nn.Parameter(w_sam.detach().clone())
    sam = SAM([w_sam], torch.optim.SGD, rho=0.0, lr=0.1, momentum=0.9)
    sgd = torch.optim.SGD([w_sgd], lr=0.1, momentum=0.9)
    for _ in range(3):
        sam.step(lambda: backward(((x @ w_sam - y) ** 2).mean()))
        sgd.zero_grad()
        ((x @ w_sgd - y) ** 2).mean().backward()
        sgd.step()
    torch.testing.assert_close(w_sam, w_sgd, rtol=0, atol=1e-14)


def test_weight_without_grad_in_second_pass_is_restored():
    """davda54/sam leaves such a weight at w + e for ever (it restores by p.grad is not None)."""
    used, sometimes = nn.Parameter(torch.randn(3)), nn.Parameter(torch.randn(3))
    before = sometimes.detach().clone()
    opt = SAM([used, sometimes], torch.optim.SGD, rho=0.5, lr=0.0)
    (used.sum() ** 2 + sometimes.sum() ** 2).backward()
    opt.first_step(zero_grad=True)
    assert not torch.equal(sometimes.detach(), before)  # it was perturbed
    (used.sum() ** 2).backward()  # the branch is skipped in pass 2
    opt.second_step(zero_grad=True)
    assert torch.equal(sometimes.detach(), before)


def test_zero_gradient_gives_no_nan_and_no_move():
    w = nn.Parameter(torch.randn(3))
    before = w.detach().clone()
    SAM([w], torch.optim.SGD, rho=0.1, lr=0.1).step(lambda: backward((w * 0).sum()))
    assert torch.equal(w.detach(), before)


def test_only_perturbed_groups_move_and_the_norm_runs_over_them():
    x, y = regression_data()
    w0, b0 = torch.randn(3), torch.tensor(0.5)
    w, b = nn.Parameter(w0.clone()), nn.Parameter(b0.clone())
    opt = SAM([{"params": [w], "perturb": False}, {"params": [b]}], torch.optim.SGD, rho=0.2, lr=0.1)
    ((x @ w + b - y) ** 2).mean().backward()
    opt.first_step()
    _, gb = mse_grads(x, y, w0, b0)
    assert torch.equal(w.detach(), w0)
    torch.testing.assert_close(b.detach(), b0 + 0.2 * gb / gb.abs())


def test_state_dict_round_trip_resumes_exactly():
    x, y = regression_data()
    loss = lambda w: ((x @ w - y) ** 2).mean()  # noqa: E731
    start = torch.randn(3)
    w_ref = nn.Parameter(start.clone())
    ref = SAM([w_ref], torch.optim.SGD, rho=0.1, lr=0.05, momentum=0.9)
    for _ in range(5):
        ref.step(lambda: backward(loss(w_ref)))

    w = nn.Parameter(start.clone())
    opt = SAM([w], torch.optim.SGD, rho=0.1, lr=0.05, momentum=0.9)
    for _ in range(2):
        opt.step(lambda: backward(loss(w)))
    saved = opt.state_dict()
    assert "momentum_buffer" in saved["state"][0]  # davda54 saves its own state only
    assert saved["param_groups"][0]["rho"] == 0.1
    w2 = nn.Parameter(w.detach().clone())
    opt2 = SAM([w2], torch.optim.SGD, rho=0.7, lr=1.0, momentum=0.9)
    opt2.load_state_dict(saved)
    assert opt2.param_groups is opt2.base_optimizer.param_groups
    for _ in range(3):
        opt2.step(lambda: backward(loss(w2)))
    torch.testing.assert_close(w2, w_ref, rtol=0, atol=1e-14)


def test_lr_scheduler_drives_the_base_optimizer_without_warnings():
    w = nn.Parameter(torch.randn(3))
    opt = SAM([w], torch.optim.SGD, rho=0.1, lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            (w**2).sum().backward()
            opt.first_step(zero_grad=True)
            (w**2).sum().backward()
            opt.second_step(zero_grad=True)
            sched.step()
    assert opt.base_optimizer.param_groups[0]["lr"] == pytest.approx(0.25)


def test_added_param_group_gets_sam_and_base_defaults():
    w, extra = nn.Parameter(torch.randn(3)), nn.Parameter(torch.randn(2))
    opt = SAM([w], torch.optim.SGD, rho=0.1, lr=0.1, momentum=0.9)
    opt.add_param_group({"params": [extra], "rho": 0.3})
    assert opt.param_groups[1]["rho"] == 0.3 and opt.param_groups[1]["momentum"] == 0.9
    opt.step(lambda: backward((w**2).sum() + (extra**2).sum()))


def test_batchnorm_running_stats_move_once_per_step():
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    reference = copy.deepcopy(model)
    reference(x)  # one forward in train mode: what one step should do to the running stats
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.5, lr=0.1, model=model)
    opt.step(lambda: backward(nn.functional.cross_entropy(model(x), y)))
    bn, ref_bn = model[1], reference[1]
    torch.testing.assert_close(bn.running_mean, ref_bn.running_mean)
    torch.testing.assert_close(bn.running_var, ref_bn.running_var)
    assert bn.num_batches_tracked.item() == 1


def test_frozen_bn_stats_restores_even_on_error():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(RuntimeError, match="boom"):
        with frozen_bn_stats(bn):
            bn(torch.randn(8, 3))
            raise RuntimeError("boom")
    assert torch.equal(bn.running_mean, torch.zeros(3)) and bn.num_batches_tracked.item() == 0


@pytest.mark.parametrize("rho", [-0.1, math.nan, math.inf, -math.inf])
def test_bad_rho_is_a_value_error(rho):
    with pytest.raises(ValueError, match="rho must be a finite number >= 0"):
        SAM([nn.Parameter(torch.zeros(1))], torch.optim.SGD, rho=rho, lr=0.1)


@pytest.mark.parametrize("rho", ["0.1", None, True])
def test_non_numeric_rho_is_a_type_error(rho):
    with pytest.raises(TypeError, match="rho must be a finite number >= 0, got"):
        SAM([nn.Parameter(torch.zeros(1))], torch.optim.SGD, rho=rho, lr=0.1)


def test_bad_rho_in_a_param_group_is_refused():
    with pytest.raises(ValueError, match="rho must be"):
        SAM([{"params": [nn.Parameter(torch.zeros(1))], "rho": -1.0}], torch.optim.SGD, lr=0.1)


def test_optimizer_instance_instead_of_class_says_what_to_pass():
    w = nn.Parameter(torch.zeros(1))
    with pytest.raises(TypeError, match="pass the class and its keyword arguments"):
        SAM([w], torch.optim.SGD([w], lr=0.1), lr=0.1)
    with pytest.raises(TypeError, match="torch.optim.Optimizer subclass"):
        SAM([w], torch.nn.Linear, lr=0.1)


def test_no_parameters_is_a_value_error():
    with pytest.raises(ValueError, match="SAM got no parameters"):
        SAM([], torch.optim.SGD, lr=0.1)


def test_misuse_of_the_two_step_protocol_is_explained():
    w = nn.Parameter(torch.randn(2))
    opt = SAM([w], torch.optim.SGD, rho=0.1, lr=0.1)
    (w**2).sum().backward()
    opt.first_step()
    with pytest.raises(RuntimeError, match="first_step\\(\\) was called twice"):
        opt.first_step()
    with pytest.raises(RuntimeError, match="needs a closure"):
        opt.step()
