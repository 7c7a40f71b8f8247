"""What makes one image training run of the cluttered CIFAR-MNIST bed cheaper on the CPU, measured side by side.

    python benchmarks/image_run_cost.py                # SGD, SAM (rho 0.05), LSAM (rho 0.1): 5 repeats of 10 steps
    python benchmarks/image_run_cost.py --quick        # 2 repeats of 3 steps: about 40 s on one CPU thread
    SAMLIB_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/image_run_cost.py   # one thread (default: the book's 2)

The default run takes about 2.5 min on one thread of a 2-core AMD EPYC; inductor's first compilation adds about
30 s where its on-disk cache is cold.

The bed is ``cifar_mnist.CLUTTERED`` (the paper's PaperConvNet on 1x56x28 dominoes, its TrainConfig: lr 0.05,
momentum 0.9), batch 128 of the bed's training images. For each optimizer it times a step of

* today's step (the baseline): :func:`samlib.train.train_step` on the eager model, contiguous NCHW;
* ``torch.compile``: the same ``train_step`` with the backbone ``model.features`` compiled (inductor), so LSAM keeps
  its one-backbone-pass step; the first step's time (compilation) is printed apart, not in the ratio;
* channels-last: model and inputs in ``torch.channels_last``;
* k seeds as one grouped network (``--seeds``, 5): every conv a grouped conv (``groups=k``, group g is seed g's
  network, fed seed g's batch stacked along the channels), a per-seed head, the per-seed losses summed; SAM's and
  LSAM's ascent is per seed (each seed's own gradient norm, :func:`samlib.optim.ascent.ascent` with ``runs=True``).
  Its row is per seed-step: k single-network steps against one grouped step.

Each repeat times ``--steps`` consecutive steps of every (variant, optimizer) in turn (interleaved, so drifts in
machine load hit all alike); ms/step is the median over repeats, "x faster" the median over repeats of baseline time /
variant time. Before timing, every variant takes ``--check`` steps from the baseline's initial weights on the same
batches (the grouped network: the k seeds' networks, each against its own one-run path) and the table prints the
largest weight and loss differences from the baseline and whether they are within ``--tol`` (float32). A speed-up
is worth adopting at ``x faster >= 1.3`` with the differences within tolerance. Informational: nothing asserts on
time.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
import traceback

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from samlib.experiments import cifar_mnist
from samlib.experiments.runs import RunSpec, make_optimizer
from samlib.optim.ascent import ascent
from samlib.repro import book_threads, configure, seed_everything
from samlib.train import train_step

METHODS = {"SGD": 0.0, "SAM": 0.05, "LSAM": 0.1}  # the chapter's radii (cifar_mnist.BOOK)
VARIANTS = ("today (eager)", "torch.compile", "channels-last", "grouped seeds")
ADOPT = 1.3  # the repository's bar for a speed-up
EPS = 1e-12  # SAM's and LSAM's default eps, added to the ascent norm


class GroupedNet(nn.Module):
    """k PaperConvNets as one network: grouped convs (group g = network g) and a per-network head (k, C, D).
    Input (B, k * in_channels, H, W), network g reading channels [g * in_channels, (g + 1) * in_channels);
    output (B, k, C)."""

    def __init__(self, nets: list[nn.Module]):
        super().__init__()
        self.k = len(nets)
        layers = []
        for same in zip(*([m for m in net.features if isinstance(m, nn.Conv2d)] for net in nets)):
            c = same[0]
            conv = nn.Conv2d(self.k * c.in_channels, self.k * c.out_channels, c.kernel_size, stride=c.stride,
                             padding=c.padding, groups=self.k)
            with torch.no_grad():
                conv.weight.copy_(torch.cat([s.weight for s in same]))
                conv.bias.copy_(torch.cat([s.bias for s in same]))
            layers += [conv, nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        self.head_weight = nn.Parameter(torch.stack([n.head.weight.detach() for n in nets]).clone())
        self.head_bias = nn.Parameter(torch.stack([n.head.bias.detach() for n in nets]).clone())

    def features(self, x: Tensor) -> Tensor:
        """(B, k, D): each network's flattened features, in PaperConvNet's order."""
        f = self.convs(x)
        return f.reshape(f.shape[0], self.k, -1)

    @staticmethod
    def head(features: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return torch.einsum("bkd,kcd->bkc", features, weight) + bias

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x), self.head_weight, self.head_bias)

    def unstacked(self, g: int) -> list[Tensor]:
        """Network g's parameters, in PaperConvNet's ``parameters()`` order."""
        convs = [m for m in self.convs if isinstance(m, nn.Conv2d)]
        return [t for c in convs for t in (c.weight.chunk(self.k)[g], c.bias.chunk(self.k)[g])] + [
            self.head_weight[g], self.head_bias[g]]


def seed_losses(outputs: Tensor, y: Tensor) -> Tensor:
    """Each network's mean cross-entropy (k,), from outputs (B, k, C) and labels (B, k)."""
    return F.cross_entropy(outputs.permute(0, 2, 1), y, reduction="none").mean(0)


