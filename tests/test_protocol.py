"""The shipped-study protocol (samlib.protocol): a lever's seed sets trained in order with the radii chosen on the
ones before, the shipped rows' loader and their atomic replacement, and the command lines' shared checks."""
import argparse
import threading

import pandas as pd
import pytest

from samlib.protocol import Lever, ShippedRows, checkpoints_option, every_row, refuse_repeats, run_lever, select, slug


def test_a_lever_names_its_optimizers_and_radii():
    lever = Lever("two", None, {"LSAM": (1.0, 0.5), "SAM": (0.05, 0.5)}, turns=(0.5,))
    assert lever.optimizers == ("LSAM", "SAM") and lever.rhos == (0.05, 0.5, 1.0)
    assert Lever("none", None).optimizers == () and Lever("none", None).rhos == ()
    assert slug("batch size 32") == "batch_size_32" and slug("pair t-shirt/top") == "pair_t-shirt-top"


@pytest.mark.parametrize("kwargs, error, message", [
    ({"description": " "}, ValueError, "description must say in words what the lever changes"),
    ({"radii": [("LSAM", (0.5,))]}, TypeError, r"radii must be a dict \{optimizer: \(rho, ...\)\}"),
    ({"radii": {"LSAM": 0.5}}, TypeError, r"radii\['LSAM'\] must be a tuple of radii, e.g. \(0.5, 1.0\); got 0.5"),
    ({"turns": [0.5]}, TypeError, r"turns must be a tuple, e.g. \(0.5, 0.75\); got \[0.5\]"),
    ({"seeds": range(3)}, TypeError, "seeds must be a tuple"),
    ({"hard_only": 1}, TypeError, "hard_only"),
])
def test_a_malformed_lever_is_refused_by_name(kwargs, error, message):
    with pytest.raises(error, match=message):
        Lever(**{"description": "x", "settings": None, **kwargs})
    with pytest.raises(ValueError, match="lever 'x': seed_sets must name at least one seed set"):
        run_lever("x", Lever("x", None), lambda *args: None, {})


def test_run_lever_trains_each_seed_set_in_order_with_what_was_chosen_before(tmp_path):
    calls = []

    def train(lever, radii, seed_set, seeds, checkpoint):
        calls.append((radii, seed_set, seeds, checkpoint))
        return pd.DataFrame({"seed": list(seeds), "score": [float(s) for s in seeds]})

    def choose(rows):
        return {"SGD": (0.0,), "LSAM": (rows.score.max(),)}

    lever = Lever("x", None, {"LSAM": (0.1, 0.3)})
    rows = run_lever("my lever", lever, train, {"tuning": (0, 1), "held out": (7,)}, choose, tmp_path)
    assert calls == [({"LSAM": (0.1, 0.3)}, "tuning", (0, 1), tmp_path / "my_lever.tuning"),
                     ({"SGD": (0.0,), "LSAM": (1.0,)}, "held out", (7,), tmp_path / "my_lever.held_out")]
    assert list(rows.seed) == [0, 1, 7] and list(rows.seed_set) == ["tuning", "tuning", "held out"]
    assert set(rows.lever) == {"my lever"}
    regime = run_lever("r", lever, train, {"tuning": (3,)}, column="regime")
    assert list(regime.regime) == ["r"] and "lever" not in regime and calls[-1][3] is None


def _shipped(tmp_path, **options):
    return ShippedRows("toy rows", tmp_path / "rows.csv", "python -m my.study run", **options)


def test_shipped_rows_say_how_to_regenerate_a_missing_file(tmp_path):
    rows = _shipped(tmp_path)
    assert not rows.exists() and rows.done(["seed"]) == set()
    with pytest.raises(FileNotFoundError, match=r"no toy rows at .*rows.csv: run python -m my.study run"):
        rows.load()
    with pytest.raises(ValueError, match="is a folder"):
        rows.load(tmp_path)


