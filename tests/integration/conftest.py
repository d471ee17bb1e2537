"""One local Ray per test module, declaring fake GPUs."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray with 4 CPUs and 8 fake GPUs, shut down after the module."""
    import ray

    ray.init(address="local", num_cpus=4, num_gpus=8, include_dashboard=False,
             logging_level=logging.WARNING, log_to_driver=False)
    yield ray
    ray.shutdown()
