"""Deep clustering estimators (unsupervised)."""

from ._dec import DEC, soft_assignment, target_distribution
from ._p2ot import P2OT, progressive_mass
from ._prototypes import swapped_prediction_loss
from ._scan import SCAN, scan_loss, self_label_thresholds
from ._swav import SwAVClustering

__all__ = [
    "DEC",
    "P2OT",
    "SCAN",
    "SwAVClustering",
    "progressive_mass",
    "scan_loss",
    "self_label_thresholds",
    "soft_assignment",
    "swapped_prediction_loss",
    "target_distribution",
]