def test_replacing_rows_keeps_the_others_in_order_columns_and_rounding(tmp_path):
    order = {"b": 0, "a": 1}
    rows = _shipped(tmp_path, columns=("part", "seed", "value"), decimals=2,
                    order=lambda f: f.sort_values("part", key=lambda c: c.map(order), kind="stable"))

    def part(name, values):
        return pd.DataFrame({"value": values, "part": name, "seed": range(len(values)), "extra": 1})

    rows.replace(part("a", [0.123, 0.456]))
    rows.replace(part("b", [1.0]))
    assert list(rows.load().columns) == ["part", "seed", "value"]  # reindexed: extra is not shipped
    assert list(zip(rows.load().part, rows.load().value)) == [("b", 1.0), ("a", 0.12), ("a", 0.46)]
    rows.replace(part("a", [9.0]), lambda kept: kept.part == "a")
    assert list(zip(rows.load().part, rows.load().value)) == [("b", 1.0), ("a", 9.0)]
    assert rows.done(["part", "seed"]) == {("b", 0), ("a", 0)}
    rows.replace(part("c", [5.0]), every_row)
    assert list(rows.load().part) == ["c"]
    assert not list(tmp_path.glob("*.tmp*")) and sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]


def test_two_writers_under_the_lock_keep_each_others_rows(tmp_path):
    rows = _shipped(tmp_path)

    def write(name):
        for i in range(10):
            rows.replace(pd.DataFrame({"part": [name], "i": [i]}))

    threads = [threading.Thread(target=write, args=(name,)) for name in ("x", "y")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(rows.load().groupby("part").i.count().tolist()) == [10, 10]


def test_the_command_lines_share_their_checks(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="study")
    checkpoints_option(parser)
    parser.add_argument("--beds", nargs="+")
    assert parser.parse_args(["--checkpoints", str(tmp_path / "new")]).checkpoints == tmp_path / "new"
    (tmp_path / "a_file").write_text("")
    with pytest.raises(SystemExit):
        parser.parse_args(["--checkpoints", str(tmp_path / "a_file")])
    assert "is a file, but a folder is needed" in capsys.readouterr().err
    refuse_repeats(parser, beds=["a", "b"], seed_sets=None)
    with pytest.raises(SystemExit):
        refuse_repeats(parser, beds=["a", "b"], seed_sets=["x", "x"])
    assert "--seed-sets names ['x'] twice" in capsys.readouterr().err


def test_a_study_of_named_parts_runs_each_in_turn_and_refuses_a_part_twice(monkeypatch, tmp_path, capsys):
    import samlib
    from samlib.protocol import run_parts

    monkeypatch.setattr(samlib, "setup", lambda: None)
    calls = []

    def run(name, checkpoints):
        calls.append((name, checkpoints))
        return f"trained {name}"

    parts = {"one": 1, "two": 2}
    run_parts(["run"], "study", "A study.", "parts", parts, run, tmp_path / "rows.csv")
    run_parts(["run", "--parts", "two", "--checkpoints", str(tmp_path)], "study", "A study.", "parts", parts, run,
              tmp_path / "rows.csv")
    assert calls == [("one", None), ("two", None), ("two", tmp_path)]
    assert "one: trained one in 0 s -> " in capsys.readouterr().out
    for argv, message in ((["run", "--parts", "two", "two"], "--parts names ['two'] twice"),
                          (["run", "--parts", "three"], "invalid choice: 'three'")):
        with pytest.raises(SystemExit):
            run_parts(argv, "study", "A study.", "parts", parts, run, tmp_path / "rows.csv")
        assert message in capsys.readouterr().err and len(calls) == 3


def test_select_picks_rows_by_value_and_refuses_what_no_row_holds():
    frame = pd.DataFrame({"bed": ["a", "a", "b", "b"], "seed_set": ["tuning", "held out"] * 2, "rho": [0.0, 0.1] * 2})
    assert select(frame, bed="a", seed_set="held out").index.tolist() == [1]
    assert select(frame, bed=["a", "b"], rho=0.0).index.tolist() == [0, 2]
    assert select(frame, rho=pd.Series([0.1])).index.tolist() == [1, 3]  # any collection
    assert select(frame).equals(frame)
    with pytest.raises(ValueError, match=r"no row has seed_set='held-out'; the column holds \['held out', 'tuning'\]"):
        select(frame, seed_set="held-out")
    with pytest.raises(ValueError, match="no row has bed='c'"):
        select(frame, bed=["a", "c"])
    with pytest.raises(KeyError, match="the rows have no column 'lever'"):
        select(frame, lever="bed")
