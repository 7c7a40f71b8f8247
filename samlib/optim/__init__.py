"""Optimizers: SAM, last-layer SAM (LSAM), LSAM with one effect ablated, the BatchNorm policy they share, and
:func:`sam_step`, their step under DDP and mixed precision."""
from .ablation import EFFECTS, AblatedLSAM
from .ascent import ascent
from .batchnorm import frozen_bn_stats
from .distributed import ASCENT_GRADIENTS
from .lsam import LSAM, lsam_param_groups
from .sam import SAM, backward, check_rho
from .step import sam_step

__all__ = ["SAM", "LSAM", "AblatedLSAM", "EFFECTS", "lsam_param_groups", "frozen_bn_stats", "ascent", "backward",
           "check_rho", "sam_step", "ASCENT_GRADIENTS"]
