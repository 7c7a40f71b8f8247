"""The IDX file format of MNIST and Fashion-MNIST, read with numpy (plain or gzip-compressed).

An IDX file is a 4-byte magic number ``0, 0, dtype code, number of dimensions``, one big-endian
uint32 per dimension, then the values in C order (big-endian for multi-byte types). Reading checks
every part of the header and that the payload holds exactly the promised number of values.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "write_idx", "idx_bytes"]

# dtype code -> numpy type (big-endian, as the format stores it)
_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
           0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_FIX = "re-download or reinstall it"


def idx_bytes(path: Path) -> bytes:
    """The bytes of the IDX file ``path`` (a ``Path``), decompressed if it is gzip-compressed (whatever its name):
    what :func:`read_idx` parses, and what a checksum of the data, not of its compression, is taken over."""
    if not path.is_file():
        raise FileNotFoundError(f"IDX file {path} does not exist")
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as e:
        raise ValueError(f"{path} is a corrupt or truncated gzip file ({e}); {_FIX}") from None


def read_idx(path) -> np.ndarray:
    """The array stored in the IDX file ``path`` (``.gz`` or plain), in native byte order; e.g.
    (60000, 28, 28) uint8 for MNIST training images, (60000,) uint8 for its labels.

    Raises ValueError naming the file for a bad magic number, an unknown dtype code, or a payload
    that is shorter or longer than the header says."""
    path = Path(path)
    data = idx_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file: its magic number {data[:4].hex() or 'is missing'} "
                         f"does not start with 0000; {_FIX}")
    code, ndim = data[2], data[3]
    if code not in _DTYPES:
        raise ValueError(f"{path} has unknown IDX dtype code 0x{code:02x} (known: "
                         f"{', '.join(f'0x{c:02x}' for c in _DTYPES)}); {_FIX}")
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ValueError(f"{path} is truncated inside its header ({ndim} dimensions need {header} bytes, "
                         f"found {len(data)}); {_FIX}")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = _DTYPES[code]
    expected = int(np.prod(shape)) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        what = "truncated" if found < expected else "longer than its header says"
        raise ValueError(f"{path} is {what}: header says {'x'.join(map(str, shape))} = {expected} bytes, "
                         f"found {found}; {_FIX}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``); for fixtures."""
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): c for c, dt in _DTYPES.items()}
    if array.dtype not in codes or array.ndim == 0:
        raise ValueError(f"cannot store a {array.ndim}-D {array.dtype} array as IDX: use uint8, int8, int16, "
                         "int32, float32 or float64 with at least one dimension")
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(payload, mtime=0) if path.suffix == ".gz" else payload)
    return path
