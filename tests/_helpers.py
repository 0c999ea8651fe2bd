"""Shared test helpers (importable because pytest puts tests/ on sys.path)."""

from sklearn_deepclust import DEC


def small_dec(**params):
    """A DEC small and short enough for tests, overridable parameter by parameter."""
    defaults = dict(
        n_clusters=4,
        hidden_dims=(32,),
        embedding_dim=4,
        batch_size=64,
        pretrain_epochs=40,
        max_epochs=10,
        update_interval=20,
        random_state=0,
    )
    return DEC(**{**defaults, **params})
