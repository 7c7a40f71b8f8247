"""Optimizers: SAM, last-layer SAM (LSAM), LSAM with one effect ablated, the BatchNorm policy they share, and
:func:`sam_step`, their step under DDP and mixed precision.

* :mod:`~samlib.optim.sam`: SAM around any torch optimizer;
* :mod:`~samlib.optim.lsam`: LSAM, whose ascent perturbs only the linear last layer, and its parameter groups;
* :mod:`~samlib.optim.ablation`: LSAM with one of its two effects switched off (:class:`AblatedLSAM`);
* :mod:`~samlib.optim.ascent`: the SAM ascent, written once: every optimizer, sweep and decomposition calls it;
* :mod:`~samlib.optim.batchnorm`: the BatchNorm policy: running statistics move once per two-pass step;
* :mod:`~samlib.optim.registry`: the book's optimizers by name, and the one check of a run's optimizer and rho;
* :mod:`~samlib.optim.step`: :func:`sam_step`, one SAM or two-pass LSAM step under DDP and with mixed precision;
* :mod:`~samlib.optim.distributed`: SAM's ascent gradient under DDP (``per_device`` or ``synchronized``).
"""
from .ablation import EFFECTS, AblatedLSAM
from .ascent import ascent
from .batchnorm import frozen_bn_stats
from .distributed import ASCENT_GRADIENTS
from .lsam import LSAM, lsam_param_groups
from .sam import SAM, backward, check_rho
from .step import sam_step

__all__ = ["SAM", "LSAM", "AblatedLSAM", "EFFECTS", "lsam_param_groups", "frozen_bn_stats", "ascent", "backward",
           "check_rho", "sam_step", "ASCENT_GRADIENTS"]
