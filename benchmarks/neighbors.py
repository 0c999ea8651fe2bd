"""Neighbour mining on the benchmark tables: purity, agreement, time and peak memory.

Each table runs in a fresh subprocess. After the table is loaded the kernel's
peak-RSS counter is reset (``/proc/self/clear_refs``), so the peak read after
mining (``VmHWM``) is the mining's own. The chunked search is compared with
scikit-learn's brute-force ``NearestNeighbors`` (cosine) on the same features.
"""

import time

from sklearn_deepclust._report import markdown_table

from ._child import run_in_child
from ._data import TABLES
from .scale import _status_kib

N_NEIGHBORS = 20


def measure(table, chunk_size=256):
    """Run in the child process: mine, then check against brute force."""
    import numpy as np
    import torch
    from sklearn.neighbors import NearestNeighbors

    from sklearn_deepclust.neighbors import mine_neighbors, neighbor_purity

    from ._data import load_table

    X, y = load_table(table)
    features = torch.from_numpy(X)
    before_kib = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    start = time.perf_counter()
    mined = mine_neighbors(features, N_NEIGHBORS, chunk_size=chunk_size).numpy()
    seconds = time.perf_counter() - start
    peak_kib = _status_kib("VmHWM")

    brute = NearestNeighbors(n_neighbors=N_NEIGHBORS + 1, metric="cosine", algorithm="brute")
    distance, reference = brute.fit(X).kneighbors(X)
    # Drop each row's own entry (a duplicate row may come first instead).
    keep = reference != np.arange(len(X))[:, None]
    keep[keep.sum(axis=1) > N_NEIGHBORS, -1] = False
    reference = reference[keep].reshape(len(X), N_NEIGHBORS)
    distance = distance[keep].reshape(len(X), N_NEIGHBORS)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    mined_distance = 1 - np.einsum("id,ijd->ij", unit, unit[mined])
    same_sets = np.mean([set(a) == set(b) for a, b in zip(mined, reference)])

    # The approximate search (cells of 1024 rows, 8 probes): a neighbour it
    # returns counts as found when it is no farther than the exact k-th one,
    # so that rows tied at the same distance are not counted as misses.
    start = time.perf_counter()
    approximate = mine_neighbors(
        features, N_NEIGHBORS, algorithm="partition", chunk_size=chunk_size, random_state=0
    ).numpy()
    approximate_seconds = time.perf_counter() - start
    approximate_distance = 1 - np.einsum("id,ijd->ij", unit, unit[approximate])
    found = approximate_distance <= mined_distance[:, -1:] + 1e-6
    return {
        "table": table,
        "n": len(X),
        "d": X.shape[1],
        "seconds": seconds,
        "peak_mib": (peak_kib - before_kib) / 1024,
        "full_matrix_mib": len(X) ** 2 * 4 / 2**20,
        "max_kth_distance_gap": float(np.abs(mined_distance - distance).max()),
        "same_set_fraction": float(same_sets),
        "purity": neighbor_purity(mined, y),
        "partition_seconds": approximate_seconds,
        "partition_recall": float(found.mean()),
        "partition_purity": neighbor_purity(approximate, y),
    }


def run(tables=TABLES):
    records = []
    for table in tables:
        records.append(
            run_in_child(
                f"from benchmarks.neighbors import measure; print(json.dumps(measure({table!r})))"
            )
        )
    rows = [
        [
            r["table"],
            f"{r['n']:,}",
            str(r["d"]),
            f"{r['seconds']:.2f}",
            f"{r['peak_mib']:.0f}",
            f"{r['full_matrix_mib']:.0f}",
            f"{r['max_kth_distance_gap']:.1e}",
            f"{r['same_set_fraction']:.3f}",
            f"{r['purity']:.3f}",
            f"{r['partition_seconds']:.2f}",
            f"{r['partition_recall']:.3f}",
            f"{r['partition_purity']:.3f}",
        ]
        for r in records
    ]
    headers = [
        "table",
        "N",
        "d",
        "mining s",
        "peak MiB",
        "N x N float32 MiB",
        "max distance gap to brute force",
        "same neighbour set",
        "purity (input features)",
        "partition s",
        "partition recall",
        "partition purity",
    ]
    note = (
        f"{N_NEIGHBORS} cosine neighbours of the min-max scaled input features, "
        "chunks of 256 query rows, CPU. Peak = the resident-set peak of the "
        "mining above the process before it. The distance column compares the "
        "j-th neighbour's cosine distance with scikit-learn's brute force for "
        "every j: neighbour sets can differ only among rows tied at the same "
        "distance (the features are small integers before scaling, so ties are "
        "common: letter has 16 features of 16 values each). The partition columns are "
        "the approximate search (k-means cells of about 1,024 rows, 8 probed; what SCAN "
        "uses above 50,000 rows, forced here): its time, the fraction of its neighbours "
        "no farther than the exact 20th, and their purity."
    )
    return markdown_table(headers, rows) + "\n\n" + note, records
