"""Peak memory of a process, and time spent in a method, as the scale benchmarks report them."""

from __future__ import annotations

import time


def peak_mb(pid="self", key: str = "VmHWM") -> float:
    """``key`` of ``/proc/<pid>/status`` in MB (VmHWM: peak resident memory; unlike
    ru_maxrss, not inherited from the parent across exec); nan where it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def timed(method, spent: dict, key: str):
    """``method``, adding its wall time to ``spent[key]``."""

    def run(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - t0

    return run
