"""The scikit-learn face shared by every deep clusterer of the package.

Its conventions follow scikit-learn's API design [1]_; training runs through
skorch's ``NeuralNet`` machinery (callbacks, history, devices).

References
----------
.. [1] L. Buitinck et al., "API design for machine learning software:
   experiences from the scikit-learn project", ECML PKDD Workshop on
   Languages for Data Mining and Machine Learning, 2013."""

import io
import warnings
from abc import ABCMeta, abstractmethod
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._engine import batched_forward, train_phase
from .nn import check_encoder, make_decoder, make_encoder
from .pretext import train_pretext

__all__ = ["DeepClusterer"]

# Constraint of an epoch parameter whose "auto" a subclass's ``_auto_budgets`` resolves.
EPOCHS_OR_AUTO = [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})]


@contextmanager
def seeded_torch(seed, device):
    """Seed torch for the duration of a fit without touching the caller's RNG.

    Only the generators of the CPU and of the fit's own device are seeded, and
    both are restored afterwards.
    """
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        if device.type == "cuda":
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield


def _cuda_device_exists(device):
    if not torch.cuda.is_available():
        return False
    return device.index is None or device.index < torch.cuda.device_count()


def _device_exists(device):
    """Whether tensors can be put on ``device`` (a ``torch.device``) here."""
    if device.type == "cuda":
        return _cuda_device_exists(device)
    if device.type == "mps":
        return torch.backends.mps.is_available()
    return True


def repeatable_on(device):
    """Whether fits on the ``device`` parameter repeat bit for bit: on the CPU.

    Reductions on accelerators (atomic adds) are not bit-reproducible. A
    value that is not a device counts as the CPU here; ``fit`` rejects it.
    """
    try:
        return torch.device(device).type == "cpu"
    except (RuntimeError, TypeError):
        return True


