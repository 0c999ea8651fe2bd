"""The training engine: one skorch ``NeuralNet`` subclass drives every phase.

A *phase* is a torch module, a loss module called as ``loss(output, index, x)``
and optional callbacks. The dataset yields ``(x, index)`` so that a loss can
look up per-sample state (DEC's target distribution, pseudo-labels) by index;
callbacks refresh that state between batches. A phase may also build the
module's input from the batch and its indices (``batch_inputs``): two random
views of each row, or each row followed by one of its mined neighbours.

Everything stays on the training device: batches are sliced from one tensor
built once, the shuffling permutation is drawn on the device, and the epoch
loss is accumulated on the device and read back once per epoch.

Under ``torch.distributed`` (one process per device or host, each fitting
the estimator on its own shard of the rows, shards of equal size) a phase
starts from process 0's weights, every step averages the gradients over the
processes, as DistributedDataParallel does, and the epoch loss is the mean
over all shards; the optimal-transport codes reduce their marginals over the
processes (:mod:`sklearn_deepclust.ot`). A step of P processes with batches
of B rows each is then the step of one process on the P * B rows together,
for losses that are means over rows given the batch (autoencoder
pretraining, SwAV, P²OT). Random views and sampled neighbours are drawn from
a seed of each process's own, so that no two processes corrupt their rows
alike. State that a method computes over its whole
training set (DEC's target distribution, SCAN's neighbours, mixtures) is
computed over each process's shard.
"""

import math

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer, PrintLog, ProgressBar

from ._distributed import (
    average_gradients,
    broadcast_from_first_process,
    sum_over_processes,
    world_size,
)

__all__ = [
    "ConvergenceReached",
    "DeviceBatchIterator",
    "IndexedTensorDataset",
    "PhaseNet",
    "RefreshEveryNBatches",
    "batched_forward",
    "n_batches",
    "train_phase",
]


class ConvergenceReached(Exception):
    """Raised by a callback to end a phase early because its stopping rule holds."""


class IndexedTensorDataset(torch.utils.data.Dataset):
    """A tensor of samples that yields ``(x, index)`` pairs.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        The samples, already on the training device.
    """

    def __init__(self, X):
        self.X = X

    def __len__(self):
        return self.X.shape[0]

    def __getitem__(self, index):
        return self.X[index], index


class DeviceBatchIterator:
    """Mini-batches sliced from an :class:`IndexedTensorDataset` on its device.

    A drop-in replacement for ``torch.utils.data.DataLoader`` as skorch's
    ``iterator_train``: no worker processes, no collation, no host round trip.

    Parameters
    ----------
    dataset : IndexedTensorDataset
        The data to iterate over.
    batch_size : int
        Number of samples per batch. The last batch may be smaller; one of a
        single sample joins the batch before it, so that no training step
        sees a lone row (batch normalisation and in-batch contrasts need
        two).
    shuffle : bool, default=False
        Draw a new permutation of the samples at each pass.
    generator : torch.Generator or None, default=None
        Source of randomness for the permutation; it must live on the
        dataset's device.
    """

    def __init__(self, dataset, batch_size, shuffle=False, generator=None):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self):
        return n_batches(len(self.dataset), self.batch_size)

    def __iter__(self):
        X = self.dataset.X
        n_samples = X.shape[0]
        if self.shuffle:
            order = torch.randperm(n_samples, device=X.device, generator=self.generator)
        else:
            order = torch.arange(n_samples, device=X.device)
        starts = _batch_starts(n_samples, self.batch_size)
        for start, stop in zip(starts[:-1], starts[1:]):
            index = order[start:stop]
            yield X[index], index


def _batch_starts(n_samples, batch_size):
    """First row of each batch, then ``n_samples``; a last lone row joins the batch before."""
    starts = list(range(0, n_samples, batch_size))
    if len(starts) > 1 and n_samples - starts[-1] == 1:
        starts.pop()
    return starts + [n_samples]


def n_batches(n_samples, batch_size):
    """Training steps in one pass of :class:`DeviceBatchIterator` over ``n_samples`` rows."""
    return len(_batch_starts(n_samples, batch_size)) - 1


