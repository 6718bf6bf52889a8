"""Where and in which precision the network runs.

On CPUs with native bf16, VGG16's frozen part runs faster in bf16 with channels_last than in
float32 NCHW: about 5x with AMX (Intel Xeon, Sapphire Rapids and later), 2.6x with AVX512-BF16
alone (docs/benchmarks.md); on older CPUs bf16 is emulated and slower, so support is checked
(oneDNN's own check, the CPU flags, and a tiny trial), never assumed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

DEVICES_HELP = "auto, cpu, cuda or cuda:N"


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    dtype: torch.dtype
    channels_last: bool
    # "" for torch's own float32/bf16 kernels; "int8-onnxruntime" (see feature_paths.py).
    feature_path: str = ""
    # What else decides that path's features (the int8 calibration set's version), for the cache key.
    feature_path_version: str = ""

    @property
    def uses_bf16(self) -> bool:
        return self.dtype == torch.bfloat16

    @property
    def precision(self) -> str:
        return "bfloat16" if self.uses_bf16 else "float32"

    @property
    def path(self) -> str:
        """The feature path: float32, bf16 or int8-onnxruntime."""
        return self.feature_path or ("bf16" if self.uses_bf16 else "float32")

    @property
    def cache_tag(self) -> str:
        """The feature-cache folder suffix: the float paths keep their precision names, so
        caches written before int8 existed stay valid."""
        if self.feature_path:
            return f"{self.feature_path}-{self.feature_path_version}"
        return self.precision

    def describe(self) -> str:
        """What the model version records as its device, e.g. "cpu (bfloat16, channels_last)",
        "cpu (int8-onnxruntime)"."""
        name = str(self.device)
        if self.device.type == "cuda":
            name += f" {torch.cuda.get_device_name(self.device)}"
        if self.feature_path:
            return f"{name} ({self.feature_path})"
        layout = ", channels_last" if self.channels_last else ""
        return f"{name} ({self.precision}{layout})"

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.uses_bf16)


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@functools.cache
def cpu_supports_bf16() -> bool:
    """True when this CPU computes bf16 natively (not emulated) and a bf16 convolution works."""
    mkldnn_check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    native = bool(mkldnn_check()) if mkldnn_check is not None else False
    flags = _cpu_flags()
    if flags:
        native = native and bool(flags & {"avx512_bf16", "amx_bf16"})
    if not native:
        return False
    # The trial catches builds whose oneDNN lacks the bf16 kernels despite the flags.
    try:
        generator = torch.Generator().manual_seed(0)
        image = torch.randn(1, 3, 16, 16, generator=generator)
        weight = torch.randn(4, 3, 3, 3, generator=generator)
        expected = torch.nn.functional.conv2d(image, weight)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            trial = torch.nn.functional.conv2d(image, weight)
        return trial.dtype == torch.bfloat16 and torch.allclose(trial.float(), expected, atol=0.1, rtol=0.05)
    except RuntimeError:
        return False


def choose_device(device: str = "auto", precision: str = "auto") -> DeviceChoice:
    """`device`: auto (CUDA when present), cpu, cuda or cuda:N. `precision`: auto (bf16 where the
    hardware has it natively), float32 or bfloat16."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        target = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; valid options: {DEVICES_HELP}") from None
    if target.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; valid options: {DEVICES_HELP}")
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA GPU")
    bf16_native = torch.cuda.is_bf16_supported() if target.type == "cuda" else cpu_supports_bf16()
    if precision == "auto":
        use_bf16 = bf16_native
    elif precision == "bfloat16":
        if not bf16_native:
            logger.warning("bfloat16 asked for on %s, which lacks native bf16: it will be slow", target)
        use_bf16 = True
    elif precision == "float32":
        use_bf16 = False
    else:
        raise ValueError(f"unknown precision {precision!r}; valid options: auto, float32, bfloat16")
    return DeviceChoice(
        device=target,
        dtype=torch.bfloat16 if use_bf16 else torch.float32,
        channels_last=use_bf16 or target.type == "cuda",
    )


def configure_threads() -> int:
    """One intra-op thread per CPU this process may use, unless OMP_NUM_THREADS or
    PAINSITE_TORCH_THREADS says otherwise. Returns the thread count in use."""
    wanted = os.getenv("PAINSITE_TORCH_THREADS") or os.getenv("OMP_NUM_THREADS")
    if wanted:
        threads = max(1, int(wanted))
    else:
        try:
            threads = len(os.sched_getaffinity(0))
        except AttributeError:
            threads = os.cpu_count() or 1
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


@contextlib.contextmanager
def intra_op_threads(threads: int) -> Iterator[None]:
    """Run a block with `threads` intra-op threads, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
