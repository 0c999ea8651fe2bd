"""Scaling of every estimator with N: time per epoch and peak memory per row.

Each (estimator, N) runs in a fresh subprocess:

1. a warm-up fit of the same estimator on 2,000 rows pays the one-off costs
   (torch's thread pools and kernels, lazily imported modules, allocator
   arenas), so that what is measured next grows with N; then the heap it
   freed is handed back to the kernel (glibc's ``malloc_trim``), or the fit
   would reuse it without its resident set growing and a small N would look
   cheaper than it is;
2. the N rows are generated and the kernel's peak-RSS counter is reset
   (``/proc/self/clear_refs``);
3. the fit runs; its peak (``VmHWM``) above the resident set before the data
   were made is the memory of the data (50 float32 features, 200 bytes per
   row) plus everything the fit allocates.

The time of an epoch is the median over a phase's epochs (skorch's ``dur``);
for NCDKMeans, which has no epochs, it is a Lloyd iteration (fit time over
``n_iter_``). "Other" is the fit's time outside the epochs: k-means
initialisations, neighbour mining, the mixture's EM, predictions.
"""

import json
import math
import os
import time

import numpy as np

from sklearn_deepclust._report import markdown_table

from ._child import run_in_child

SIZES = (10_000, 100_000, 1_000_000)
N_FEATURES = 50
N_CLASSES = 10
N_NOVEL = 3  # discovery estimators: the last 3 classes are unlabelled
EPOCHS = 3  # per phase
WARM_UP_ROWS = 2_000
BATCH_SIZE = 256
# Small networks and few epochs: the benchmark measures how the cost grows.
NETWORK = {"hidden_dims": (64,), "embedding_dim": 16, "batch_size": BATCH_SIZE}
ESTIMATORS = ("DEC", "SCAN", "SwAVClustering", "P2OT", "GMMGCD", "PBN", "NCDKMeans")


def _status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def make_estimator(name, n_samples, device="cpu"):
    """The estimator ``name`` as the benchmark fits it on ``n_samples`` rows."""
    import sklearn_deepclust as sd

    common = {"random_state": 0, "device": device}
    deep = {**NETWORK, **common}
    if name == "DEC":
        return sd.DEC(
            N_CLASSES,
            pretrain_epochs=EPOCHS,
            max_epochs=EPOCHS,
            tol=0.0,
            n_init=1,
            update_interval=math.ceil(n_samples / BATCH_SIZE),  # one refresh per epoch
            **deep,
        )
    if name == "SCAN":
        return sd.SCAN(
            N_CLASSES,
            pretext_epochs=EPOCHS,
            max_epochs=EPOCHS,
            self_label_epochs=EPOCHS,
            self_label_threshold=0.5,  # three epochs leave few rows above 0.99
            **deep,
        )
    if name in ("SwAVClustering", "P2OT"):
        return getattr(sd, name)(
            N_CLASSES, pretext_epochs=EPOCHS, max_epochs=EPOCHS, projection_dim=16, **deep
        )
    if name == "GMMGCD":
        return sd.GMMGCD(N_CLASSES, max_epochs=EPOCHS, projection_dim=16, **deep)
    if name == "PBN":
        return sd.PBN(N_NOVEL, pretext_epochs=EPOCHS, max_epochs=EPOCHS, n_init=1, **deep)
    if name == "NCDKMeans":
        return sd.NCDKMeans(N_NOVEL, n_init=1, max_iter=20, tol=0.0, **common)
    raise ValueError(f"unknown estimator {name!r}; choose from {ESTIMATORS}")