class StepBudget:
    """The ``"auto"`` length of a training phase, counted in optimisation steps.

    ``epochs`` passes over the data, but never fewer than ``min_steps`` nor
    more than ``max_steps`` steps: a fixed number of epochs is a few hundred
    steps on a small table and tens of thousands on a large one, where the
    same network has converged long before.

    Parameters
    ----------
    epochs : int
        Passes over the data when that is within the step bounds.
    min_steps, max_steps : int
        Bounds on the steps of the phase.
    """

    def __init__(self, epochs, min_steps, max_steps):
        self.epochs = epochs
        self.min_steps = min_steps
        self.max_steps = max_steps

    def __repr__(self):
        return f"StepBudget({self.epochs}, {self.min_steps}, {self.max_steps})"

    def n_epochs(self, n_samples, batch_size):
        """Epochs of the phase on ``n_samples`` rows in batches of ``batch_size``."""
        batches = n_batches(n_samples, batch_size)
        steps = min(max(self.epochs * batches, self.min_steps), self.max_steps)
        return max(1, math.ceil(steps / batches))


class RefreshEveryNBatches(Callback):
    """Call ``refresh(net)`` before training starts and every ``n_batches`` batches.

    This is how per-sample state is kept current: the method passes a function
    that recomputes its state over the whole data set (for DEC, the target
    distribution) and may raise :class:`ConvergenceReached` to stop the phase.

    Parameters
    ----------
    refresh : callable
        Called as ``refresh(net)``.
    n_batches : int
        Refresh period in training batches.
    """

    def __init__(self, refresh, n_batches):
        self.refresh = refresh
        self.n_batches = n_batches

    def on_train_begin(self, net, **kwargs):
        self.batches_seen_ = 0
        self.refresh(net)

    def on_batch_begin(self, net, training=True, **kwargs):
        if not training:
            return
        if self.batches_seen_ > 0 and self.batches_seen_ % self.n_batches == 0:
            self.refresh(net)
        self.batches_seen_ += 1


class PhaseNet(NeuralNet):
    """skorch ``NeuralNet`` for one training phase of a deep clusterer.

    Differences with the plain ``NeuralNet``:

    - the criterion is the phase loss, called as ``criterion(output, index, x)``;
    - batches come from :class:`DeviceBatchIterator` and no validation split
      is made (clustering has no held-out labels);
    - the loss is summed on the device during an epoch and recorded once per
      epoch as ``train_loss`` (no per-batch host synchronisation); a loss that
      is not finite stops training with a ``ValueError`` that says what to try;
    - a callback raising :class:`ConvergenceReached` ends the phase cleanly;
    - ``batch_inputs(x, index)``, when given, makes the module's training
      input from the batch (random views, neighbours looked up by index).
    """

    def __init__(self, module, criterion, *args, phase="training", batch_inputs=None, **kwargs):
        self.phase = phase
        self.batch_inputs = batch_inputs
        kwargs.setdefault("train_split", None)
        kwargs.setdefault("iterator_train", DeviceBatchIterator)
        kwargs.setdefault("iterator_valid", DeviceBatchIterator)
        kwargs.setdefault("iterator_train__shuffle", True)
        super().__init__(module, criterion, *args, **kwargs)

    def get_default_callbacks(self):
        callbacks = [("epoch_timer", EpochTimer())]
        if self.verbose:  # PrintLog formats a table every epoch, even when silent
            callbacks.append(("print_log", PrintLog()))
        if self.verbose >= 2:
            callbacks.append(("progress_bar", ProgressBar()))
        return callbacks

    def get_loss(self, y_pred, y_true, X=None, training=False):
        # ``y_true`` is the batch's sample indices (see IndexedTensorDataset).
        return self.criterion_(y_pred, y_true, X)

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        x, index = batch
        inputs = x if self.batch_inputs is None else self.batch_inputs(x, index)
        y_pred = self.infer(inputs, **fit_params)
        loss = self.get_loss(y_pred, index, X=x, training=True)
        loss.backward()
        average_gradients(self.module_)
        return {"loss": loss, "y_pred": y_pred}

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except ConvergenceReached:
            self._close_interrupted_epoch()
            return self

    def _close_interrupted_epoch(self):
        """Make the history's last row a whole epoch after an early stop.

        A stop raised before the epoch's first batch leaves a row with no
        training in it: its records (e.g. the refresh's ``label_change``) move
        to the previous epoch, at whose end they were computed. A stop raised
        mid-epoch keeps the row, now with its loss and duration.
        """
        row = self.history[-1]
        if "train_loss" in row:
            self.notify("on_epoch_end", dataset_train=None, dataset_valid=None)
            return
        extra = {k: v for k, v in row.items() if k not in ("epoch", "batches")}
        del self.history[-1]
        if len(self.history):
            for key, value in extra.items():
                self.history.record(key, value)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        loss_sum = None
        n_seen = 0
        try:
            for batch in iterator:
                self.notify("on_batch_begin", batch=batch, training=training)
                step = step_fn(batch, **fit_params)
                batch_loss = step["loss"].detach() * len(batch[1])
                loss_sum = batch_loss if loss_sum is None else loss_sum + batch_loss
                n_seen += len(batch[1])
                self.notify("on_batch_end", batch=batch, training=training, **step)
        finally:
            if loss_sum is not None:
                self._record_epoch_loss(prefix, loss_sum, n_seen)

    def _record_epoch_loss(self, prefix, loss_sum, n_seen):
        if world_size() > 1:  # the mean over every process's rows
            totals = sum_over_processes(torch.stack([loss_sum, loss_sum.new_tensor(float(n_seen))]))
            loss_sum, n_seen = totals[0], totals[1].item()
        epoch_loss = loss_sum.item() / n_seen  # one synchronisation per epoch
        self.history.record(prefix + "_loss", epoch_loss)
        if not math.isfinite(epoch_loss):
            raise ValueError(
                f"The training loss became {epoch_loss} at epoch "
                f"{len(self.history)} of the {self.phase!r} phase. Scale the "
                "input with StandardScaler or MinMaxScaler, lower `lr`, or check "
                "a custom `module` for operations that overflow."
            )


