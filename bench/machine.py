"""What a figure was measured on: CPU model and flags from /proc/cpuinfo, cores, load.

Every benchmark writes `machine()` into its JSON, and bench/report.py prints the CPU next to each
figure: a figure without its CPU cannot be compared with anything.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# The flags that decide how fast the numeric code here runs (vector width, bf16/int8 matrix units).
FLAGS_OF_INTEREST = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")


def cpuinfo() -> dict[str, object]:
    model, flags = "unknown", []
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown":
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = value.split()
    present = [flag for flag in FLAGS_OF_INTEREST if flag in flags]
    return {
        "cpu_model": model,
        "cpu_flags": present,
        "bf16_native": "avx512_bf16" in flags or "amx_bf16" in flags,
    }


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def machine(**extra: object) -> dict[str, object]:
    """CPU model and flags, cores, Python, and the load average now (the machine is shared)."""
    return {
        **cpuinfo(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_start": load_average(),
        **extra,
    }
