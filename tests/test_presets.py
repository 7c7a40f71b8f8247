"""The toy, mechanism and noise-memorization presets: the notebooks' parameters, picked by the scale."""
import pytest

from samlib import scale
from samlib.memorization import presets as memorization
from samlib.memorization.data import DataSetting, grid_runs
from samlib.memorization.data import Run as PatchRun
from samlib.memorization.train import Training
from samlib.toy import presets as toy
from samlib.toy.sweep import BOOK_SETTINGS, Run, ToySettings, grid


@pytest.fixture
def paper_scale():
    scale.set_scale("paper")
    yield
    scale.set_scale(None)


def test_presets_follow_the_scale(paper_scale):
    assert toy.toy_preset() is toy.TOY_PAPER and toy.mechanism_preset() is toy.MECHANISM_PAPER
    assert memorization.preset() is memorization.PAPER
    scale.set_scale("book")
    assert toy.toy_preset() is toy.TOY_BOOK and toy.mechanism_preset() is toy.MECHANISM_BOOK
    assert memorization.preset() is memorization.BOOK


def test_the_toy_preset_holds_the_notebook_values():
    book, paper = toy.TOY_BOOK, toy.TOY_PAPER
    assert book.settings is BOOK_SETTINGS and book.turns == (0.5, 0.75, 1.0) and book.seeds == tuple(range(20))
    assert book.lsam_rhos == (0.3, 0.5, 1.0, 2.0) and book.sam_rhos == (0.02, 0.05, 0.1)
    assert (book.show_turns, book.show_seed) == (0.75, 0)
    assert book.window_settings == ToySettings(**{**BOOK_SETTINGS.__dict__, "head_norm": 0.5, "easy_scale": 0.5,
                                                  "lr": 0.1})
    assert (book.window_rho, book.window_turns) == (0.5, 1.0)
    assert paper.seeds == tuple(range(50))
    assert toy.ToyPreset(seeds=paper.seeds) == paper  # nothing else changes
    assert all(type(s) is int for s in paper.seeds)
    assert len({book, paper}) == 2  # hashable


def test_the_toy_preset_uses_the_studys_tuning_seeds_and_its_open_window():
    from samlib.toy import study

    assert toy.TOY_BOOK.seeds == study.TUNING_SEEDS
    assert study.LEVERS["open_window"].settings == toy.TOY_BOOK.window_settings
    assert toy.TOY_BOOK.window_rho in study.LEVERS["open_window"].rhos


def test_the_toy_run_builders_are_the_notebooks_runs():
    book = toy.TOY_BOOK
    turns, seeds = [0.5, 0.75, 1.0], list(range(20))
    assert book.main_runs() == grid({"SGD": [0.0], "LSAM": [0.3, 0.5, 1.0, 2.0]}, turns, seeds)
    assert book.sam_runs() == grid({"SAM": [0.02, 0.05, 0.1]}, turns, seeds)
    assert book.control_runs() == [Run("SGD", 0.0, t, s, hard_only=True) for t in turns for s in seeds]
    assert book.window_runs() == [Run("SGD", 0.0, 1.0, 0), Run("LSAM", 0.5, 1.0, 0)]
    assert [len(p.main_runs()) for p in (book, toy.TOY_PAPER)] == [5 * 3 * 20, 5 * 3 * 50]
    assert (len(book.sam_runs()), len(book.control_runs())) == (180, 60)


def test_the_mechanism_preset_holds_the_notebook_values():
    book, paper = toy.MECHANISM_BOOK, toy.MECHANISM_PAPER
    assert book.settings is BOOK_SETTINGS and book.turns == (0.5, 0.75, 1.0) and book.seeds == tuple(range(5))
    assert book.rhos == (0.3, 1.0, 2.0) and book.lsam_rho == 1.0
    assert book.snapshots == (10, 20, 30, 40, 50, 60, 80, 100, 150, 200, 400, 800, 1600)
    assert (book.show_turns, book.show_seed, book.match_loss, book.checkpoint_step) == (0.75, 0, 1e-3, 400)
    assert paper == toy.MechanismPreset(seeds=tuple(range(20)))
    rhos = [0.3, 1.0, 2.0]
    assert book.runs() == grid({"SGD": [0.0], "LSAM": rhos, "IW-only": rhos, "LR-only": rhos},
                               [0.5, 0.75, 1.0], list(range(5)))
    assert (len(book.runs()), len(paper.runs())) == (10 * 3 * 5, 10 * 3 * 20)


def test_the_memorization_preset_holds_the_notebook_values():
    book, paper = memorization.BOOK, memorization.PAPER
    assert book.setting == DataSetting(d=1000, sigma_p=1.0, p=0.1, n_test=2000)
    assert paper.setting == DataSetting(d=1000, sigma_p=1.0, p=0.1, n_test=10_000)
    training = Training(width=20, init_std=0.01, lr=1.0, batch_size=10, max_epochs=100, stop_loss=0.05, log_every=None)
    assert book.training == training and paper.training is book.training
    assert book.tau == paper.tau == 0.5
    assert book.ns == (20, 40, 80, 160) and paper.ns == (10, 20, 40, 80, 160, 320)
    assert book.mu_norms == (0.5, 1, 1.5, 2, 2.5, 3, 4, 6) and paper.mu_norms == tuple(0.25 * k for k in range(2, 25))
    assert book.seeds == (0, 1, 2) and paper.seeds == tuple(range(10))
    assert (book.by_n, paper.by_n) == (False, True)
    for p in (book, paper):
        assert p.curve_cell == (40, 2.0) and p.stop_cells == ((40, 4.0), (40, 6.0))
        assert p.radii == (0.1, 0.2, 1.0) and p.radius_ns == (20, 160)
    assert len({book, paper}) == 2  # hashable


def test_the_memorization_run_builders_are_the_notebooks_runs():
    book, paper = memorization.BOOK, memorization.PAPER
    mus, seeds = [0.5, 1, 1.5, 2, 2.5, 3, 4, 6], list(range(3))
    assert book.grid_runs() == grid_runs([20, 40, 80, 160], mus, seeds, taus=[0.0, 0.5])
    assert book.cell_runs(book.curve_cell) == [PatchRun(40, 2.0, s, tau) for s in seeds for tau in (0.0, 0.5)]
    assert book.radius_runs() == grid_runs([20, 160], mus, seeds, taus=[0.1, 0.2, 1.0])
    assert (len(book.grid_runs()), len(paper.grid_runs())) == (4 * 8 * 3 * 2, 6 * 23 * 10 * 2)
    assert (len(book.radius_runs()), len(paper.cell_runs(paper.stop_cells[0]))) == (2 * 8 * 3 * 3, 10 * 2)
