"""Optimizers: SAM, last-layer SAM (LSAM) and the BatchNorm policy they share."""
from .batchnorm import frozen_bn_stats
from .lsam import LSAM, lsam_param_groups
from .sam import SAM, ascent_steps, backward, check_rho

__all__ = ["SAM", "LSAM", "lsam_param_groups", "frozen_bn_stats", "ascent_steps", "backward", "check_rho"]
