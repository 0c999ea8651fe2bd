"""Shared test helpers (importable because pytest puts tests/ on sys.path)."""

import datetime
import os
import socket

import torch

from sklearn_deepclust import DEC, P2OT, SCAN, SwAVClustering

SMALL_NETWORK = dict(n_clusters=4, hidden_dims=(32,), batch_size=64, random_state=0)


def small_dec(**params):
    """A DEC small and short enough for tests, overridable parameter by parameter."""
    defaults = dict(embedding_dim=4, pretrain_epochs=40, max_epochs=10, update_interval=20)
    return DEC(**{**SMALL_NETWORK, **defaults, **params})


def small_scan(**params):
    """A SCAN small and short enough for tests, overridable parameter by parameter."""
    defaults = dict(
        embedding_dim=8,
        pretext="contrastive",  # the phases these tests check; the default skips it
        pretext_epochs=30,
        max_epochs=60,
        self_label_epochs=10,
        n_neighbors=10,
        n_heads=3,
        self_label_threshold=0.9,  # short training: few rows pass 0.99
    )
    return SCAN(**{**SMALL_NETWORK, **defaults, **params})


def small_swav(**params):
    """A SwAVClustering small and short enough for tests."""
    defaults = dict(
        embedding_dim=8, projection_dim=8, pretext_epochs=20, max_epochs=40, corruption_rate=0.1
    )
    return SwAVClustering(**{**SMALL_NETWORK, **defaults, **params})


def small_p2ot(**params):
    """A P2OT small and short enough for tests.

    Seed 1: with seed 0 it merges two of the four balanced blobs, as its
    cluster sizes are only softly held (it is made for imbalanced clusters).
    """
    defaults = dict(
        embedding_dim=8,
        projection_dim=8,
        pretext_epochs=20,
        max_epochs=40,
        corruption_rate=0.1,
        random_state=1,
    )
    return P2OT(**{**SMALL_NETWORK, **defaults, **params})


def small_pbn(**params):
    """A PBN small and short enough for tests."""
    from sklearn_deepclust.discovery import PBN

    defaults = dict(
        hidden_dims=(32,),
        embedding_dim=8,
        batch_size=64,
        pretext_epochs=10,
        max_epochs=40,
        random_state=0,
    )
    return PBN(**{**defaults, **params})


def small_gmmgcd(**params):
    """A GMMGCD small and short enough for tests."""
    from sklearn_deepclust.discovery import GMMGCD

    defaults = dict(
        hidden_dims=(32,),
        embedding_dim=8,
        projection_dim=16,
        batch_size=64,
        max_epochs=30,
        corruption_rate=0.1,
        random_state=0,
    )
    return GMMGCD(**{**defaults, **params})


def join_gloo_group(rank, world_size, port):
    """In a spawned test process: join a CPU ``gloo`` group on localhost."""
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    # A bounded wait: a collective left unmatched fails the test, not the run.
    torch.distributed.init_process_group(
        "gloo", rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=120)
    )


def free_port():
    """A TCP port nothing listens on, for a test's process group."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seeded_module(build, seed=0):
    """``build()`` under a fixed torch seed, leaving the global generator as it was.

    A module's eager layers draw their weights from torch's global generator
    when built; unseeded, a test's user module (and so its clustering) would
    depend on whatever ran before it in the same worker.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build()
