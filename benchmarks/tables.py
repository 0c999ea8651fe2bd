"""The development suite: every clusterer at its defaults beside the classical anchors.

``python -m benchmarks tables`` fits, on each table of
:data:`benchmarks._data.SUITE` (K = its number of classes), seeds 0, 1, 2:

- the classical anchors ``KMeans(n_init=10)``, ``GaussianMixture(full,
  n_init=3)``, ``SpectralClustering(affinity="nearest_neighbors")`` and
  ``AgglomerativeClustering(ward)``;
- the package's clusterers exactly as a user calls them,
  ``Estimator(n_clusters=K, random_state=seed)``;

after ``StandardScaler`` and, as a second run, ``MinMaxScaler`` (part
``balanced``). Part ``long-tailed`` draws long-tailed versions of the
multi-class tables (``make_long_tailed``, rho = 0.1 and 0.02, class order
and rows drawn with the seed) for DEC, SwAVClustering, P2OT and the anchors.
Part ``threads`` refits seed 0 with two torch threads (the other parts use
one per process). Part ``legacy`` fits the clusterers at the defaults of an
earlier commit (a checkout given by ``--legacy-tree``, by default
``../legacy``: ``git worktree add ../legacy 272f575``), seed 0 and
``StandardScaler``, each fit in a child process that imports that commit's
package; its fit times are the reference of the cost criterion.

Every fit appends one JSON line to ``results/tables.jsonl``; a fit already
recorded there is skipped, so an interrupted run resumes where it stopped.
:func:`report` builds the markdown report from the records alone.
"""

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sklearn_deepclust._report import markdown_table

from ._data import MULTICLASS, SUITE, load_suite_table
from ._timing import warm_up_torch

PARTS = ("balanced", "long-tailed", "threads", "legacy")
SCALERS = ("standard", "minmax")
SEEDS = (0, 1, 2)
RATIOS = (0.1, 0.02)
ANCHORS = ("KMeans", "GaussianMixture", "SpectralClustering", "AgglomerativeClustering")
CLUSTERERS = ("DEC", "IDEC", "SCAN", "SwAVClustering", "P2OT")
LONG_TAILED_CLUSTERERS = ("DEC", "SwAVClustering", "P2OT")
# The README's first choice for a table; the report checks it against the anchors.
FIRST_CHOICE = "SCAN"
LEGACY_COMMIT = "272f575"
LEGACY_TREE = Path(__file__).resolve().parents[2] / "legacy"
TIE = 0.01  # wins, ties and losses are counted with ties within one ACC point


def legacy_name(method):
    return f"{method} ({LEGACY_COMMIT} defaults)"


def make_estimator(method, n_clusters, seed):
    """The anchor or clusterer ``method`` at its defaults, for ``n_clusters`` and ``seed``.

    The package's estimators come from whichever ``sklearn_deepclust`` is
    imported (in a legacy child, the earlier commit's).
    """
    from sklearn.cluster import AgglomerativeClustering, KMeans, SpectralClustering
    from sklearn.mixture import GaussianMixture

    import sklearn_deepclust as package

    if method == "KMeans":
        return KMeans(n_clusters, n_init=10, random_state=seed)
    if method == "GaussianMixture":
        return GaussianMixture(n_clusters, covariance_type="full", n_init=3, random_state=seed)
    if method == "SpectralClustering":
        return SpectralClustering(n_clusters, affinity="nearest_neighbors", random_state=seed)
    if method == "AgglomerativeClustering":
        return AgglomerativeClustering(n_clusters, linkage="ward")
    if method == "IDEC":
        return package.DEC(n_clusters, reconstruction_weight=10.0, random_state=seed)
    return getattr(package, method)(n_clusters, random_state=seed)


def load_scaled(table, scaler, ratio=None, seed=0):
    """A table of the suite, long-tailed when ``ratio`` is given, then scaled (float32)."""
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    from sklearn_deepclust.datasets import make_long_tailed

    X, y = load_suite_table(table)
    if ratio is not None:
        X, y, _ = make_long_tailed(X, y, ratio, random_state=seed)
        y = np.unique(y, return_inverse=True)[1]
    scale = StandardScaler() if scaler == "standard" else MinMaxScaler()
    return scale.fit_transform(X).astype(np.float32), y


