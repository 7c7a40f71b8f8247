"""The 2-D surface of the first chapter against closed forms."""
import pytest
import torch

from samlib.landscape import loss_grid, product_loss, sam_objective, sam_path, sharpness


def test_rho_zero_path_is_gradient_descent_by_hand():
    w = torch.tensor([2.0, 0.5], dtype=torch.float64)
    path = sam_path(product_loss, w, rho=0.0, lr=0.1, steps=3)
    for _ in range(3):
        r = w[0] * w[1] - 1
        w = w - 0.1 * r * torch.stack([w[1], w[0]])
    torch.testing.assert_close(path.end, w)
    torch.testing.assert_close(path.phantoms, path.points[:-1])


def test_phantom_points_lie_on_the_rho_sphere_uphill():
    path = sam_path(product_loss, [2.5, 0.1], rho=0.3, lr=0.05, steps=20)
    distances = (path.phantoms - path.points[:-1]).norm(dim=1)
    torch.testing.assert_close(distances, torch.full_like(distances, 0.3))
    assert (product_loss(path.phantoms) > path.losses[:-1]).all()


def test_sharpness_along_the_valley_is_t2_plus_inverse_t2():
    for t in (0.5, 1.0, 2.5):
        assert sharpness(product_loss, torch.tensor([t, 1 / t])) == pytest.approx(t**2 + 1 / t**2)


def test_sam_objective_bounds_the_loss_and_reduces_to_it_at_rho_zero():
    xs = torch.linspace(-1, 2, 31, dtype=torch.float64)
    plain = loss_grid(product_loss, xs, xs)
    torch.testing.assert_close(sam_objective(product_loss, xs, xs, 0.0), plain)
    assert (sam_objective(product_loss, xs, xs, 0.2) >= plain).all()
    assert plain[20, 10].item() == pytest.approx(product_loss(torch.tensor([xs[10], xs[20]])).item())


def test_bad_input():
    with pytest.raises(ValueError, match="last dimension of 2"):
        product_loss(torch.zeros(3))
    with pytest.raises(ValueError, match="steps must be >= 0"):
        sam_path(product_loss, [1.0, 1.0], rho=0.1, lr=0.1, steps=-1)
