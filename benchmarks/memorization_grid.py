"""The noise-memorization grid trained batched vs one run at a time, side by side in one run.

    python benchmarks/memorization_grid.py            # the book's grid: 4 n x 6 ‖μ‖ x 3 seeds x (SGD, SAM)
    python benchmarks/memorization_grid.py --every 4  # loop over every 4th cell instead of every 8th

First every run of the grid is trained at once (:func:`samlib.memorization.train.train_runs`); then
the SGD and SAM runs of every ``--every``-th (n, ‖μ‖, seed) cell are trained again, one
``train_runs([run])`` call each. The report compares the two on those runs (weights, epochs, test
errors: equal up to floating-point summation order) and the time per run of each way.
Informational: nothing asserts on time.
"""
from __future__ import annotations

import argparse
import time

import torch

from samlib.memorization.data import DataSetting, grid_runs
from samlib.memorization.train import Training, train_runs


def loop_subset(runs: list, every: int) -> list[int]:
    """Indices of the runs of every ``every``-th (n, ‖μ‖, seed) cell (all radii of that cell)."""
    cells = list(dict.fromkeys((r.n, r.mu_norm, r.seed) for r in runs))
    chosen = set(cells[::every])
    return [i for i, r in enumerate(runs) if (r.n, r.mu_norm, r.seed) in chosen]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ns", type=int, nargs="+", default=[20, 40, 80, 160])
    parser.add_argument("--mus", type=float, nargs="+", default=[0.5, 1, 1.5, 2, 3, 4])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tau", type=float, default=0.5)
    parser.add_argument("--d", type=int, default=1000)
    parser.add_argument("--width", type=int, default=20)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--every", type=int, default=8, help="loop over the runs of every k-th cell")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    setting = DataSetting(d=args.d, n_test=args.n_test)
    training = Training(width=args.width, max_epochs=args.max_epochs, log_every=None)
    runs = grid_runs(args.ns, args.mus, args.seeds, [0.0, args.tau])
    start = time.perf_counter()
    batched = train_runs(runs, setting, training, progress=False)
    batched_s = time.perf_counter() - start

    subset = loop_subset(runs, args.every)
    start = time.perf_counter()
    alone = [train_runs([runs[i]], setting, training, progress=False) for i in subset]
    loop_s = time.perf_counter() - start

    weights = torch.cat([a.weights for a in alone])
    report = {
        "runs": len(runs), "loop_runs": len(subset), "batched_s": batched_s, "loop_s": loop_s,
        "batched_per_run_s": batched_s / len(runs), "loop_per_run_s": loop_s / len(subset),
        "max_weight_difference": (weights - batched.weights[subset]).abs().max().item(),
        "max_test_error_difference": (torch.cat([a.test_error for a in alone])
                                      - batched.test_error[subset]).abs().max().item(),
        "epochs_equal": bool((torch.cat([a.epochs for a in alone]) == batched.epochs[subset]).all()),
    }
    report["speedup"] = report["loop_per_run_s"] / report["batched_per_run_s"]
    print(f"{'way':<14}{'runs':>6}{'seconds':>10}{'s per run':>11}")
    print(f"{'batched':<14}{len(runs):>6}{batched_s:>10.2f}{report['batched_per_run_s']:>11.3f}")
    print(f"{'one at a time':<14}{len(subset):>6}{loop_s:>10.2f}{report['loop_per_run_s']:>11.3f}")
    print(f"time per run, one at a time / batched: {report['speedup']:.1f}x")
    print(f"on the looped runs: max |weight difference| {report['max_weight_difference']:.2e}, "
          f"max |test error difference| {report['max_test_error_difference']:.4f}, "
          f"epochs equal: {report['epochs_equal']}")
    return report


if __name__ == "__main__":
    main()