def grouped_step(net: GroupedNet, opt: torch.optim.Optimizer, method: str, x: Tensor, y: Tensor) -> Tensor:
    """One step of every network at once: SGD, SAM (every weight perturbed) or LSAM (fast, the head perturbed),
    the ascent of each network by its own gradient norm. The summed loss gives each network its own gradient.
    Returns the per-network losses at the real weights (k,)."""
    rho = METHODS[method]
    opt.zero_grad()
    if method == "LSAM":
        features = net.features(x)
        head = [net.head_weight, net.head_bias]
        losses = seed_losses(net.head(features.detach(), *head), y)
        grads = torch.autograd.grad(losses.sum(), head)
        steps = ascent(grads, rho, runs=True, eps=EPS)
        seed_losses(net.head(features, *(w + e for w, e in zip(head, steps))), y).sum().backward()
    else:
        losses = seed_losses(net(x), y)
        losses.sum().backward()
        if method == "SAM":
            _ascend_and_backward(net, x, y, rho)
    opt.step()
    return losses.detach()


def _ascend_and_backward(net: GroupedNet, x: Tensor, y: Tensor, rho: float) -> None:
    """SAM's second pass: every weight to its phantom value (per network), the gradient there, the weights back."""
    params = list(net.parameters())
    with torch.no_grad():
        steps = ascent([p.grad.view(net.k, -1) for p in params], rho, runs=True, eps=EPS)
        saved = [p.detach().clone() for p in params]
        for p, e in zip(params, steps):
            p.add_(e.view_as(p))
    for p in params:
        p.grad = None
    seed_losses(net(x), y).sum().backward()
    with torch.no_grad():
        for p, s in zip(params, saved):
            p.copy_(s)


def seed_batches(images: Tensor, labels: Tensor, seed: int, count: int, batch: int) -> list[tuple[Tensor, Tensor]]:
    """``count`` batches of a seed's own shuffle."""
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    return [(images[order[i * batch:(i + 1) * batch]], labels[order[i * batch:(i + 1) * batch]]) for i in range(count)]


