#!/usr/bin/env python3
"""Execute notebooks in place, top to bottom on a fresh kernel, as they are committed.

    python .ci/execute_notebooks.py book/*.ipynb

Committed outputs are the book (see _config.yml); run this after changing a chapter or
samlib, then commit the notebooks. CI re-executes them with nbval and compares.
"""
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                   store_widget_state=True).execute()  # False trips nbclient on Output widgets
    nb.metadata.pop("widgets", None)  # live widgets need a kernel; the HTML shows static figures
    nbformat.write(nb, path)
    return time.perf_counter() - start


if __name__ == "__main__":
    # The kernel gets this process's environment, as under nbval in .ci/test: samlib.setup() in each notebook
    # selects the book's kernels (samlib.repro.BOOK_KERNELS), so nothing is set here that CI does not set.
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for name in sys.argv[1:]:
        print(f"{name}: executed in {execute(Path(name)):.1f} s", flush=True)