def measure(part, table, scaler, seed, method, ratio=None, threads=1):
    """Fit one method on one prepared table; the record of its scores and fit time."""
    import torch
    from threadpoolctl import threadpool_limits

    from sklearn_deepclust.metrics import clustering_scores

    torch.set_num_threads(threads)
    warm_up_torch()
    X, y = load_scaled(table, scaler, ratio, seed)
    n_clusters = len(np.unique(y))
    base_method = method.split(" (")[0]
    estimator = make_estimator(base_method, n_clusters, seed)
    note = None
    with threadpool_limits(threads):
        start = time.perf_counter()
        try:
            labels = estimator.fit_predict(X)
        except ValueError:
            # GaussianMixture's full covariances are singular on one-hot
            # tables (splice): refit with scikit-learn's suggested remedy,
            # a larger reg_covar, ten times larger until the fit succeeds.
            if base_method != "GaussianMixture":
                raise
            labels = None
            for reg_covar in (1e-4, 1e-3, 1e-2):
                try:
                    labels = estimator.set_params(reg_covar=reg_covar).fit_predict(X)
                except ValueError:
                    continue
                note = f"reg_covar={reg_covar:g} after a singular fit at 1e-6"
                break
            if labels is None:
                raise
        seconds = time.perf_counter() - start
    return {
        "part": part,
        "table": table,
        "ratio": ratio,
        "scaler": scaler,
        "seed": seed,
        "method": method,
        "threads": threads,
        "n_samples": int(X.shape[0]),
        "n_features": int(X.shape[1]),
        "n_clusters": int(n_clusters),
        "fit_s": seconds,
        "n_found": int(len(np.unique(labels))),
        **({"note": note} if note else {}),
        **clustering_scores(y, labels),
    }


