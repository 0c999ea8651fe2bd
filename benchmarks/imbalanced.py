"""Clustering of long-tailed tables: KMeans, GaussianMixture, DEC, SwAVClustering and P2OT.

The tables of ``quality`` are subsampled to exponential class profiles
(:func:`sklearn_deepclust.datasets.make_long_tailed`, the classes' order
drawn with the seed) at imbalance ratios 0.1 and 0.01, the setting of the
P²OT paper; ACC, macro-F1 after Hungarian matching and NMI are reported.
"""

import numpy as np

from sklearn_deepclust._report import markdown_table
from sklearn_deepclust.datasets import make_long_tailed

from . import quality
from ._data import load_table
from ._timing import warm_up_torch

TABLES = ("penbased", "letter", "optdigits")
RATIOS = (0.1, 0.01)
METHODS = ("KMeans", "GaussianMixture", "AE+KMeans", "DEC", "IDEC", "SwAVClustering", "P2OT")
FAMILIES = ("baselines", "dec", "ot")


def table_name(table, ratio):
    return f"{table} rho={ratio:g}"


def run_job(table, ratio, seed, out_path, families=FAMILIES):
    """Fit the methods on one long-tailed table drawn with ``seed``; append JSON lines."""
    warm_up_torch()
    X, y = load_table(table)
    X, y, _ = make_long_tailed(X, y, ratio, random_state=seed)
    name = table_name(table, ratio)
    if "baselines" in families:
        quality._run_baselines(name, seed, X, y, out_path)
    if "dec" in families:
        quality._run_dec(name, seed, X, y, out_path)
    if "ot" in families:
        quality.run_ot(name, seed, X, y, out_path)


def _mean(records, name, method, key):
    values = [r[key] for r in records if r["table"] == name and r["method"] == method]
    return np.mean(values) if values else np.nan


def _names(records):
    """The long-tailed tables present in ``records``, by table then decreasing ratio."""
    pairs = {(r["table"].split(" rho=")[0], float(r["table"].split("rho=")[1])) for r in records}
    order = {table: i for i, table in enumerate(TABLES)}
    pairs = sorted(pairs, key=lambda p: (order.get(p[0], len(order)), p[0], -p[1]))
    return [table_name(table, ratio) for table, ratio in pairs]


def report(records):
    """Markdown table: mean ± std over seeds per (table, ratio, method)."""
    rows = []
    for name in _names(records):
        for method in METHODS:
            runs = [r for r in records if r["table"] == name and r["method"] == method]
            if not runs:
                continue
            cells = [name, method, str(len(runs)), str(runs[0].get("n_samples", ""))]
            for key in ("ACC", "F1", "NMI", "fit_s"):
                values = np.array([r[key] for r in runs])
                fmt = "{:.1f} ± {:.1f}" if key == "fit_s" else "{:.3f} ± {:.3f}"
                cells.append(fmt.format(values.mean(), values.std()))
            rows.append(cells)
    headers = ["table", "method", "seeds", "n", "ACC", "macro-F1", "NMI", "fit s"]
    return markdown_table(headers, rows)


def verdict(records, ratio=0.01):
    """Issue 5's count: P2OT's mean ACC and macro-F1 >= SwAV's and KMeans's."""
    lines = []
    for rival in ("SwAVClustering", "KMeans"):
        wins = [
            t
            for t in TABLES
            if all(
                _mean(records, table_name(t, ratio), "P2OT", key)
                >= _mean(records, table_name(t, ratio), rival, key)
                for key in ("ACC", "F1")
            )
        ]
        lines.append(
            f"- rho={ratio:g}: P2OT mean ACC and macro-F1 >= {rival}: {len(wins)} of "
            f"{len(TABLES)} tables ({', '.join(wins) or 'none'})"
        )
    return "\n".join(lines)


def settings_note():
    parts = []
    for table in TABLES:
        X, y = load_table(table)
        for ratio in RATIOS:
            _, y_tail, _ = make_long_tailed(X, y, ratio, random_state=0)
            sizes = np.bincount(y_tail)
            parts.append(
                f"{table_name(table, ratio)}: n={len(y_tail)}, class sizes "
                f"{sizes.max()} to {sizes[sizes > 0].min()}"
            )
    return (
        "Same methods and settings as `quality` (every estimator at its "
        "defaults), on long-tailed subsamples drawn per seed. Macro-F1: "
        "`sklearn_deepclust.metrics.matched_f1_score`.\n" + "\n".join(f"- {p}" for p in parts)
    )
