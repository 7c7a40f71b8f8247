"""The 2-D surface of the first chapter against closed forms."""
import pytest
import torch

from samlib.landscape import grid_points, product_loss, sam_objective, sam_path, sharpness, valley_points


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
    points = grid_points(xs, xs)
    assert points.shape == (31, 31, 2) and points[20, 10].tolist() == [xs[10].item(), xs[20].item()]
    plain = product_loss(points)
    torch.testing.assert_close(sam_objective(product_loss, points, 0.0), plain)
    assert (sam_objective(product_loss, points, 0.2) >= plain).all()


def test_sam_objective_on_the_valley_matches_brute_force_over_the_disk():
    """Max over the circle (the function's shortcut) equals the max over a dense disk grid."""
    rho = 0.3
    for w in valley_points(torch.tensor([0.6, 1.0, 2.0], dtype=torch.float64)):
        offsets = grid_points(*(torch.linspace(-rho, rho, 301, dtype=torch.float64),) * 2).reshape(-1, 2)
        disk = offsets[offsets.norm(dim=1) <= rho]
        brute = product_loss(w + disk).max().item()
        circle = sam_objective(product_loss, w, rho).item()
        assert brute <= circle + 1e-6 and circle == pytest.approx(brute, rel=5e-3)
    # balanced weights are the flattest: the objective along the valley is lowest at t = 1
    ts = torch.linspace(0.5, 2.0, 151, dtype=torch.float64)
    assert ts[sam_objective(product_loss, valley_points(ts), rho).argmin()].item() == pytest.approx(1.0, abs=0.02)


def test_bad_input():
    with pytest.raises(ValueError, match="last dimension of 2"):
        product_loss(torch.zeros(3))
    with pytest.raises(ValueError, match="steps must be a non-negative integer, got -1"):
        sam_path(product_loss, [1.0, 1.0], rho=0.1, lr=0.1, steps=-1)
