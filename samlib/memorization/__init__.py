"""The noise-memorization chapter (Chen et al., 2023): signal and noise patches, a two-layer ReLU CNN.

* :mod:`~samlib.memorization.data`: the data and the runs;
* :mod:`~samlib.memorization.model`: the network batched over runs, its gradient, SGD and SAM steps;
* :mod:`~samlib.memorization.train`: many runs trained at once (:func:`~samlib.memorization.train.train_runs`);
* :mod:`~samlib.memorization.results`: comparisons of SGD and SAM over the grid;
* :mod:`~samlib.memorization.presets`: the chapter's preset at each scale (``BOOK``, ``PAPER``);
* :mod:`~samlib.memorization.study`: the shipped seed study: the chapter's map on the tuning and held-out seeds.
"""
