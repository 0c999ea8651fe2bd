"""The API reference lists every public name, and each cites its source."""

import importlib
import inspect
import re
from pathlib import Path

import pytest

import sklearn_deepclust

API = (Path(__file__).parents[1] / "doc" / "api.rst").read_text()
PUBLIC_MODULES = [
    "augment",
    "cli",
    "cluster",
    "datasets",
    "discovery",
    "metrics",
    "model_selection",
    "neighbors",
    "nn",
    "ot",
    "pretext",
]


def _documented():
    return re.findall(r"^   ([A-Za-z_][\w.]*)$", API, flags=re.MULTILINE)


def _resolve(dotted):
    obj = sklearn_deepclust
    for part in dotted.split("."):
        obj = getattr(obj, part, None) or importlib.import_module(f"{obj.__name__}.{part}")
    return obj


def _public_names():
    names = {name for name in sklearn_deepclust.__all__ if name != "__version__"}
    for module in PUBLIC_MODULES:
        for name in importlib.import_module(f"sklearn_deepclust.{module}").__all__:
            obj = getattr(importlib.import_module(f"sklearn_deepclust.{module}"), name)
            if name in sklearn_deepclust.__all__ and getattr(sklearn_deepclust, name) is obj:
                continue  # listed under its top-level name
            if inspect.isclass(obj) or inspect.isfunction(obj):
                names.add(f"{module}.{name}")
    return names


def test_every_public_name_is_in_the_api_reference():
    documented = set(_documented())
    missing = sorted(_public_names() - documented)
    assert not missing, f"add to doc/api.rst: {missing}"


# The command line implements no method of its own.
NO_SOURCE = {"cli.main", "cli.make_estimator", "cli.read_table", "cli.encode_partial_labels"}


@pytest.mark.parametrize("dotted", sorted(set(_documented()) - NO_SOURCE))
def test_each_documented_object_cites_its_source(dotted):
    obj = _resolve(dotted)
    # A References section in the object's docstring, in the module that
    # defines it, or in the public module it is documented under.
    modules = [inspect.getmodule(obj), _resolve(dotted.rpartition(".")[0] or "DeepClusterer")]
    texts = [inspect.getdoc(obj) or ""] + [inspect.getdoc(m) or "" for m in modules]
    assert any(re.search(r"^References\n-{10}", text, re.MULTILINE) for text in texts), dotted
