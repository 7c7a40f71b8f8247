"""The benchmark still runs and reports every method (its timings are not asserted)."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_step_cost_benchmark_runs(capsys):
    spec = importlib.util.spec_from_file_location("step_cost", ROOT / "benchmarks" / "step_cost.py")
    step_cost = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(step_cost)
    rows = step_cost.main(["--batch", "4", "--size", "8", "--widths", "4", "8", "--rounds", "2", "--warmup", "0"])
    assert [name for name, _, _ in rows] == ["SGD", "SAM", "generic LSAM", "fast LSAM", "IW-only", "LR-only"]
    assert rows[0][2] == 1.0
    assert "fast LSAM" in capsys.readouterr().out


def test_toy_sweep_benchmark_agrees_with_the_loop(capsys):
    spec = importlib.util.spec_from_file_location("toy_sweep", ROOT / "benchmarks" / "toy_sweep.py")
    toy_sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(toy_sweep)
    report = toy_sweep.main(["--steps", "5", "--n", "40", "--hidden", "4"])
    assert report["runs"] == 21 and report["max_diff"] < 1e-4 and report["max_diff_small_rho"] <= report["max_diff"]
    assert "faster batched" in capsys.readouterr().out


def test_distributed_step_cost_benchmark_runs_both_world_sizes(capsys):
    spec = importlib.util.spec_from_file_location("distributed_step_cost",
                                                  ROOT / "benchmarks" / "distributed_step_cost.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(["--batch", "4", "--size", "8", "--widths", "4", "8", "--rounds", "1", "--warmup", "0"])
    assert [name for name, _, _ in report["ddp"]] == list(bench.METHODS)
    assert dict((name, ratio) for name, _, ratio in report["ddp"])["SAM, 1 process"] == 1.0
    out = capsys.readouterr().out
    assert "SAM, DDP per_device" in out
    assert (report["amp"] is None) == ("mixed-precision" in out and "skipped" in out)


def test_image_run_cost_benchmark_runs_and_its_variants_compute_the_same(capsys):
    """Channels-last and grouped seeds (torch.compile is left to the benchmark's own runs: its first compilation
    takes half a minute) take the baseline's steps within the benchmark's tolerance."""
    spec = importlib.util.spec_from_file_location("image_run_cost", ROOT / "benchmarks" / "image_run_cost.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.main(["--batch", "16", "--steps", "1", "--repeats", "1", "--warmup", "0", "--check", "1",
                       "--seeds", "2", "--variants", "channels-last", "grouped seeds"])
    assert {(variant, method) for variant, method, _, _ in rows} == {
        (variant, method) for variant in ("today (eager)", "channels-last", "grouped seeds")
        for method in ("SGD", "SAM", "LSAM")}
    assert all(ok for variant, _, _, ok in rows if variant != "today (eager)")
    assert "x faster" in capsys.readouterr().out