def train_phase(
    module,
    loss,
    X,
    *,
    max_epochs,
    batch_size,
    optimizer,
    lr,
    device,
    seed,
    verbose=0,
    callbacks=(),
    phase="training",
    batch_inputs=None,
):
    """Train ``module`` on ``X`` with ``loss`` for at most ``max_epochs``.

    Parameters
    ----------
    module : torch.nn.Module
        The network of this phase; trained in place.
    loss : torch.nn.Module
        Called as ``loss(output, index, x)``; holds the phase's per-sample state.
    X : torch.Tensor of shape (n_samples, n_features)
        Training data, already on ``device``.
    max_epochs : int
        Upper bound on the number of passes over the data.
    batch_size : int
        Mini-batch size.
    optimizer : type
        A ``torch.optim.Optimizer`` class.
    lr : float
        Learning rate.
    device : torch.device
        Where training happens.
    seed : int
        Seeds the shuffling of the batches.
    verbose : int, default=0
        0 silent, 1 one line per epoch, 2 also a progress bar.
    callbacks : sequence of skorch callbacks, default=()
        Extra callbacks, e.g. :class:`RefreshEveryNBatches`.
    phase : str, default="training"
        Name of the phase, shown in progress output and error messages.
    batch_inputs : callable or None, default=None
        Called as ``batch_inputs(x, index)`` on each training batch; its result
        is what ``module`` receives (``x`` itself when None). The loss still
        gets the plain batch ``x`` and its indices.

    Returns
    -------
    history : skorch.History
        One row per epoch with ``train_loss``, ``dur`` and whatever the
        callbacks recorded.
    """
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    net = PhaseNet(
        module,
        loss,
        optimizer=optimizer,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        device=device,
        iterator_train__generator=generator,
        callbacks=list(callbacks),
        verbose=verbose,
        phase=phase,
        batch_inputs=batch_inputs,
    )
    if verbose:
        print(f"[{phase}]")
    broadcast_from_first_process(module)
    net.fit(IndexedTensorDataset(X), y=None)
    return net.history


@torch.no_grad()
def batched_forward(function, X, batch_size):
    """Apply ``function`` to ``X`` in batches and concatenate on the device.

    Parameters
    ----------
    function : callable
        Maps a batch tensor to a tensor (or a tuple of tensors, whose first
        element is kept).
    X : torch.Tensor of shape (n_samples, n_features)
    batch_size : int

    Returns
    -------
    torch.Tensor
        The outputs for all samples, on the device of ``X``.
    """
    outputs = []
    for start in range(0, X.shape[0], batch_size):
        out = function(X[start : start + batch_size])
        outputs.append(out[0] if isinstance(out, tuple) else out)
    return torch.cat(outputs)
