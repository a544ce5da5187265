"""One local Ray for the whole test session (starting it costs seconds), two CPUs."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_local():
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        # a Ray of its own, even where another runs on the machine
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    yield ray
    ray.shutdown()
