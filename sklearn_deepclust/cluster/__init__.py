"""Deep clustering estimators (unsupervised)."""

from ._dec import DEC, soft_assignment, target_distribution

__all__ = ["DEC", "soft_assignment", "target_distribution"]
