"""Novel class discovery: find the classes nobody labelled.

Every estimator here is fitted as ``fit(X, y)`` with the known classes'
labels in ``y`` and ``-1`` for unlabelled samples; ``predict`` returns the
known labels for samples of known classes and new labels (after the largest
known one) for the discovered classes.
"""

from ._base import estimate_n_novel_clusters, ncd_kmeans
from ._gmm_gcd import GMMGCD
from ._ncd_kmeans import NCDKMeans
from ._pbn import PBN

__all__ = ["GMMGCD", "NCDKMeans", "PBN", "estimate_n_novel_clusters", "ncd_kmeans"]
