"""Deep clustering and novel class discovery as scikit-learn estimators.

Every estimator is a :class:`~sklearn_deepclust._base.DeepClusterer`: a
scikit-learn clusterer and transformer whose networks are torch modules
trained by skorch, on the CPU or a GPU (``device``).
"""

from ._base import DeepClusterer
from .cluster import DEC, P2OT, SCAN, SwAVClustering

__version__ = "0.1.0.dev0"

__all__ = ["DEC", "P2OT", "SCAN", "DeepClusterer", "SwAVClustering", "__version__"]
