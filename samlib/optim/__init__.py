"""Optimizers: SAM, last-layer SAM (LSAM), LSAM with one effect ablated, and the BatchNorm policy they share."""
from .ablation import EFFECTS, AblatedLSAM
from .ascent import ascent
from .batchnorm import frozen_bn_stats
from .lsam import LSAM, lsam_param_groups
from .sam import SAM, backward, check_rho

__all__ = ["SAM", "LSAM", "AblatedLSAM", "EFFECTS", "lsam_param_groups", "frozen_bn_stats", "ascent", "backward",
           "check_rho"]
