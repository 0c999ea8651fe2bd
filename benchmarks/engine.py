"""Engine overhead: DEC's training in the package vs a bare torch loop.

Both train the same network (same initial weights, centroids, batch size,
optimiser and target refresh period) on the same data, in the same process,
alternating so that machine noise hits both. Per-epoch times are compared as
medians; the ratio package / bare is the number that matters.
"""

import copy
import time

import numpy as np
import torch
from torch.nn import functional as F

from sklearn_deepclust import DEC
from sklearn_deepclust._engine import batched_forward
from sklearn_deepclust._report import markdown_table
from sklearn_deepclust.cluster import target_distribution
from sklearn_deepclust.nn import Autoencoder, make_decoder

from ._data import load_table


def bare_pretrain_epochs(autoencoder, X, epochs, batch_size, lr, seed):
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=lr)
    generator = torch.Generator(device=X.device).manual_seed(seed)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        total = torch.zeros((), device=X.device)
        order = torch.randperm(len(X), device=X.device, generator=generator)
        for i in range(0, len(X), batch_size):
            xb = X[order[i : i + batch_size]]
            loss = F.mse_loss(autoencoder(xb), xb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(xb)
        total.item()
        times.append(time.perf_counter() - start)
    return times


def bare_cluster_epochs(network, X, epochs, batch_size, lr, update_interval, seed):
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    generator = torch.Generator(device=X.device).manual_seed(seed)
    times, step = [], 0
    for _ in range(epochs):
        start = time.perf_counter()
        total = torch.zeros((), device=X.device)
        order = torch.randperm(len(X), device=X.device, generator=generator)
        for i in range(0, len(X), batch_size):
            if step % update_interval == 0:
                network.eval()
                q = batched_forward(network, X, batch_size).exp()
                network.train()
                target = target_distribution(q)
                q.argmax(1).float().mean().item()  # the label-change check syncs too
            index = order[i : i + batch_size]
            log_q, _ = network(X[index])
            loss = F.kl_div(log_q, target[index], reduction="batchmean")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(index)
            step += 1
        total.item()
        times.append(time.perf_counter() - start)
    return times


def run(table="penbased", epochs=6, repeats=3, device="cpu"):
    X_np, y = load_table(table)
    n_clusters = len(np.unique(y))
    X = torch.from_numpy(X_np).to(device)
    batch_size, lr, update_interval = 256, 1e-3, 140
    results = {"pretrain": {"package": [], "bare": []}, "cluster": {"package": [], "bare": []}}
    for repeat in range(repeats):
        dec = DEC(
            n_clusters,
            pretrain_epochs=epochs,
            max_epochs=epochs,
            tol=0.0,
            update_interval=update_interval,
            batch_size=batch_size,
            lr=lr,
            n_init=1,
            random_state=repeat,
            device=device,
        ).fit(X_np)
        # Epoch 1 includes allocator warm-up in both loops; drop it.
        results["pretrain"]["package"] += list(dec.history_["pretrain"][1:, "dur"])
        results["cluster"]["package"] += list(dec.history_["cluster"][1:, "dur"])
        # The bare loops start from copies of the fitted networks: same shapes,
        # same kind of values, the work per epoch is identical.
        network = copy.deepcopy(dec.module_).train()
        autoencoder = Autoencoder(
            copy.deepcopy(dec.module_.encoder), make_decoder(X.shape[1], dec.hidden_dims, 10)
        ).to(device)
        results["pretrain"]["bare"] += bare_pretrain_epochs(
            autoencoder, X, epochs, batch_size, lr, repeat
        )[1:]
        results["cluster"]["bare"] += bare_cluster_epochs(
            network, X, epochs, batch_size, lr, update_interval, repeat
        )[1:]
    rows, ratios = [], {}
    for phase, times in results.items():
        package, bare = np.median(times["package"]), np.median(times["bare"])
        ratios[phase] = package / bare
        rows.append([phase, f"{package:.3f}", f"{bare:.3f}", f"{package / bare:.3f}"])
    header = [
        "phase",
        "package s/epoch (median)",
        "bare torch s/epoch (median)",
        "ratio package/bare",
    ]
    note = (
        f"table {table} ({len(X_np)} x {X_np.shape[1]}), DEC network "
        f"d-500-500-2000-10, batch {batch_size}, Adam lr {lr}, update_interval "
        f"{update_interval}, {repeats} x {epochs - 1} timed epochs per loop, "
        f"device {device}, torch threads {torch.get_num_threads()}"
    )
    return markdown_table(header, rows) + "\n\n" + note, ratios
