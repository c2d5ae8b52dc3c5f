"""Shared pytest configuration for the tvnumba tests.

Hypothesis profiles
-------------------
* ``default``: 60 examples per property, no deadline (the first call of a Numba kernel
  compiles it, which would trip any deadline), derandomized so that every run explores
  the same examples (reproducible failures, no flaky CI).
* ``ci``: the same with 30 examples; chosen automatically when the environment has
  ``CI=true`` (GitHub Actions sets it).  ``--hypothesis-profile=NAME`` overrides.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Make ``import reference`` work whatever pytest's import mode is.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

_common = dict(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("default", max_examples=60, **_common)
settings.register_profile("ci", max_examples=30, **_common)
settings.load_profile(
    "ci" if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes") else "default"
)


@pytest.fixture
def rng():
    """A freshly seeded generator: each test sees the same numbers on every run."""
    return np.random.default_rng(20240531)
