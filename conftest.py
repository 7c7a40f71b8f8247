"""pytest settings for the whole repository (the unit tests in tests/ and the notebooks under nbval).

nbval waits at most 5 seconds for each output message of a cell after the cell has run (a fixed attribute of its
cell items, not an option). On a busy machine a kernel can take longer to send them, and the cell then fails with
"Timeout of 5 seconds exceeded waiting for output" although its result is right. Each cell's run itself is bounded
by ``--nbval-cell-timeout``; this only lengthens the wait for the messages of a cell that has finished.
"""

NBVAL_OUTPUT_TIMEOUT = 300  # seconds; nbval's 5 s were exceeded once at a load of about 8 on 2 cores


def pytest_collection_modifyitems(items):
    for item in items:
        if hasattr(item, "output_timeout"):  # nbval's IPyNbCell
            item.output_timeout = NBVAL_OUTPUT_TIMEOUT
