"""Deep clustering estimators (unsupervised)."""

from ._dec import DEC, soft_assignment, target_distribution
from ._scan import SCAN, scan_loss, self_label_thresholds

__all__ = [
    "DEC",
    "SCAN",
    "scan_loss",
    "self_label_thresholds",
    "soft_assignment",
    "target_distribution",
]
