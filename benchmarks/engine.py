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

from sklearn_deepclust._engine import RefreshEveryNBatches, batched_forward, train_phase
from sklearn_deepclust._report import markdown_table
from sklearn_deepclust.cluster import target_distribution
from sklearn_deepclust.cluster._dec import _DECLoss, _DECNetwork, _TargetRefresh
from sklearn_deepclust.nn import Autoencoder, ReconstructionLoss, make_decoder, make_encoder

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
                q = batched_forward(network.log_q, X, batch_size).exp()
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
    """Time both DEC phases, engine vs bare loop, from identical starting weights.

    The order alternates between repeats (package first, then bare first) so
    that drift in machine speed does not favour one side.
    """
    X_np, y = load_table(table)
    n_clusters = len(np.unique(y))
    X = torch.from_numpy(X_np).to(device)
    batch_size, lr, update_interval = 256, 1e-3, 140
    torch.manual_seed(0)
    encoder = make_encoder(X.shape[1], (500, 500, 2000), 10).to(device)
    decoder = make_decoder(X.shape[1], (500, 500, 2000), 10).to(device)
    with torch.no_grad():
        centroids = encoder(X[torch.randperm(len(X), device=device)[:n_clusters]])

    def package_epoch_times(module, loss, seed, callbacks=()):
        history = train_phase(
            module,
            loss,
            X,
            max_epochs=epochs,
            batch_size=batch_size,
            optimizer=torch.optim.Adam,
            lr=lr,
            device=X.device,
            seed=seed,
            callbacks=callbacks,
        )
        return list(history[:, "dur"])

    def package_pretrain(seed):
        autoencoder = Autoencoder(copy.deepcopy(encoder), copy.deepcopy(decoder))
        return package_epoch_times(autoencoder, ReconstructionLoss(), seed)

    def bare_pretrain(seed):
        autoencoder = Autoencoder(copy.deepcopy(encoder), copy.deepcopy(decoder))
        return bare_pretrain_epochs(autoencoder, X, epochs, batch_size, lr, seed)

    def package_cluster(seed):
        network = _DECNetwork(copy.deepcopy(encoder), centroids.clone(), 1.0)
        loss = _DECLoss(0.0)
        refresh = _TargetRefresh(X, loss, tol=0.0, batch_size=batch_size)
        return package_epoch_times(
            network, loss, seed, [RefreshEveryNBatches(refresh, update_interval)]
        )

    def bare_cluster(seed):
        network = _DECNetwork(copy.deepcopy(encoder), centroids.clone(), 1.0)
        return bare_cluster_epochs(network, X, epochs, batch_size, lr, update_interval, seed)

    loops = {
        "pretrain": {"package": package_pretrain, "bare": bare_pretrain},
        "cluster": {"package": package_cluster, "bare": bare_cluster},
    }
    results = {phase: {"package": [], "bare": []} for phase in loops}
    for repeat in range(repeats):
        for phase, sides in loops.items():
            order = ("package", "bare") if repeat % 2 == 0 else ("bare", "package")
            for side in order:
                # Epoch 1 includes allocator warm-up in both loops; drop it.
                results[phase][side] += sides[side](repeat)[1:]
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
        f"d-500-500-2000-10 from identical starting weights, batch {batch_size}, "
        f"Adam lr {lr}, target refresh every {update_interval} batches, {repeats} x "
        f"{epochs - 1} timed epochs per loop (order alternating), device {device}, "
        f"torch threads {torch.get_num_threads()}"
    )
    return markdown_table(header, rows) + "\n\n" + note, ratios