def make_data(n_samples, seed=0):
    """Ten gaussian classes in 50 features; the partial labels of discovery.

    The labels mark half of the rows of the 7 known classes; the 3 novel
    classes and the other half are -1.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(N_CLASSES, N_FEATURES)).astype(np.float32)
    y = rng.integers(0, N_CLASSES, n_samples)
    X = centers[y]
    X += rng.standard_normal(size=X.shape, dtype=np.float32)
    y_partial = np.where((y < N_CLASSES - N_NOVEL) & (rng.random(n_samples) < 0.5), y, -1)
    return X, y_partial


def _fit(estimator, X, y_partial):
    from sklearn_deepclust.discovery import GMMGCD, PBN, NCDKMeans

    if isinstance(estimator, (GMMGCD, PBN, NCDKMeans)):
        return estimator.fit(X, y_partial)
    return estimator.fit(X)


def _return_free_heap():
    """Give the heap's free pages back to the kernel (glibc; a no-op elsewhere)."""
    import ctypes
    import ctypes.util

    libc_name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(libc_name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass  # not glibc: nothing to trim, the reading may be lower at small N


def measure(name, n_samples, device="cpu"):
    """Run in the child process: warm up, then fit on ``n_samples`` rows."""
    import gc

    import numpy as np
    import torch
    from sklearn.base import clone

    import sklearn_deepclust.cluster._scan as scan_module

    estimator = make_estimator(name, n_samples, device)
    _fit(clone(estimator), *make_data(WARM_UP_ROWS, seed=1))
    gc.collect()
    _return_free_heap()

    mining_seconds = []
    mine = scan_module.mine_neighbors

    def timed_mining(*args, **kwargs):
        start = time.perf_counter()
        neighbors = mine(*args, **kwargs)
        mining_seconds.append(time.perf_counter() - start)
        return neighbors

    scan_module.mine_neighbors = timed_mining

    before_data_kib = _status_kib("VmRSS")
    X, y_partial = make_data(n_samples)
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # reset the peak resident set size to the current one
    start = time.perf_counter()
    _fit(estimator, X, y_partial)
    fit_seconds = time.perf_counter() - start
    peak_kib = _status_kib("VmHWM")

    # A bare streaming pass over the data (X @ W, 10 outputs): the floor of
    # any method's growth on this machine, where 100k rows (20 MB) stay in
    # the cache and 1M rows (200 MB) do not.
    X_tensor, weights = torch.from_numpy(X), torch.randn(N_FEATURES, N_CLASSES)
    X_tensor @ weights
    start = time.perf_counter()
    for _ in range(10):
        X_tensor @ weights
    bare_pass_seconds = (time.perf_counter() - start) / 10

    history = getattr(estimator, "history_", {})
    epoch_seconds = {phase: float(np.median(h[:, "dur"])) for phase, h in history.items() if len(h)}
    in_epochs = sum(float(np.sum(h[:, "dur"])) for h in history.values())
    if not history:  # k-means has no epochs: the whole fit stands for one
        epoch_seconds = {f"fit ({estimator.n_iter_} Lloyd iterations)": fit_seconds}
        in_epochs = fit_seconds
    return {
        "estimator": name,
        "n": n_samples,
        "epoch_s": epoch_seconds,
        "fit_s": fit_seconds,
        "other_s": fit_seconds - in_epochs,
        "mining_s": sum(mining_seconds),
        "bare_pass_s": bare_pass_seconds,
        "peak_bytes_per_row": (peak_kib - before_data_kib) * 1024 / n_samples,
        "threads": torch.get_num_threads(),
        "device": device,
        "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
    }


def run(estimators=ESTIMATORS, sizes=SIZES, device="cpu", raw=None, malloc_mmap_threshold=None):
    """Measure every (estimator, N) in its own process; append each record to ``raw``.

    ``malloc_mmap_threshold`` (bytes) fixes glibc's mmap threshold in the
    children, which also turns off its dynamic raising of the threshold.
    """
    environment = {}
    if malloc_mmap_threshold is not None:
        environment["MALLOC_MMAP_THRESHOLD_"] = str(malloc_mmap_threshold)
    records = []
    for name in estimators:
        for n in sizes:
            record = run_in_child(
                "from benchmarks.scale import measure; "
                f"print(json.dumps(measure({name!r}, {n}, {device!r})))",
                environment,
            )
            records.append(record)
            if raw is not None:
                with open(raw, "a") as out:
                    out.write(json.dumps(record) + "\n")
    return records


def _order(name):
    return ESTIMATORS.index(name) if name in ESTIMATORS else len(ESTIMATORS)


def _epoch_total(record):
    return sum(record["epoch_s"].values())


def report(records):
    """Tables of the fastest record of each (estimator, N), in ESTIMATORS order.

    Repeated runs (``python -m benchmarks scale`` appends) are reduced to the
    shortest epochs and the lowest peak memory: on a shared machine the
    minimum is the measurement least disturbed by other load (and, for the
    peak, by freed memory the allocator had not yet returned).
    """
    fastest, lowest_peak = {}, {}
    for r in records:
        key = (r["estimator"], r["n"])
        if key not in fastest or _epoch_total(r) < _epoch_total(fastest[key]):
            fastest[key] = r
        lowest_peak[key] = min(lowest_peak.get(key, np.inf), r["peak_bytes_per_row"])
    repeats = len(records) / len(fastest)
    fastest = {key: {**r, "peak_bytes_per_row": lowest_peak[key]} for key, r in fastest.items()}
    records = sorted(fastest.values(), key=lambda r: (_order(r["estimator"]), r["n"]))
    rows = []
    for r in records:
        phases = ", ".join(f"{phase} {s:.2f}" for phase, s in r["epoch_s"].items())
        other = f"{r['other_s']:.1f}"
        if r["mining_s"]:
            other += f" (mining {r['mining_s']:.1f})"
        rows.append(
            [
                r["estimator"],
                f"{r['n']:,}",
                phases,
                f"{r['fit_s']:.1f}",
                other,
                f"{r['peak_bytes_per_row'] * r['n'] / 2**20:.0f}",
                f"{r['peak_bytes_per_row']:.0f}",
            ]
        )
    table = markdown_table(
        [
            "estimator",
            "N",
            "epoch s (median, per phase)",
            "whole fit s",
            "other s",
            "peak MiB",
            "peak bytes / row",
        ],
        rows,
    )
    summary_rows = []
    for name in dict.fromkeys(r["estimator"] for r in records):
        by_n = {r["n"]: r for r in records if r["estimator"] == name}
        sizes = sorted(by_n)
        peaks = [by_n[n]["peak_bytes_per_row"] * n for n in sizes]
        marginal = [
            (peaks[i + 1] - peaks[i]) / (sizes[i + 1] - sizes[i]) for i in range(len(sizes) - 1)
        ]
        per_row = [by_n[n]["peak_bytes_per_row"] for n in sizes]
        cells = [name, "", ""]
        if 100_000 in by_n and 1_000_000 in by_n:
            big, small = by_n[1_000_000], by_n[100_000]
            cells[1:] = [
                f"{_epoch_total(big) / _epoch_total(small):.1f}",
                f"{big['fit_s'] / small['fit_s']:.1f}",
            ]
        # The peak is a + b * N: ``a`` is what a fit holds whatever N (the
        # training step's buffers, k-means scratch), read off the smallest N
        # with the first marginal slope as ``b``.
        fixed = peaks[0] - sizes[0] * marginal[0] if marginal else float("nan")
        cells += [
            " / ".join(f"{m:.0f}" for m in marginal),
            f"{max(marginal) / min(marginal):.2f}" if len(marginal) > 1 else "",
            f"{fixed / 2**20:.1f}",
            f"{max(per_row) / min(per_row):.2f}",
        ]
        summary_rows.append(cells)
    passes = {}
    for r in records:
        passes[r["n"]] = min(passes.get(r["n"], float("inf")), r["bare_pass_s"])
    if 100_000 in passes and 1_000_000 in passes:
        ratio = passes[1_000_000] / passes[100_000]
        summary_rows.append(["bare pass over X (X @ W)", f"{ratio:.1f}", "", "", "", "", ""])
    summary = markdown_table(
        [
            "estimator",
            "1M / 100k epoch time",
            "1M / 100k whole fit",
            "marginal bytes / row between successive N",
            "marginal max / min",
            "fixed part of the peak, MiB",
            "peak bytes / row, max / min",
        ],
        summary_rows,
    )
    note = (
        f"{N_FEATURES} float32 features (200 bytes per row of data), {N_CLASSES} gaussian "
        f"classes; discovery estimators get half of the rows of 7 classes labelled and "
        f"{N_NOVEL} novel classes (their number given). Networks: hidden_dims=(64,), "
        f"embedding_dim=16 (projection 16), batch {BATCH_SIZE}, {EPOCHS} epochs per phase; "
        "DEC: k-means n_init=1, one target refresh per epoch; SCAN: its default mining "
        "(exact up to 50,000 rows, k-means cells of 1,024 rows and 8 probes above), "
        "10 heads; GMMGCD: n_clusters=10 (no split and merge); PBN: k-means n_init=1; "
        "NCDKMeans: n_init=1, at most 20 Lloyd iterations (its epoch column is the whole fit). "
        f"Device {records[0]['device']}, {records[0]['threads']} torch threads; each "
        f"(estimator, N) ran {repeats:g} times, the fastest run and the lowest peak are "
        "shown. The epoch "
        "ratio sums the phases' median epochs. Before each measured fit the warm-up's "
        "freed heap is returned to the kernel (malloc_trim), so every page the fit touches "
        "counts. The marginal bytes per row are the growth of the peak per added row "
        "between successive N: flat when memory is linear in N. The fixed part is the "
        "peak at the smallest N less that many rows at the first marginal rate: what a "
        "fit holds whatever N (a training step's batch x batch similarities, a mining "
        "block, k-means scratch), which is what lifts the peak per row at 10k."
    )
    thresholds = {r.get("malloc_mmap_threshold") for r in records}
    if thresholds != {None}:
        note += (
            " glibc's mmap threshold was fixed (MALLOC_MMAP_THRESHOLD_="
            f"{', '.join(sorted(str(value) for value in thresholds))}): every block above it "
            "is mapped on its own and unmapped when freed, so the heap does not keep freed "
            "blocks and the peak is what the fit holds at once."
        )
    return table + "\n\n" + summary + "\n\n" + note
