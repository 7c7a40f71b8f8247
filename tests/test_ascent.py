"""The one SAM ascent (samlib.optim.ascent) and every caller of it, against hand computations.

The zero-gradient rule is checked through each caller: SAM, LSAM (both steps), the decomposition's
phantom head, the batched toy sweep and the noise-memorization SAM step.
"""
import pytest
import torch
import torch.nn.functional as F

from samlib.decompose import phantom_head
from samlib.memorization.model import sam_perturbation
from samlib.optim import LSAM, SAM, ascent
from samlib.toy.model import HEAD, init_params
from samlib.toy.sweep import ToySettings, sweep_step

F64 = torch.float64


def test_one_norm_over_all_tensors_and_one_radius_per_tensor():
    a, b = torch.tensor([3.0, 0.0]), torch.tensor([[0.0], [4.0]])
    eps_a, eps_b = ascent([a, b], [0.5, 1.0])
    assert torch.allclose(eps_a, 0.5 * a / 5) and torch.allclose(eps_b, 1.0 * b / 5)


def test_adaptive_ascent_is_asam():
    w, g = torch.tensor([2.0, -1.0]), torch.tensor([1.0, 3.0])
    expected = 0.1 * w.square() * g / torch.linalg.vector_norm(w.abs() * g)
    assert torch.allclose(ascent([g], 0.1, params=[w], adaptive=True)[0], expected)


def test_unperturbed_tensors_get_no_step_and_stay_out_of_the_norm():
    eps_a, eps_b = ascent([torch.tensor([3.0, 4.0]), torch.tensor([100.0])], 1.0, perturbed=[True, False])
    assert torch.allclose(eps_a, torch.tensor([0.6, 0.8])) and torch.equal(eps_b, torch.zeros(1))


def test_eps_is_added_to_the_norm():
    assert torch.allclose(ascent([torch.tensor([3.0, 4.0])], 1.0, eps=5.0)[0], torch.tensor([0.3, 0.4]))


def test_bad_calls_name_the_argument():
    with pytest.raises(ValueError, match="no gradients"):
        ascent([], 0.1)
    with pytest.raises(ValueError, match="params"):
        ascent([torch.ones(2)], 0.1, relative=True)
    with pytest.raises(ValueError, match="rho has 1 entries"):
        ascent([torch.ones(2), torch.ones(2)], [0.1])


@pytest.mark.parametrize("eps", [0.0, 1e-12])
def test_a_zero_gradient_gives_a_zero_step_in_the_ascent(eps):
    steps = ascent([torch.zeros(3), torch.zeros(2, 2)], 0.5, eps=eps)
    assert all(torch.equal(s, torch.zeros_like(s)) for s in steps)
    batched = ascent([torch.zeros(2, 3)], torch.tensor([0.5, 1.0]), runs=True, relative=True,
                     params=[torch.ones(2, 3)])[0]
    assert torch.equal(batched, torch.zeros(2, 3))


# --- the zero-gradient rule through every caller -------------------------------------------------------


def _zero_gradient_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))


@pytest.mark.parametrize("adaptive", [False, True])
def test_sam_first_step_with_a_zero_gradient_keeps_the_weights(adaptive):
    model = _zero_gradient_model()
    before = [p.detach().clone() for p in model.parameters()]
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.1, adaptive=adaptive, eps=1e-300, lr=0.1)
    (0.0 * model(torch.randn(5, 3)).sum()).backward()
    opt.first_step()
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    opt.second_step()
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_lsam_steps_with_a_zero_head_gradient_use_the_real_head():
    model = _zero_gradient_model()
    opt = LSAM(model.parameters(), torch.optim.SGD, head=model[1], rho=0.5, eps=1e-300, lr=0.1)
    features = model[0](torch.randn(5, 3))
    _, _, real, phantom = opt._phantom_head(features, lambda out: 0.0 * out.sum())
    assert all(torch.equal(r, p) for r, p in zip(real, phantom))
    opt.fast_step(features, lambda out: 0.0 * out.sum())
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_decomposition_phantom_head_with_a_zero_gradient_is_the_head():
    weight = torch.tensor([[1.0, -2.0]])
    phantom = phantom_head(torch.zeros(4, 2), torch.tensor([1.0, -1.0, 1.0, -1.0]), (weight, None), 0.5, "logistic")
    assert torch.equal(phantom[0], weight) and phantom[1] is None


STEP = ToySettings(lr=0.1, momentum=0.0)


def test_toy_sweep_step_with_a_zero_gradient_is_a_plain_step():
    params = init_params([0, 0], hidden=4, dtype=F64)
    buffers = {k: torch.zeros_like(p) for k, p in params.items()}
    batch = (torch.zeros(2, 3, 1, dtype=F64), torch.zeros(2, 3, 2, dtype=F64), torch.ones(2, 3, dtype=F64))
    params[HEAD].zero_()  # a zero head: every gradient but the head's own is zero
    _, _, phantom = sweep_step(params, buffers, batch, torch.tensor([0.5, 0.5], dtype=F64),
                               torch.tensor([0.0, 1.0], dtype=F64), STEP)
    assert torch.isfinite(phantom).all()
    zero_grad_params = init_params([1], hidden=4, dtype=F64)
    for p in zero_grad_params.values():
        p.zero_()
    _, _, phantom = sweep_step(zero_grad_params, {k: torch.zeros_like(p) for k, p in zero_grad_params.items()},
                               tuple(t[:1] for t in batch), torch.tensor([0.5], dtype=F64),
                               torch.tensor([1.0], dtype=F64), STEP)
    assert torch.isfinite(phantom).all()


def test_memorization_sam_perturbation_of_a_zero_gradient_is_zero():
    eps = sam_perturbation(torch.zeros(2, 2, 3, 4, dtype=F64), torch.tensor([0.5, 1.0], dtype=F64))
    assert torch.equal(eps, torch.zeros_like(eps))


def test_lsam_fast_step_equals_the_hand_computed_step():
    torch.manual_seed(1)
    model = _zero_gradient_model()
    x, y = torch.randn(6, 3), torch.randint(0, 2, (6,))
    head = model[1]
    feats = model[0](x).detach()
    w, b = head.weight.detach().clone().requires_grad_(True), head.bias.detach().clone().requires_grad_(True)
    gw, gb = torch.autograd.grad(F.cross_entropy(F.linear(feats, w, b), y), [w, b])
    norm = torch.sqrt(gw.square().sum() + gb.square().sum())
    expected = (w + 0.3 * gw / norm, b + 0.3 * gb / norm)
    opt = LSAM(model.parameters(), torch.optim.SGD, head=head, rho=0.3, eps=1e-300, lr=0.1)
    _, _, _, phantom = opt._phantom_head(model[0](x), lambda out: F.cross_entropy(out, y))
    assert torch.allclose(phantom[0], expected[0]) and torch.allclose(phantom[1], expected[1])
