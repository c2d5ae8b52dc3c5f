"""The Examples sections of the public docstrings run and print what they say."""

import doctest
import importlib

import pytest

MODULES = ["tvnumba.tv", "tvnumba.compat", "tvnumba.distance", "tvnumba.restoration.denoise",
           "tvnumba._threads", "tvnumba.restoration.inverse", "tvnumba.operators.radon",
           "tvnumba.restoration.tomography"]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
