"""Share of an epoch that the transport codes take, for SwAVClustering and P2OT.

The estimator's code function is wrapped with a timer (synchronising the
device around it, which only this measurement does) and the clustering
phase's epoch time comes from skorch's history; the ratio of the two is the
share of an epoch spent in Sinkhorn. One process, same data, both methods.
"""

import time

import numpy as np
import torch

from sklearn_deepclust import P2OT, SwAVClustering
from sklearn_deepclust._report import markdown_table

from ._data import load_table

TABLES = ("digits", "letter")


def _synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class _TimedCodes:
    """Wraps an estimator's ``_codes`` and adds up its wall time."""

    def __init__(self, codes, device):
        self.codes, self.device, self.seconds, self.calls = codes, device, 0.0, 0

    def __call__(self, scores, progress):
        _synchronize(self.device)
        start = time.perf_counter()
        out = self.codes(scores, progress)
        _synchronize(self.device)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


def profile(estimator, X):
    timer = _TimedCodes(estimator._codes, estimator.device)
    estimator._codes = timer  # an instance attribute shadows the method
    estimator.fit(X)
    epochs = estimator.history_["cluster"][:, "dur"]
    return timer, float(np.sum(epochs)), len(epochs)


def run(tables=TABLES, device="cpu", epochs=3):
    rows, records = [], []
    for table in tables:
        X, y = load_table(table)
        k = len(np.unique(y))
        for estimator in (
            SwAVClustering(k, pretext="none", max_epochs=epochs, device=device, random_state=0),
            P2OT(k, pretext="none", max_epochs=epochs, device=device, random_state=0),
        ):
            timer, seconds, n_epochs = profile(estimator, X)
            name = type(estimator).__name__
            share = timer.seconds / seconds
            records.append(
                {"table": table, "method": name, "codes_s": timer.seconds, "epoch_s": seconds}
            )
            rows.append(
                [
                    f"{table} (n={len(X)}, K={k})",
                    name,
                    str(estimator.sinkhorn_iters),
                    str(estimator._queue_length(len(X))),
                    f"{seconds / n_epochs:.2f}",
                    f"{1e3 * timer.seconds / timer.calls:.2f}",
                    f"{100 * share:.0f} %",
                ]
            )
    headers = [
        "table",
        "method",
        "Sinkhorn iterations",
        "queue",
        "epoch s",
        "ms per code call",
        "codes' share of the epoch",
    ]
    note = (
        f"\n\n{epochs} clustering epochs (no pretext), batch 256, 2 views, codes "
        f"from the clean rows (one code call per batch), device {device}, "
        f"torch threads {torch.get_num_threads()}."
    )
    return markdown_table(headers, rows) + note, records