def resolve_device(device):
    """Turn the ``device`` parameter into a ``torch.device`` that exists here."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'cpu', 'cuda' or 'cuda:0'."
        ) from exc
    if resolved.type == "cuda" and not _cuda_device_exists(resolved):
        raise ValueError(
            f"device={device!r} was requested but this machine has "
            f"{torch.cuda.device_count()} CUDA device(s) "
            f"(torch.cuda.is_available() is {torch.cuda.is_available()}); use "
            "device='cpu' or an existing 'cuda:<index>'."
        )
    return resolved


def to_tensor(X, device, offset=None):
    """A float32 tensor on ``device`` from a validated array, less ``offset``.

    Read-only input is copied, and the caller's array is never modified: the
    ``offset`` (a float32 tensor on ``device``, subtracted from every row)
    goes into a copy when the tensor would share the caller's memory. Values
    that validate as finite float64 but overflow float32 raise a ValueError.
    """
    with np.errstate(over="ignore"):  # an overflow is reported below, in words
        array = np.asarray(X, dtype=np.float32)
    if array.dtype != getattr(X, "dtype", None) and not np.isfinite(array).all():
        raise ValueError(
            "Input X holds values too large for float32 (|x| > 3.4e38), in which the "
            "estimators compute; scale the features first (e.g. StandardScaler)."
        )
    if not array.flags.writeable:
        array = array.copy()
    tensor = torch.from_numpy(array).to(device)
    if offset is None:
        return tensor
    if tensor.device.type == "cpu" and np.may_share_memory(array, X):
        return tensor - offset
    return tensor.sub_(offset)


def validated_tensor(estimator, X, offset=None):
    """``X`` checked against a fitted estimator, as float32 on its ``device_``, less ``offset``."""
    check_is_fitted(estimator)
    X = validate_data(estimator, X, dtype=[np.float32, np.float64], reset=False)
    return to_tensor(X, estimator.device_, offset)


def loadable_device(state):
    """The pickled ``device_`` of ``state``, or the CPU (with a warning) if it is absent here.

    Updates ``state["device_"]`` in place; returns None for an unfitted state.
    """
    device = state.get("device_")
    if device is not None and not _device_exists(device):
        warnings.warn(
            f"This model was fitted on {device}, which is not available here; "
            "it is loaded on the CPU.",
            UserWarning,
            stacklevel=3,
        )
        device = torch.device("cpu")
        state["device_"] = device
    return device


def storage_here(storage, location):
    """``map_location`` of ``torch.load``: each storage back on its own device,
    or on the CPU where that device is absent."""
    if _device_exists(torch.device(location)):
        return None  # torch's default: the device it was saved from
    return storage  # deserialised on the CPU


class _SerializedModule:
    """A torch module stored as bytes, so that pickles load on any device.

    Plain pickling of a module on a GPU stores its tensors with their device
    and cannot be loaded where that device is absent.
    """

    def __init__(self, module):
        buffer = io.BytesIO()
        torch.save(module, buffer)
        self.payload = buffer.getvalue()

    def load(self, map_location=storage_here):
        return torch.load(io.BytesIO(self.payload), map_location=map_location, weights_only=False)


class DeepClusterer(
    ClusterMixin,
    TransformerMixin,
    ClassNamePrefixFeaturesOutMixin,
    BaseEstimator,
    metaclass=ABCMeta,
):
    """Base class for the deep clustering estimators of sklearn_deepclust.

    Subclasses implement :meth:`_fit` (train the networks on a float32 tensor
    on the device) and, for inference on one batch, :meth:`_embed` and
    :meth:`_cluster_log_proba`. This base class supplies everything a
    scikit-learn user expects around them: parameter validation, input
    validation, seeding, device handling, batched inference, ``labels_``,
    ``transform`` with feature names and ``set_output``, ``score``, tags and
    pickling across devices.

    Fitted torch modules are stored in attributes ending in ``module_``.
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "hidden_dims": ["array-like"],
        "embedding_dim": [Interval(Integral, 1, None, closed="left")],
        "module": [None, torch.nn.Module],
        # Batch normalisation and in-batch contrasts need two rows per step.
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [type],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # Parameter name -> StepBudget: what each ``"auto"`` epoch count means.
    _auto_budgets: dict = {}

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the networks and cluster ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (numeric; converted to float32).
        y : Ignored
            Not used by unsupervised estimators; present for API consistency
            (e.g. so that ``GridSearchCV`` can pass labels to a scorer).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X = validate_data(self, X, dtype=[np.float32, np.float64], ensure_min_samples=2)
        y = self._check_fit_targets(X, y)
        self._check_n_clusters(X.shape[0])
        self._check_hidden_dims()
        self._check_optimizer()
        device = resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        with seeded_torch(seed, device):
            X_tensor = to_tensor(X, device)
            self._fit(X_tensor, y, seed=seed, device=device)
        self.device_ = device
        self._set_eval_mode()
        self.labels_ = self._predict_tensor(X_tensor)
        return self

    @abstractmethod
    def _fit(self, X, y, *, seed, device):
        """Train on ``X`` (float32 tensor on ``device``); set fitted attributes."""

    @abstractmethod
    def _embed(self, X):
        """Embedding of a batch tensor (inference mode)."""

    @abstractmethod
    def _cluster_log_proba(self, X):
        """Log cluster probabilities of a batch tensor (inference mode)."""

    @abstractmethod
    def _objective(self, X):
        """Training objective on ``X`` (lower is better), used by :meth:`score`."""

    def _epochs(self, name, n_samples):
        """The epoch count of parameter ``name``, ``"auto"`` resolved for ``n_samples`` rows."""
        value = getattr(self, name)
        if isinstance(value, str):  # "auto", the only string the constraints allow
            return self._auto_budgets[name].n_epochs(n_samples, self.batch_size)
        return value

    def _check_fit_targets(self, X, y):
        """Validate ``y`` for fit; unsupervised estimators ignore it."""
        return y

    def _check_n_clusters(self, n_samples):
        if self.n_clusters > n_samples:
            raise ValueError(
                f"n_clusters={self.n_clusters} is larger than the {n_samples} "
                f"samples given; use n_clusters <= {n_samples}."
            )

    def _check_hidden_dims(self):
        if not all(isinstance(d, Integral) and d > 0 for d in self.hidden_dims):
            raise ValueError(
                "hidden_dims must be a sequence of positive integers such as "
                f"(500, 500, 2000); got {self.hidden_dims!r}."
            )

    def _hidden_dims(self, n_features):
        """Widths of the default encoder's hidden layers for ``n_features`` inputs."""
        return tuple(self.hidden_dims)

    def _check_optimizer(self):
        if not issubclass(self.optimizer, torch.optim.Optimizer):
            raise ValueError(
                "optimizer must be a torch.optim.Optimizer subclass such as "
                f"torch.optim.Adam; got {self.optimizer!r}."
            )

    def _build_encoder(self, n_features, device):
        """The user's ``module`` (copied) or the default MLP, and its output width."""
        if self.module is not None:
            encoder, embedding_dim = check_encoder(self.module, n_features, device)
        else:
            encoder = make_encoder(
                n_features,
                self._hidden_dims(n_features),
                self.embedding_dim,
                batch_norm=self._encoder_batch_norm(),
            )
            encoder, embedding_dim = encoder.to(device), self.embedding_dim
        self._n_features_out = embedding_dim
        return encoder

    def _encoder_batch_norm(self):
        """Whether the default MLP encoder normalises its hidden layers."""
        return False

    def _pretrained_encoder(self, X, seed, temperature=0.5):
        """Build the encoder and train it on the estimator's pretext task.

        For the estimators with ``pretext``, ``pretext_epochs`` and
        ``corruption_rate`` parameters (see
        :func:`~sklearn_deepclust.pretext.train_pretext`); starts
        ``history_`` with the ``"pretext"`` phase when one ran.

        Returns
        -------
        encoder : torch.nn.Module
        features : torch.Tensor
            The pretext features of ``X`` (what SCAN mines neighbours in).
        """
        n_features = X.shape[1]
        encoder = self._build_encoder(n_features, X.device)
        decoder = None
        if self.pretext == "autoencoder":
            hidden_dims = self._hidden_dims(n_features)
            decoder = make_decoder(n_features, hidden_dims, self._n_features_out)
            decoder = decoder.to(X.device)
        self.history_ = {}
        history, features = train_pretext(
            self.pretext,
            encoder,
            X,
            train_phase=self._train_phase,
            max_epochs=self._epochs("pretext_epochs", X.shape[0]),
            seed=seed,
            embedding_dim=self._n_features_out,
            decoder=decoder,
            corruption_rate=self.corruption_rate,
            temperature=temperature,
            batch_size=self.batch_size,
        )
        if history is not None:
            self.history_["pretext"] = history
        return encoder, features

    def _train_phase(
        self, phase, module, loss, X, *, max_epochs, seed, callbacks=(), batch_inputs=None, lr=None
    ):
        """Run one training phase with this estimator's optimiser settings.

        ``lr`` overrides the estimator's learning rate for this phase.
        """
        return train_phase(
            module,
            loss,
            X,
            max_epochs=max_epochs,
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            lr=self.lr if lr is None else lr,
            device=X.device,
            seed=seed,
            verbose=self.verbose,
            callbacks=callbacks,
            phase=phase,
            batch_inputs=batch_inputs,
        )

    # ------------------------------------------------------------ inference
    @staticmethod
    def _is_fitted_module(name, value):
        # Fitted networks end in "_"; `module` and `decoder` are the user's
        # parameters and are never touched.
        return name.endswith("_") and isinstance(value, torch.nn.Module)

    def _set_eval_mode(self):
        for name, value in vars(self).items():
            if self._is_fitted_module(name, value):
                value.eval()

    def _validated_tensor(self, X):
        return validated_tensor(self, X)

    def _predict_tensor(self, X_tensor):
        log_proba = batched_forward(self._cluster_log_proba, X_tensor, self.batch_size)
        return log_proba.argmax(dim=1).cpu().numpy().astype(np.int64)

    def predict(self, X):
        """Assign each sample of ``X`` to its most probable cluster.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster index of each sample.
        """
        return self._predict_tensor(self._validated_tensor(X))

    def predict_proba(self, X):
        """Soft cluster assignments of ``X``; rows sum to one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_clusters)
            Probability of each cluster for each sample.
        """
        X_tensor = self._validated_tensor(X)
        log_proba = batched_forward(self._cluster_log_proba, X_tensor, self.batch_size)
        return log_proba.exp().cpu().numpy()

    def transform(self, X):
        """Embed ``X`` with the trained encoder.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data.

        Returns
        -------
        embedding : ndarray of shape (n_samples, embedding_dim)
            The encoder's output (float32).
        """
        X_tensor = self._validated_tensor(X)
        return batched_forward(self._embed, X_tensor, self.batch_size).cpu().numpy()

    def score(self, X, y=None):
        """Negative training objective of the fitted model on ``X``.

        Higher is better, like :meth:`sklearn.cluster.KMeans.score`. To score
        against known labels use a scorer from :mod:`sklearn_deepclust.metrics`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        score : float
            Minus the per-sample objective (see the estimator's docstring).
        """
        X_tensor = self._validated_tensor(X)
        with torch.no_grad():
            return -float(self._objective(X_tensor))

    # ----------------------------------------------------------- plumbing
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = not repeatable_on(self.device)
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def __getstate__(self):
        # Every module, the user's ``module`` and ``decoder`` parameters too,
        # is stored as bytes that load where its device is absent.
        state = super().__getstate__()
        return {
            key: _SerializedModule(value) if isinstance(value, torch.nn.Module) else value
            for key, value in state.items()
        }

    def __setstate__(self, state):
        device = loadable_device(state)
        for key, value in state.items():
            if isinstance(value, _SerializedModule):
                # Fitted modules go to ``device_``; parameters stay where the
                # user put them, or on the CPU where that device is absent.
                state[key] = value.load(device or "cpu") if key.endswith("_") else value.load()
        super().__setstate__(state)
