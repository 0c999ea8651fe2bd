"""Fit timing that leaves out what a process pays once, whatever it fits."""

import functools


@functools.cache
def warm_up_torch():
    """Build one Adam optimiser, so that no timed fit pays torch's lazy imports.

    torch 2.13 imports ``torch._dynamo`` when the first optimiser is made:
    2.5 to 3.5 s on these machines, once per process. A benchmark that fits each
    estimator in a fresh process (the ``tables`` benchmark's legacy fits)
    would otherwise add it to every fit, and one that fits in a long-lived
    process to its first fit only.
    """
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
