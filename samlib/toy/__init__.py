"""The toy chapters: a 1-D easy feature and a 2-D spiral hard feature, and what SGD, SAM and LSAM learn.

* :mod:`~samlib.toy.data`: the data (:func:`~samlib.toy.data.make_toy`);
* :mod:`~samlib.toy.model`: the two-branch network, batched over runs;
* :mod:`~samlib.toy.sweep`: many runs trained at once (:func:`~samlib.toy.sweep.train_sweep`);
* :mod:`~samlib.toy.results`: probe errors and summaries of a sweep;
* :mod:`~samlib.toy.mechanism`: the phantom decomposition (:mod:`samlib.decompose`) applied to sweeps;
* :mod:`~samlib.toy.presets`: the chapters' settings and grids;
* :mod:`~samlib.toy.study`: the shipped lever study and its held-out check;
* :mod:`~samlib.toy.regimes`: the shipped study of the theory's regimes (small initialisation, equal fit, m-SAM).
"""
