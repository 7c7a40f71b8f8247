"""The image replications on seeds nobody had used (samlib.experiments.replication): rows written run by run, a
stopped study resumed without retraining, stage rows that are the same runs, pairs by seed, and bad input."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from samlib.data import sources
from samlib.experiments import replication, testbeds
from samlib.experiments.cifar_mnist import CifarMnistPreset
from samlib.experiments.runs import TrainConfig


def _tiny(epochs=2):
    return CifarMnistPreset(data="offline", pair=("trouser", "dress"), n_train=48, n_probe=40, model="paper_cnn",
                            train=TrainConfig(epochs=epochs, batch_size=16))


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    if not sources.FASHION_MNIST_DIR.is_dir():
        pytest.fail(f"Fashion-MNIST is not installed at {sources.FASHION_MNIST_DIR}: run "
                    "'apt-get install dataset-fashion-mnist' (bash .ci/setup does it as root)")
    monkeypatch.setattr(replication, "ROWS", replace(replication.ROWS, path=tmp_path / "replication.csv"))
    monkeypatch.setattr(replication, "load_replication", replication.ROWS.load)
    monkeypatch.setattr(replication, "REPLICATIONS", {
        "tiny": replication.Replication(_tiny(), {"SGD": (0.0,), "LSAM": (0.1,)}, (200, 201), stages=(1,),
                                        staged_seeds=1)})
    return tmp_path


def test_rows_are_written_run_by_run_and_a_rerun_trains_nothing(tiny, monkeypatch):
    replication.main(["run", "--replications", "tiny"])
    rows = replication.load_replication()
    assert list(rows.columns) == replication.COLUMNS
    # seed 200 is staged (epoch 1, then 2); seed 201 is not
    assert list(zip(rows.seed, rows.optimizer, rows.epochs)) == [
        (200, "LSAM", 1), (200, "LSAM", 2), (200, "SGD", 1), (200, "SGD", 2), (201, "LSAM", 2), (201, "SGD", 2)]
    straight = testbeds.grid_runs(_tiny(), {"SGD": (0.0,), "LSAM": (0.1,)}, (200, 201))
    final = replication.final_rows("tiny").set_index(["optimizer", "seed"]).sort_index()
    straight = straight.set_index(["optimizer", "seed"]).sort_index()
    np.testing.assert_allclose(final.hard_probe, straight.hard_probe, atol=1e-6)  # the staged run is the same run
    monkeypatch.setattr(replication, "_train", lambda *a, **k: pytest.fail("a finished run was trained again"))
    assert replication.run_replication("tiny") == 0


def test_a_stopped_study_keeps_its_rows_and_trains_only_what_is_missing(tiny, monkeypatch):
    real = replication._train
    calls = []

    def stop_after_two(name, rep, spec, sets, checkpoints):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(spec)
        return real(name, rep, spec, sets, checkpoints)

    monkeypatch.setattr(replication, "_train", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        replication.run_replication("tiny", tiny / "checkpoints")
    assert len(replication.final_rows("tiny")) == 2
    monkeypatch.setattr(replication, "_train", real)
    assert replication.run_replication("tiny", tiny / "checkpoints") == 2
    assert len(replication.final_rows("tiny")) == 4


def test_pairs_are_matched_by_seed_and_bad_names_are_refused():
    frame = pd.DataFrame({"replication": "cluttered CIFAR-MNIST", "epochs": 20,
                          "optimizer": ["SGD", "SGD", "SAM", "SAM", "SAM"], "seed": [1, 2, 2, 1, 3],
                          "hard_probe": [0.5, 0.6, 0.7, 0.8, 0.9], "train_acc": [1, 1, 1, 0.9, 1]})
    run, sgd, train_error = replication.paired("cluttered CIFAR-MNIST", "SAM", frame=frame)
    assert run.tolist() == [0.8, 0.7] and sgd.tolist() == [0.5, 0.6]  # seed 3 has no SGD twin
    assert train_error == pytest.approx(0.05)
    with pytest.raises(ValueError, match="unknown replication 'nope'"):
        replication.final_rows("nope", frame)
    with pytest.raises(ValueError, match="has no LSAM rows"):
        replication.paired("cluttered CIFAR-MNIST", "LSAM", frame=frame)


def test_the_command_line_refuses_bad_arguments(tmp_path, capsys):
    for argv, message in ((["run", "--replications", "nope"], "invalid choice"),
                          (["run", "--replications", "cluttered CIFAR-MNIST", "cluttered CIFAR-MNIST"], "twice"),
                          (["run", "--checkpoints", str(tmp_path / "file")], "folder")):
        (tmp_path / "file").write_text("x")
        with pytest.raises(SystemExit):
            replication.main(argv)
        assert message in capsys.readouterr().err


def test_the_replications_use_seeds_no_other_study_used():
    study = testbeds.load_study()
    for rep in replication.REPLICATIONS.values():
        assert not set(rep.seeds) & set(study.seed), "a replication must use seeds nobody had used"
        assert len(rep.seeds) >= 10
    assert len(replication.REPLICATIONS["cluttered CIFAR-MNIST"].seeds) >= 20
    chosen = testbeds.best_radii(study[(study.bed == "cluttered CIFAR-MNIST") & (study.lever == "bed")
                                       & (study.seed_set == "tuning")])
    radii = replication.REPLICATIONS["cluttered CIFAR-MNIST"].optimizers
    assert {opt: radii[opt][0] for opt in chosen} == chosen  # the radii chosen on the bed's tuning seeds
    assert replace(testbeds.BEDS["cluttered CIFAR-MNIST"].preset) == replication.REPLICATIONS[
        "cluttered CIFAR-MNIST"].preset


def test_the_shipped_replications_are_complete():
    """Every run of every replication has its final row, and the staged seeds a row at every stage."""
    rows = replication.load_replication()
    assert list(rows.columns) == replication.COLUMNS
    for name, rep in replication.REPLICATIONS.items():
        final = replication.final_rows(name, rows)
        runs = {(opt, rho, seed) for opt, radii in rep.optimizers.items() for rho in radii for seed in rep.seeds}
        assert set(zip(final.optimizer, final.rho, final.seed)) == runs and len(final) == len(runs), name
        staged = rows[(rows.replication == name) & (rows.seed.isin(rep.seeds[:rep.staged_seeds]))]
        if rep.stages:
            assert sorted(set(staged.epochs)) == [*rep.stages, rep.preset.train.epochs], name
            assert len(staged) == len(rep.optimizers) * rep.staged_seeds * (len(rep.stages) + 1), name