def _legacy_measure(tree, **job):
    """:func:`measure` in a child process whose ``sklearn_deepclust`` is the one in ``tree``."""
    statement = (
        "import json, sys; "
        f"sys.path.insert(0, {str(tree)!r}); "
        "import sklearn_deepclust; "
        f"assert sklearn_deepclust.__file__.startswith({str(tree)!r}), sklearn_deepclust.__file__; "
        "sys.path.pop(0); "
        "from benchmarks.tables import measure; "
        f"print(json.dumps(measure(**{job!r})))"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", statement], capture_output=True, text=True, cwd=root, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"legacy fit {job} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _key(record):
    return tuple(
        record.get(k) for k in ("part", "table", "ratio", "scaler", "seed", "method", "threads")
    )


def jobs(parts, tables, seeds, scalers, methods=None):
    """Every fit the parts ask for, as keyword arguments of :func:`measure`."""

    def chosen(names):
        return [m for m in names if methods is None or m in methods]

    out = []
    if "balanced" in parts:
        for table in tables:
            for scaler in scalers:
                for seed in seeds:
                    for method in chosen(ANCHORS + CLUSTERERS):
                        out.append(
                            dict(
                                part="balanced",
                                table=table,
                                scaler=scaler,
                                seed=seed,
                                method=method,
                            )
                        )
    if "long-tailed" in parts:
        for table in [t for t in tables if t in MULTICLASS]:
            for ratio in RATIOS:
                for seed in seeds:
                    for method in chosen(ANCHORS + LONG_TAILED_CLUSTERERS):
                        out.append(
                            dict(
                                part="long-tailed",
                                table=table,
                                ratio=ratio,
                                scaler="standard",
                                seed=seed,
                                method=method,
                            )
                        )
    # One seed per table: the same fit with 2 torch threads, and at 272f575's defaults.
    one_seed_parts = {
        "threads": lambda method: dict(method=method, threads=2),
        "legacy": lambda method: dict(method=legacy_name(method)),
    }
    for part, fields in one_seed_parts.items():
        if part not in parts:
            continue
        for table in tables:
            for method in chosen(CLUSTERERS):
                out.append(
                    dict(part=part, table=table, scaler="standard", seed=seeds[0], **fields(method))
                )
    return out


def run(
    raw,
    parts=PARTS,
    tables=SUITE,
    seeds=SEEDS,
    scalers=SCALERS,
    methods=None,
    legacy_tree=LEGACY_TREE,
    shard=None,
):
    """Run the fits not yet in ``raw`` (JSON lines), appending each record as it comes.

    ``shard=(i, n)`` runs every n-th job from the i-th, so that n processes
    can share a run.
    """
    done = set()
    if Path(raw).exists():
        done = {_key(json.loads(line)) for line in Path(raw).read_text().splitlines()}
    todo = jobs(parts, tables, seeds, scalers, methods)
    if shard is not None:
        todo = todo[shard[0] :: shard[1]]
    for job in todo:
        job = {"ratio": None, "threads": 1, **job}
        if _key(job) in done:
            continue
        if job["part"] == "legacy":
            record = _legacy_measure(legacy_tree, **job)
            record["commit"] = LEGACY_COMMIT
        else:
            record = measure(**job)
        with open(raw, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


# ----------------------------------------------------------------- report
def _select(records, **where):
    return [r for r in records if all(r.get(k) == v for k, v in where.items())]


def _means(records, key="ACC"):
    """{(table, ratio, scaler, method): (mean, std, n)} over seeds."""
    groups = {}
    for r in records:
        groups.setdefault((r["table"], r["ratio"], r["scaler"], r["method"]), []).append(r[key])
    return {k: (float(np.mean(v)), float(np.std(v)), len(v)) for k, v in groups.items()}


def _methods_present(records, candidates):
    present = {r["method"] for r in records}
    return [m for m in candidates if m in present]


def _summary_rows(records, tables_of, scaler, ratio, methods, key="ACC", legacy=None):
    """One summary row per method over the tables every method was run on.

    ``legacy``: the legacy part's records, for the fit-time ratio column.
    """
    means = _means(records, key)
    acc = _means(records, "ACC")
    tables = [
        t for t in tables_of if all((t, ratio, scaler, m) in means for m in methods + ["KMeans"])
    ]
    rows = []
    if not tables:
        return tables, rows
    for method in methods:
        values = np.array([means[(t, ratio, scaler, method)][0] for t in tables])
        kmeans = np.array([means[(t, ratio, scaler, "KMeans")][0] for t in tables])
        anchors = [a for a in ANCHORS if all((t, ratio, scaler, a) in means for t in tables)]
        best = np.array([max(means[(t, ratio, scaler, a)][0] for a in anchors) for t in tables])
        versus_kmeans, versus_best = values - kmeans, values - best
        stds = [acc[(t, ratio, scaler, method)][1] for t in tables]
        seconds = _means(records, "fit_s")
        cells = [
            method,
            str(len(tables)),
            f"{values.mean():.3f}",
            f"{values.mean() / kmeans.mean():.3f}",
            f"{np.mean(values / kmeans):.3f}",
            _wtl(versus_kmeans),
            f"{versus_kmeans.min():+.3f} ({tables[int(np.argmin(versus_kmeans))]})",
            str(int(np.sum(versus_kmeans < -0.03))),
            _wtl(versus_best),
            f"{float(np.median(stds)):.3f}",
            f"{float(np.median([seconds[(t, ratio, scaler, method)][0] for t in tables])):.2f}",
        ]
        if legacy:
            cells.append(_legacy_ratio(records, legacy, tables, method))
        rows.append(cells)
    return tables, rows


def _legacy_ratio(records, legacy, tables, method):
    """Median over tables of the seed-0 fit time over the legacy defaults' (standard scaling)."""
    seconds = _means(_select(records, seed=0), "fit_s")
    old = _means(legacy, "fit_s")
    now_key, old_key = (None, "standard", method), (None, "standard", legacy_name(method))
    ratios = [
        seconds[(t, *now_key)][0] / old[(t, *old_key)][0]
        for t in tables
        if (t, *old_key) in old and (t, *now_key) in seconds
    ]
    return f"{np.median(ratios):.3f} ({len(ratios)})" if ratios else ""


def _wtl(differences):
    wins = int(np.sum(differences > TIE))
    losses = int(np.sum(differences < -TIE))
    return f"{wins}/{len(differences) - wins - losses}/{losses}"


SUMMARY_HEADERS = [
    "method",
    "tables",
    "mean",
    "mean / KMeans's",
    "mean of ratios",
    "W/T/L vs KMeans",
    "worst vs KMeans",
    "> 3 pts below KMeans",
    "W/T/L vs best anchor",
    "median std over seeds",
    "median fit s",
]


def _per_table(records, scaler, ratio, methods, tables):
    means = {key: _means(records, key) for key in ("ACC", "NMI", "ARI", "F1", "fit_s")}
    rows = []
    for table in tables:
        for method in methods:
            k = (table, ratio, scaler, method)
            if k not in means["ACC"]:
                continue
            cells = [table, method, str(means["ACC"][k][2])]
            for key in ("ACC", "F1", "NMI", "ARI"):
                cells.append("{:.3f} ± {:.3f}".format(*means[key][k][:2]))
            cells.append("{:.2f}".format(means["fit_s"][k][0]))
            rows.append(cells)
    headers = ["table", "method", "seeds", "ACC", "macro-F1", "NMI", "ARI", "fit s"]
    return markdown_table(headers, rows)


def report(records):
    """The markdown report: summaries, acceptance checks, then the per-table tables."""
    records = [{"ratio": None, "threads": 1, **r} for r in records]
    balanced = _select(records, part="balanced")
    legacy = _select(records, part="legacy")
    methods = _methods_present(balanced, ANCHORS + CLUSTERERS)
    sections = []
    for scaler in SCALERS:
        tables, rows = _summary_rows(
            balanced, SUITE, scaler, None, methods, legacy=legacy if scaler == "standard" else None
        )
        if not tables:
            continue
        with_legacy = legacy and scaler == "standard"
        headers = SUMMARY_HEADERS + (["median fit time / legacy"] if with_legacy else [])
        sections.append(
            f"### Summary, {scaler} scaling, {len(tables)} tables (ACC, ties within one point)\n\n"
            + markdown_table(headers, rows)
        )
    sections.append(_scaler_difference(balanced, methods))
    long_tailed = _select(records, part="long-tailed")
    for ratio in RATIOS:
        lt_methods = _methods_present(long_tailed, ANCHORS + LONG_TAILED_CLUSTERERS)
        for key in ("ACC", "F1"):
            tables, rows = _summary_rows(
                long_tailed, MULTICLASS, "standard", ratio, lt_methods, key=key
            )
            if tables:
                sections.append(
                    f"### Long-tailed, rho = {ratio:g}, {key}, {len(tables)} tables\n\n"
                    + markdown_table(SUMMARY_HEADERS, rows).replace("ACC", key)
                )
    sections.append(_threads_section(records))
    sections.append(verdict(records))
    for scaler in SCALERS:
        present = [t for t in SUITE if _select(balanced, table=t, scaler=scaler)]
        if present:
            sections.append(
                f"### Per table, {scaler} scaling\n\n"
                + _per_table(balanced, scaler, None, methods, present)
            )
    for ratio in RATIOS:
        present = [t for t in MULTICLASS if _select(long_tailed, table=t, ratio=ratio)]
        if present:
            lt_methods = _methods_present(long_tailed, ANCHORS + LONG_TAILED_CLUSTERERS)
            sections.append(
                f"### Per table, long-tailed rho = {ratio:g}, standard scaling\n\n"
                + _per_table(long_tailed, "standard", ratio, lt_methods, present)
            )
    if legacy:
        present = [t for t in SUITE if _select(legacy, table=t)]
        sections.append(
            f"### Per table, the defaults of {LEGACY_COMMIT}, seed 0, standard scaling\n\n"
            + _per_table(
                legacy,
                "standard",
                None,
                _methods_present(legacy, [legacy_name(m) for m in CLUSTERERS]),
                present,
            )
        )
    return "\n\n".join(s for s in sections if s)


def _scaler_difference(records, methods):
    means = _means(records)
    rows = []
    for method in methods:
        tables = [t for t in SUITE if all((t, None, s, method) in means for s in SCALERS)]
        if not tables:
            continue
        d = np.array(
            [
                means[(t, None, "minmax", method)][0] - means[(t, None, "standard", method)][0]
                for t in tables
            ]
        )
        worst = int(np.argmax(np.abs(d)))
        rows.append(
            [
                method,
                str(len(tables)),
                f"{d.mean():+.3f}",
                f"{np.median(np.abs(d)):.3f}",
                f"{d[worst]:+.3f} ({tables[worst]})",
            ]
        )
    if not rows:
        return ""
    return (
        "### MinMaxScaler against StandardScaler (ACC, min-max minus standard)\n\n"
        + markdown_table(
            ["method", "tables", "mean difference", "median |difference|", "largest"], rows
        )
    )


def _threads_section(records):
    one = _means(_select(records, part="balanced", seed=0, scaler="standard"))
    two = _means(_select(records, part="threads"))
    rows = []
    for method in CLUSTERERS:
        d = [
            abs(two[(t, None, "standard", method)][0] - one[(t, None, "standard", method)][0])
            for t in SUITE
            if (t, None, "standard", method) in two and (t, None, "standard", method) in one
        ]
        if d:
            rows.append([method, str(len(d)), f"{np.median(d):.3f}", f"{np.max(d):.3f}"])
    if not rows:
        return ""
    return (
        "### One against two torch threads (seed 0, standard scaling, |ACC difference|)\n\n"
        + markdown_table(["method", "tables", "median", "largest"], rows)
    )


def verdict(records):
    """Issue 20's acceptance items that the records can decide, each with its numbers."""
    records = [{"ratio": None, "threads": 1, **r} for r in records]
    balanced = _select(records, part="balanced", scaler="standard")
    means = _means(balanced)
    n_tables = len({r["table"] for r in balanced})
    lines = [
        f"### Acceptance (standard scaling; records on {n_tables} of the {len(SUITE)} tables)",
        "",
        "Each line counts the tables where every method it compares has a record.",
        "",
    ]

    def column(method, tables, source=means, ratio=None):
        return np.array([source[(t, ratio, "standard", method)][0] for t in tables])

    def complete(methods, source=means, tables_of=SUITE, ratio=None):
        return [t for t in tables_of if all((t, ratio, "standard", m) in source for m in methods)]

    for method in ("DEC", "SCAN", "SwAVClustering"):
        tables = complete([method, "KMeans"])
        if not tables:
            continue
        values, kmeans = column(method, tables), column("KMeans", tables)
        below = int(np.sum(values - kmeans < -0.03))
        ok = values.mean() >= kmeans.mean() and below <= 0.15 * len(tables)
        lines.append(
            f"- {'PASS' if ok else 'FAIL'} {method}: mean ACC {values.mean():.3f} vs KMeans "
            f"{kmeans.mean():.3f}; more than 3 points below KMeans on {below} of {len(tables)} "
            f"tables (at most {math.floor(0.15 * len(tables))} allowed)"
        )
    tables = complete([FIRST_CHOICE, *ANCHORS])
    if tables:
        values = column(FIRST_CHOICE, tables)
        anchor_means = {a: column(a, tables).mean() for a in ANCHORS}
        best = np.max([column(a, tables) for a in ANCHORS], axis=0)
        at_least_best = int(np.sum(values >= best - TIE))
        ok = (
            values.mean() >= 1.10 * anchor_means["KMeans"]
            and all(values.mean() >= m for m in anchor_means.values())
            and at_least_best >= len(tables) / 2
        )
        lines.append(
            f"- {'PASS' if ok else 'FAIL'} first choice {FIRST_CHOICE}: mean ACC "
            f"{values.mean():.3f} = {values.mean() / anchor_means['KMeans']:.3f} x KMeans's; "
            "anchors' means "
            + ", ".join(f"{a} {m:.3f}" for a, m in anchor_means.items())
            + f"; >= the table's best anchor (within one point) on {at_least_best} of "
            f"{len(tables)} tables"
        )
    long_tailed = _means(_select(records, part="long-tailed"))
    f1 = _means(_select(records, part="long-tailed"), "F1")
    for ratio in RATIOS:
        tables = complete(["P2OT", "KMeans", "SwAVClustering"], long_tailed, MULTICLASS, ratio)
        if not tables:
            continue
        checks = []
        for key, source in (("ACC", long_tailed), ("macro-F1", f1)):
            p2ot = column("P2OT", tables, source, ratio).mean()
            km = column("KMeans", tables, source, ratio).mean()
            swav = column("SwAVClustering", tables, source, ratio).mean()
            checks.append(
                (
                    p2ot >= km and p2ot >= swav,
                    f"{key} {p2ot:.3f} (KMeans {km:.3f}, SwAV {swav:.3f})",
                )
            )
        gap = column("P2OT", tables, long_tailed, ratio) - column(
            "KMeans", tables, long_tailed, ratio
        )
        below = int(np.sum(gap < -0.05))
        ok = all(c for c, _ in checks) and below <= 0.15 * len(tables)
        lines.append(
            f"- {'PASS' if ok else 'FAIL'} P2OT long-tailed rho={ratio:g}: "
            + "; ".join(text for _, text in checks)
            + f"; more than 5 points below KMeans on {below} of {len(tables)}"
        )
    n_seeds = len({r["seed"] for r in balanced})
    if n_seeds < 2:  # a std over one seed is zero and proves nothing
        lines.append(f"- NOT MEASURED spread: {n_seeds} seed in the records, at least 2 needed")
    elif any(m in CLUSTERERS for (_, _, _, m) in means):
        per_method = {
            m: float(np.median([v[1] for k, v in means.items() if k[3] == m]))
            for m in CLUSTERERS
            if any(k[3] == m for k in means)
        }
        ok = all(v <= 0.03 for v in per_method.values())
        lines.append(
            f"- {'PASS' if ok else 'FAIL'} spread: median over tables of the ACC std over "
            "seeds " + ", ".join(f"{m} {v:.3f}" for m, v in per_method.items())
        )
    return "\n".join(lines)


def main(args):
    raw = Path(__file__).parent / "results" / "tables.jsonl"
    if not args.report_only:
        run(
            raw,
            args.parts or PARTS,
            args.tables or SUITE,
            args.seeds,
            args.scalers or SCALERS,
            args.methods,
            Path(args.legacy_tree or LEGACY_TREE),
            tuple(args.shard) if args.shard else None,
        )
    records = [json.loads(line) for line in raw.read_text().splitlines()]
    return report(records)
