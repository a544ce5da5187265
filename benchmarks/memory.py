"""Peak memory of a process, as the scale benchmarks report it."""

from __future__ import annotations


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
