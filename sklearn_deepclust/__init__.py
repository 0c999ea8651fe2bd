"""Deep clustering and novel class discovery as scikit-learn estimators.

Every deep estimator is a :class:`~sklearn_deepclust._base.DeepClusterer`: a
scikit-learn clusterer and transformer whose networks are torch modules
trained by skorch, on the CPU or a GPU (``device``). The novel class
discovery estimators (:mod:`sklearn_deepclust.discovery`) are fitted on
partial labels, ``-1`` for unlabelled samples.
"""

from ._base import DeepClusterer
from .cluster import DEC, P2OT, SCAN, SwAVClustering
from .discovery import GMMGCD, PBN, NCDKMeans

__version__ = "0.1.0.dev0"

__all__ = [
    "DEC",
    "GMMGCD",
    "NCDKMeans",
    "P2OT",
    "PBN",
    "SCAN",
    "DeepClusterer",
    "SwAVClustering",
    "__version__",
]
