"""Scaling of one DEC epoch with N: time and peak memory per row.

Each N runs in a fresh subprocess. After the data are generated the kernel's
peak-RSS counter is reset (``/proc/self/clear_refs``), so the peak that is read
after the fit (``VmHWM``) is the fit's own: the data (50 float32 features = 200
bytes per row) plus everything the fit allocates.
"""

import math
import time

from sklearn_deepclust._report import markdown_table

from ._child import run_in_child

SIZES = (10_000, 100_000, 1_000_000)
N_FEATURES = 50
EPOCHS = 3  # per phase; the median epoch time is reported


def _status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def measure(n_samples, device="cpu"):
    """Run in the child process: fit one pretraining and one clustering epoch."""
    import numpy as np
    import torch

    from sklearn_deepclust import DEC

    before_data_kib = _status_kib("VmRSS")
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=4.0, size=(10, N_FEATURES)).astype(np.float32)
    X = centers[rng.integers(0, 10, n_samples)]
    X += rng.standard_normal(size=X.shape, dtype=np.float32)
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # reset the peak resident set size to the current one
    batches = math.ceil(n_samples / 256)
    dec = DEC(
        10,
        hidden_dims=(64,),
        embedding_dim=10,
        pretrain_epochs=EPOCHS,
        max_epochs=EPOCHS,
        tol=0.0,
        n_init=1,
        update_interval=batches,
        batch_size=256,
        random_state=0,
        device=device,
    )
    start = time.perf_counter()
    dec.fit(X)
    total = time.perf_counter() - start
    peak_kib = _status_kib("VmHWM")
    return {
        "n": n_samples,
        "pretrain_epoch_s": float(np.median(dec.history_["pretrain"][:, "dur"])),
        "cluster_epoch_s": float(np.median(dec.history_["cluster"][:, "dur"])),
        "fit_s": total,
        "peak_bytes_per_row": (peak_kib - before_data_kib) * 1024 / n_samples,
        "threads": torch.get_num_threads(),
    }


def run(sizes=SIZES, device="cpu"):
    records = []
    for n in sizes:
        records.append(
            run_in_child(
                f"from benchmarks.scale import measure; print(json.dumps(measure({n}, {device!r})))"
            )
        )
    rows, previous = [], None
    for r in records:
        peak = r["peak_bytes_per_row"] * r["n"]
        marginal = (
            "" if previous is None else (f"{(peak - previous[1]) / (r['n'] - previous[0]):.0f}")
        )
        rows.append(
            [
                f"{r['n']:,}",
                f"{r['pretrain_epoch_s']:.2f}",
                f"{r['cluster_epoch_s']:.2f}",
                f"{r['fit_s']:.1f}",
                f"{peak / 2**20:.0f}",
                f"{r['peak_bytes_per_row']:.0f}",
                marginal,
            ]
        )
        previous = (r["n"], peak)
    by_n = {r["n"]: r for r in records}
    lines = []
    if 100_000 in by_n and 1_000_000 in by_n:
        for key in ("pretrain_epoch_s", "cluster_epoch_s"):
            ratio = by_n[1_000_000][key] / by_n[100_000][key]
            lines.append(f"- 1M / 100k time ratio, {key}: {ratio:.1f}")
    table = markdown_table(
        [
            "N",
            "pretrain epoch s",
            "cluster epoch s",
            "whole fit s",
            "peak MiB",
            "peak bytes / row",
            "marginal bytes / row (vs previous N)",
        ],
        rows,
    )
    note = (
        f"DEC with hidden_dims=(64,), embedding_dim=10, batch 256, one target refresh "
        f"per epoch, k-means n_init=1, {EPOCHS} epochs per phase (median epoch time); "
        f"{N_FEATURES} float32 features (200 bytes/row of data); device {device}. "
        "Peak = the fit's resident-set peak above the process before the data were "
        "made (data included); the marginal column is the growth per added row, "
        "free of fixed costs."
    )
    return table + "\n\n" + note + "\n" + "\n".join(lines), records
