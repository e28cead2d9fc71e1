"""Shared fixtures: real photographs from scikit-image, downscaled for speed."""

import functools

import pytest

from unmix.image import example_image

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the property-based tests skip themselves
    pass
else:
    # "ci" (the default): 100 examples per 100 asked for, derandomised so that CI is
    # reproducible; "slow" (--hypothesis-profile=slow): 50 times as many, random.
    _relaxed = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                          HealthCheck.function_scoped_fixture])
    settings.register_profile("ci", max_examples=100, derandomize=True, database=None,
                              **_relaxed)
    settings.register_profile("slow", max_examples=5000, **_relaxed)
    settings.load_profile("ci")


@functools.lru_cache(maxsize=None)
def _photo(name, height, width):
    image = example_image(name, (height, width))
    image.setflags(write=False)  # shared between tests: nobody may modify it
    return image


@pytest.fixture
def photo():
    """``photo(name, (H, W))``: a read-only downscaled scikit-image photograph."""

    def load(name="coffee", shape=(48, 64)):
        return _photo(name, *shape)

    return load


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``gpu`` when CuPy or a CUDA device is missing."""
    from unmix._backend import gpu_available

    if not gpu_available():
        skip = pytest.mark.skip(reason="needs CuPy and a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)