def stacked(batches: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """The k seeds' batches as one grouped input (B, k * C, H, W) and labels (B, k)."""
    return torch.cat([x for x, _ in batches], 1), torch.stack([y for _, y in batches], 1)


class Run:
    """One (variant, optimizer): ``step(x, y)`` takes a step and returns the loss(es); ``weights()`` the weights of
    each network it trains, in PaperConvNet's order."""

    def __init__(self, step, weights, per_step: int = 1):
        self.step, self.weights, self.per_step = step, weights, per_step
        self.batches: list = []  # the check batches, then the timing batch last


def single_run(model: nn.Module, method: str, config, *, channels_last: bool = False) -> Run:
    opt = make_optimizer(model, RunSpec(method, METHODS[method]), config)
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def step(x, y):
        return train_step(model, opt, F.cross_entropy, x.contiguous(memory_format=fmt), y)[0]

    return Run(step, lambda: [list(model.parameters())])


def compiled_run(model: nn.Module, method: str, config) -> Run:
    model.features = torch.compile(model.features)
    return single_run(model, method, config)


def grouped_run(nets: list[nn.Module], method: str, config) -> Run:
    net = GroupedNet(nets)
    opt = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return Run(lambda x, y: grouped_step(net, opt, method, x, y),
               lambda: [net.unstacked(g) for g in range(net.k)], per_step=net.k)


def max_difference(a: list[list[Tensor]], b: list[list[Tensor]]) -> float:
    return max((p.detach() - q.detach()).abs().max().item() for pa, pb in zip(a, b) for p, q in zip(pa, pb))


def check(runs: dict, reference: dict, steps: int) -> tuple[dict, dict]:
    """Take ``steps`` steps of every run on its check batches; the largest weight and loss difference of each from
    the baseline (runs[(VARIANTS[0], method)], and for the grouped runs ``reference[method]``, the k one-run paths);
    the first step's wall time (a compiled run's compilation)."""
    losses, first, diffs = {}, {}, {}
    for key, run in list(runs.items()):
        try:
            start = time.perf_counter()
            losses[key] = [run.step(*run.batches[0])]
            first[key] = time.perf_counter() - start
            losses[key] += [run.step(*b) for b in run.batches[1:steps]]
        except Exception as exc:  # noqa: BLE001 - a variant that cannot run is reported, not fatal
            diffs[key] = f"failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:90]}"
            traceback.print_exc(limit=2)
            del runs[key]
    for (variant, method), run in runs.items():
        if variant == VARIANTS[3]:
            base_w, base_l = reference[method]
            ours_l = torch.stack(losses[(variant, method)]).T
        else:
            base = runs[(VARIANTS[0], method)]
            base_w, base_l = base.weights(), [torch.stack(losses[(VARIANTS[0], method)])]
            ours_l = [torch.stack(losses[(variant, method)])]
        dl = max((a - b).abs().max().item() for a, b in zip(ours_l, base_l))
        diffs[(variant, method)] = (max_difference(run.weights(), base_w), dl)
    return diffs, first


def one_run_reference(nets: list[nn.Module], method: str, config, batches: list, steps: int) -> tuple[list, list]:
    """The k seeds' networks trained alone, ``steps`` steps each: their weights and losses (the one-run path)."""
    weights, losses = [], []
    for net, seed_b in zip(nets, batches):
        run = single_run(copy.deepcopy(net), method, config)
        losses.append(torch.stack([run.step(*b) for b in seed_b[:steps]]))
        weights += run.weights()
    return weights, losses


def time_runs(runs: dict, repeats: int, steps: int, warmup: int) -> dict:
    """Seconds per step of each run (per seed-step for the grouped ones), ``steps`` steps per repeat, runs
    interleaved within each repeat; ``warmup`` untimed steps of each first."""
    for _ in range(warmup):
        for run in runs.values():
            run.step(*run.batches[-1])
    times = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            for _ in range(steps):
                run.step(*run.batches[-1])
            times[key].append((time.perf_counter() - start) / steps / run.per_step)
    return times


def build(args, sets, methods) -> tuple[dict, dict]:
    """Every (variant, optimizer) run from the same seeds' initial weights, with its batches; the grouped runs'
    one-run references."""
    config = cifar_mnist.CLUTTERED.train
    images, labels = sets.train.images, sets.train.y
    nets = []
    for seed in range(args.seeds):
        seed_everything(seed)
        nets.append(cifar_mnist.build_model(cifar_mnist.CLUTTERED, sets))
    batches = [seed_batches(images, labels, seed, args.check, args.batch) for seed in range(args.seeds)]
    runs, reference = {}, {}
    for method in methods:
        makers = {VARIANTS[0]: lambda: single_run(copy.deepcopy(nets[0]), method, config),
                  VARIANTS[1]: lambda: compiled_run(copy.deepcopy(nets[0]), method, config),
                  VARIANTS[2]: lambda: single_run(copy.deepcopy(nets[0]).to(memory_format=torch.channels_last),
                                                  method, config, channels_last=True),
                  VARIANTS[3]: lambda: grouped_run(nets, method, config)}
        for variant in args.variants:
            runs[(variant, method)] = run = makers[variant]()
            run.batches = ([stacked(list(b)) for b in zip(*batches)] if variant == VARIANTS[3] else batches[0])
        if VARIANTS[3] in args.variants:
            reference[method] = one_run_reference(nets, method, config, batches, args.check)
    return runs, reference


def report(args, times: dict, diffs: dict, first: dict, methods) -> list[tuple]:
    print(f"{'variant':<15}{'method':<6}{'ms/step':>9}{'x faster':>10}{'>=1.3x':>8}{'max|dw|':>10}{'max|dloss|':>11}"
          f"{'within tol':>11}")
    rows = []
    for variant in args.variants:
        for method in methods:
            key, base = (variant, method), times.get((VARIANTS[0], method))
            if key not in times:
                print(f"{variant:<15}{method:<6}  {diffs.get(key, 'not run')}")
                rows.append((variant, method, None, None))
                continue
            ms = statistics.median(times[key]) * 1e3
            ratio = statistics.median(b / t for b, t in zip(base, times[key])) if base else float("nan")
            dw, dl = diffs[key]
            ok = dw <= args.tol and dl <= args.tol
            if variant == VARIANTS[0]:
                print(f"{variant:<15}{method:<6}{ms:>9.1f}{ratio:>10.2f}{'-':>8}{'-':>10}{'-':>11}{'-':>11}")
            else:
                print(f"{variant:<15}{method:<6}{ms:>9.1f}{ratio:>10.2f}{'yes' if ratio >= ADOPT else 'no':>8}"
                      f"{dw:>10.1e}{dl:>11.1e}{'yes' if ok else 'NO':>11}")
            rows.append((variant, method, ratio, ok))
    compiled = [f"{m} {first[(VARIANTS[1], m)]:.1f} s" for m in methods if (VARIANTS[1], m) in first]
    if compiled:
        eager = [f"{first[(VARIANTS[0], m)]:.2f} s" for m in methods if (VARIANTS[0], m) in first]
        print(f"torch.compile, first step incl. compilation (not in the ratio): {', '.join(compiled)} "
              f"(eager first step: {', '.join(eager)}); the later models reuse the first one's compiled code, and a "
              "warm on-disk inductor cache shortens the first")
    if VARIANTS[3] in args.variants:
        print(f"grouped seeds: SGD, and SAM / LSAM with each seed's own ascent (its own gradient norm); max|dw| and "
              f"max|dloss| over the {args.seeds} seeds, each against its network trained alone")
    return rows


def main(argv=None) -> list[tuple]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps of each run before timing")
    parser.add_argument("--check", type=int, default=3, help="steps from equal weights and batches, compared")
    parser.add_argument("--tol", type=float, default=1e-5, help="largest weight / loss difference taken as equal")
    parser.add_argument("--seeds", type=int, default=5, help="networks in the grouped variant")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS[1:]), choices=list(VARIANTS[1:]),
                        help="variants beside the baseline")
    parser.add_argument("--threads", type=int, default=None, help="default: the book's ($SAMLIB_THREADS or 2)")
    parser.add_argument("--quick", action="store_true", help="2 repeats of 3 steps after 1 warm-up, 2 checked steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.warmup, args.check = 3, 2, 1, 2
    args.check = max(args.check, 1)
    args.variants = [VARIANTS[0]] + [v for v in VARIANTS[1:] if v in args.variants]
    threads = args.threads or book_threads()
    configure(seed=0, threads=threads)
    sets = cifar_mnist.load_sets(cifar_mnist.CLUTTERED)
    runs, reference = build(args, sets, args.methods)
    diffs, first = check(runs, reference, args.check)
    times = time_runs(runs, args.repeats, args.steps, args.warmup)
    shape = "x".join(map(str, sets.train.images.shape[1:]))
    print(f"cluttered CIFAR-MNIST: PaperConvNet on {shape} dominoes, batch {args.batch}, {threads} thread(s), "
          f"torch {torch.__version__}; median of {args.repeats} interleaved repeats of {args.steps} steps "
          f"(after {args.warmup} warm-up)")
    print(f"x faster: today's ms/step / the variant's (grouped: {args.seeds} single-network steps / one grouped step, "
          f"ms per seed-step); differences after {args.check} steps from equal weights and batches, tol {args.tol:g} "
          "(float32)")
    return report(args, times, diffs, first, args.methods)


if __name__ == "__main__":
    main()
