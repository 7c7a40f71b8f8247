""".ci/run_exercises.py: which cells an exercise or an explorer needs, read from the notebook's code alone."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("run_exercises", ROOT / ".ci" / "run_exercises.py")
run_exercises = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_exercises)


def _code(source, tags=()):
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source}


def _md(source):
    return {"cell_type": "markdown", "metadata": {}, "source": source}


CELLS = [
    _code("!pip install x", tags=["remove-cell"]),                # 0: Colab only, never needed
    _code("import samlib\nfrom samlib.book import show\nsamlib.setup()"),  # 1: the setup cell, always run
    _code("SETTINGS = make()\nSEEDS = [0, 1]"),                  # 2: defines what the exercise reads
    _code("result = train(SETTINGS)  # the long training"),      # 3: nobody below needs it
    _code("fig, ax = plot(result)\nax.set_title('x')"),          # 4: binds and reads its own names
    _code("SEEDS = [5]"),                                        # 5: a later definition wins
    _md("**Exercise 1.** Try it."),
    _code("for seed in SEEDS:\n    show(run(SETTINGS, seed))"),  # 7: the solution
    _code("toy_explorer(SETTINGS);"),                            # 8: an explorer
]


def test_the_targets_are_the_solutions_and_the_explorers():
    assert run_exercises.targets(CELLS) == [7, 8]


def test_the_slice_holds_the_setup_the_targets_and_the_last_definition_of_each_name_they_read():
    assert run_exercises.slice_cells(CELLS) == [1, 2, 5, 7, 8]


def test_a_cell_binds_its_imports_functions_and_loop_names_and_reads_the_rest():
    bound, used = run_exercises.defined_and_used("import numpy as np\nfrom a import b\n"
                                                 "def f(x):\n    return g(x)\nfor i in y:\n    z = np.ones(i)\n"
                                                 "%matplotlib inline")
    assert {"np", "b", "f", "x", "i", "z"} <= bound
    assert used == {"g", "y"}
