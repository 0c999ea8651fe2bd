"""The few torch.distributed operations the package needs, no-ops in one process.

Training on several processes (one per device or host, each fitting on its
own shard of the rows) is described in :mod:`sklearn_deepclust._engine`.
"""

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["max_over_processes", "process_rank", "process_seed", "sum_over_processes", "world_size"]


def world_size():
    """Number of torch.distributed processes; 1 when none is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def process_rank():
    """Rank of this process among the torch.distributed processes; 0 when none."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return 0


def process_seed(seed):
    """A seed for this process's own random draws (views, sampled neighbours).

    ``seed`` itself on process 0 and in a single process, so that one process
    draws what it always drew; on process ``r > 0`` a seed derived from
    ``(seed, r)``, so that the processes' draws are independent, as those of
    one process on all their rows together would be.
    """
    rank = process_rank()
    if rank == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), rank]).generate_state(1)[0])


def sum_over_processes(value, distributed=None):
    """``value`` (a tensor) summed over the torch.distributed processes.

    ``distributed=None`` sums when there is more than one process; otherwise
    ``value`` is returned as it is. The input is never modified.
    """
    return _reduced_over_processes(value, dist.ReduceOp.SUM, distributed)


def max_over_processes(value, distributed=None):
    """``value`` (a tensor), elementwise the largest over the processes (as
    :func:`sum_over_processes`)."""
    return _reduced_over_processes(value, dist.ReduceOp.MAX, distributed)


def _reduced_over_processes(value, op, distributed):
    if world_size() > 1 if distributed is None else distributed:
        value = value.clone()
        dist.all_reduce(value, op=op)
    return value


def broadcast_from_first_process(module):
    """Copy the parameters and buffers of process 0 to every process.

    Called as a phase starts, as DistributedDataParallel does when it wraps a
    module: whatever a process initialised from its own shard (k-means
    centroids, prototypes) is then the same everywhere.
    """
    if world_size() == 1:
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def average_gradients(module):
    """Replace each gradient of ``module`` by its mean over the processes.

    One flattened all-reduce per step.
    """
    world = world_size()
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if world == 1 or not grads:
        return
    flat = sum_over_processes(torch.cat([g.reshape(-1) for g in grads])) / world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()
