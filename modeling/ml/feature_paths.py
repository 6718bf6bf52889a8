"""Feature paths: which kernels compute the frozen VGG16 part (conv layers, fc6, fc7).

- `bf16`: torch, a bf16 copy in channels_last under autocast, where the CPU computes bf16
  natively (AMX, AVX512-BF16) or on a GPU that has it.
- `float32`: torch in float32 (NCHW on the CPU, channels_last on CUDA).
- `int8-onnxruntime`: the frozen part exported to ONNX and statically quantized by ONNX
  Runtime (QDQ, int8 weights per output channel, uint8 activations, MinMax calibration on the
  32 faces in `calibration/`), run by ONNX Runtime's CPU kernels. For CPUs without native bf16:
  on a 2-core AVX2 AMD EPYC it computed about 3x the images per second of torch float32 NCHW
  (bench/ml_cpu_paths.py, docs/ml.md).

`auto` picks CUDA's path on a GPU, bf16 where the CPU has it natively, else int8 when ONNX
Runtime is installed and a short trial on this machine (cached on disk) finds it faster than
float32, else float32. Features of different paths never mix: each has its own feature-cache
folder (`cache_tag`), and a model records the path its head was trained on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from modeling.ml.backbone import BackboneIdentity
from modeling.ml.device import DeviceChoice, _cpu_flags, choose_device
from modeling.ml.features import inference_extractor
from modeling.ml.network import FrozenFeatures
from modeling.ml.transforms import EvalPreset

logger = logging.getLogger(__name__)

AUTO = "auto"
FLOAT32 = "float32"
BF16 = "bf16"
INT8_ONNXRUNTIME = "int8-onnxruntime"
FEATURE_PATHS = (FLOAT32, BF16, INT8_ONNXRUNTIME)
FEATURE_PATH_CHOICES = (AUTO, *FEATURE_PATHS)
# Raised whenever the calibration set or the quantization recipe changes: it is part of the
# feature-cache folder and of the stored int8 model's name.
CALIBRATION_VERSION = "faces32-v1"
CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration"
INT8_MODELS_FOLDER = "int8-onnxruntime"
CHECKS_FOLDER = "feature-path-checks"
# int8 is chosen automatically only when the trial finds it at least this much faster.
MIN_INT8_GAIN = 1.5


class FeaturePathError(ValueError):
    """A feature path that does not exist or cannot run here. Says which and why."""


def check_feature_path(value: str) -> str:
    if value not in FEATURE_PATH_CHOICES:
        raise FeaturePathError(f"unknown feature path {value!r}; valid options: {', '.join(FEATURE_PATH_CHOICES)}")
    return value


def onnxruntime_version() -> str | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    return str(onnxruntime.__version__)


# ---------------------------------------------------------------------------------------------
# The int8 model: export, calibrate, quantize, once per (backbone, image size, recipe)


class _Exportable(nn.Module):
    """The frozen part with VGG16's adaptive average pooling folded into fc6, which the ONNX
    exporter handles at every image size. Pooling and fc6 are both linear, so fc6's weights
    times the fixed pooling matrix give the same map (up to float rounding), and below 224 px
    a smaller fc6 (at 64 px 2,048 inputs instead of 25,088). At 224 px the pooling is the
    identity and nothing changes."""

    def __init__(self, frozen: FrozenFeatures, image_size: int) -> None:
        super().__init__()
        self.features = frozen.features
        side = image_size // 32  # five 2x2 max-pools, each rounding down
        layers = list(frozen.fully_connected.children())
        if side != 7:
            fc6 = layers[0]
            basis = torch.eye(side * side).reshape(side * side, 1, side, side)
            pool = nn.functional.adaptive_avg_pool2d(basis, (7, 7)).reshape(side * side, 49)
            channels = fc6.in_features // 49
            with torch.no_grad():
                weight = fc6.weight.reshape(fc6.out_features, channels, 49) @ pool.T
                folded = nn.Linear(channels * side * side, fc6.out_features)
                folded.weight.copy_(weight.reshape(fc6.out_features, -1))
                folded.bias.copy_(fc6.bias)
            layers[0] = folded
        self.fully_connected = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fully_connected(self.features(images).flatten(1))


def calibration_batch(image_size: int) -> torch.Tensor:
    """The fixed calibration faces, preprocessed exactly as training images are."""
    paths = sorted(CALIBRATION_DIR.glob("*.png"))
    if not paths:
        raise FeaturePathError(f"the int8 calibration faces are missing from {CALIBRATION_DIR}")
    preset = EvalPreset(image_size)
    return torch.stack([preset(Image.open(path).convert("RGB"), None) for path in paths])


def _export_onnx(module: nn.Module, image_size: int, path: Path) -> None:
    example = torch.zeros(1, 3, image_size, image_size)
    # Without gradients: the backbone a process keeps may hold tensors made in inference mode
    # (built during an earlier prediction), which a trace with gradients on refuses.
    with warnings_quiet(), torch.no_grad():
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=False,
            input_names=["images"],
            output_names=["features"],
            dynamic_axes={"images": {0: "batch"}},
            opset_version=17,
        )


@contextlib.contextmanager
def warnings_quiet() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        # The TorchScript exporter announces its own deprecation; the exported graph is checked
        # against torch by the parity tests.
        warnings.simplefilter("ignore")
        yield


def quantize_int8(module: nn.Module, image_size: int, calibration: torch.Tensor, out: Path) -> None:
    """Export `module` (image -> features) to ONNX and write ONNX Runtime's static int8 model."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"images": calibration[i : i + 8].numpy()} for i in range(0, len(calibration), 8)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".int8-") as work:
        exported, prepared = Path(work) / "float32.onnx", Path(work) / "prepared.onnx"
        _export_onnx(module, image_size, exported)
        quant_pre_process(str(exported), str(prepared), skip_symbolic_shape=True)
        quantized = Path(work) / "int8.onnx"
        quantize_static(
            str(prepared),
            str(quantized),
            Batches(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        os.replace(quantized, out)


def int8_model_path(model_root: str | os.PathLike[str], identity: BackboneIdentity, image_size: int) -> Path:
    return Path(model_root) / INT8_MODELS_FOLDER / identity.sha256[:16] / f"{image_size}px-{CALIBRATION_VERSION}.onnx"


class Int8Extractor:
    """Callable like `FrozenFeatures`: a float32 CPU batch in, a float32 (N, 4096) tensor out."""

    def __init__(self, model_path: Path, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.model_path = model_path
        self.session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(images.detach().cpu().float().numpy())
        return torch.from_numpy(self.session.run(None, {"images": batch})[0])


_int8_lock = threading.Lock()
_int8_extractors: dict[tuple[str, int], Int8Extractor] = {}


def forget_int8_models() -> None:
    """Drop the int8 models this process holds, as in a fresh process (the files stay)."""
    with _int8_lock:
        _int8_extractors.clear()


def int8_extractor(
    backbone: Callable[[], FrozenFeatures],
    identity: BackboneIdentity,
    image_size: int,
    model_root: str | os.PathLike[str] | None,
) -> Int8Extractor:
    """The int8 extractor for this backbone and image size, built once: kept in this process,
    and stored under `model_root` (the feature cache) for the next process. `backbone` is called
    only when the model must be built. Without `model_root` the model lives in a temp folder
    for this process. The calibration is fixed, so the model depends only on the backbone and
    the image size: one built under another root in this process is reused."""
    root = Path(model_root) if model_root is not None else Path(tempfile.gettempdir()) / f"painsite-{os.getpid()}"
    path = int8_model_path(root, identity, image_size)
    key = (identity.sha256, image_size)
    with _int8_lock:
        if key not in _int8_extractors:
            extractor = None
            if path.is_file():
                try:
                    extractor = Int8Extractor(path, torch.get_num_threads())
                except Exception as error:  # ONNX Runtime raises its own types for a damaged file
                    logger.warning("ignoring damaged int8 feature model %s (%s): it will be rebuilt", path, error)
            if extractor is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                started = time.monotonic()
                module = _Exportable(backbone(), image_size).eval()
                quantize_int8(module, image_size, calibration_batch(image_size), path)
                logger.info("built the int8 feature model %s in %.1f s", path, time.monotonic() - started)
                extractor = Int8Extractor(path, torch.get_num_threads())
            _int8_extractors.clear()
            _int8_extractors[key] = extractor
        return _int8_extractors[key]


# ---------------------------------------------------------------------------------------------
# Choosing a path


def _machine_key() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    return {
        "cpu": cpu or platform.processor(),
        "flags": sorted(_cpu_flags()),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime_version(),
    }


def _trial_network() -> nn.Module:
    # VGG16's first two blocks: the layers where float32 and int8 kernels differ most per FLOP.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layers = [
            nn.Conv2d(3, 64, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(128, 128, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        ]
        return nn.Sequential(*layers).eval()


def measure_int8_gain(rounds: int = 5, image_size: int = 64, batch: int = 8) -> float:
    """int8 images/s over torch float32's on VGG16's first two blocks, median of interleaved
    rounds after a warm-up. A few seconds."""
    network = _trial_network()
    images = torch.randn(batch, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory(prefix="painsite-int8-trial-") as work:
        path = Path(work) / "trial.onnx"
        quantize_int8(network, image_size, images, path)
        fast = Int8Extractor(path, torch.get_num_threads())
        timings: dict[str, list[float]] = {"float32": [], "int8": []}
        with torch.inference_mode():
            runs = {"float32": lambda: network(images), "int8": lambda: fast(images)}
            for run in runs.values():
                run()
            for _ in range(rounds):
                for name, run in runs.items():
                    started = time.perf_counter()
                    run()
                    timings[name].append(time.perf_counter() - started)
    return float(np.median(timings["float32"]) / np.median(timings["int8"]))


_checks: dict[str, dict[str, Any]] = {}


def forget_checks() -> None:
    """Drop this process's memory of the int8 trial, as in a fresh process."""
    _checks.clear()


def int8_check(state_dir: str | os.PathLike[str] | None) -> dict[str, Any]:
    """Whether int8 is worth it on this machine: the trial's result, cached in `state_dir`
    per CPU model, flags, thread count and library versions (so a worker pays it once), and
    in this process."""
    machine = _machine_key()
    memo_key = json.dumps(machine, sort_keys=True)
    if memo_key in _checks:
        return _checks[memo_key]
    _checks[memo_key] = entry = _int8_check(state_dir, machine)
    return entry


def _int8_check(state_dir: str | os.PathLike[str] | None, machine: dict[str, Any]) -> dict[str, Any]:
    if machine["onnxruntime"] is None:
        return {"machine": machine, "gain": None, "use_int8": False, "reason": "onnxruntime is not installed"}
    digest = hashlib.sha256(json.dumps(machine, sort_keys=True).encode()).hexdigest()[:24]
    path = Path(state_dir) / CHECKS_FOLDER / f"{digest}.json" if state_dir is not None else None
    if path is not None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry["machine"] == machine and isinstance(entry["use_int8"], bool):
                return entry
    try:
        gain = measure_int8_gain()
    except Exception as error:  # an exporter or runtime that cannot run here: float32 it is
        logger.warning("the int8 feature path does not run on this machine: %s", error)
        entry = {"machine": machine, "gain": None, "use_int8": False, "reason": f"trial failed: {error}"}
    else:
        entry = {
            "machine": machine,
            "gain": round(gain, 3),
            "use_int8": gain >= MIN_INT8_GAIN,
            "reason": f"int8 computed {gain:.2f}x the float32 rate in the trial (needs {MIN_INT8_GAIN}x)",
        }
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(entry, out, indent=1)
        os.replace(temp, path)
    return entry


def choose_feature_path(
    device: str = "auto",
    precision: str = "auto",
    feature_path: str = AUTO,
    *,
    state_dir: str | os.PathLike[str] | None = None,
) -> DeviceChoice:
    """The device and feature path for extraction. An explicit `feature_path` wins over
    `precision`; `auto` as the module docstring says. `state_dir` keeps the int8 trial's result."""
    check_feature_path(feature_path)
    if feature_path == FLOAT32:
        return choose_device(device, "float32")
    if feature_path == BF16:
        return choose_device(device, "bfloat16")
    choice = choose_device(device, precision)
    if feature_path == INT8_ONNXRUNTIME:
        if choice.device.type != "cpu":
            raise FeaturePathError(f"the {INT8_ONNXRUNTIME} feature path runs on the CPU only, not on {choice.device}")
        if onnxruntime_version() is None:
            raise FeaturePathError(f"the {INT8_ONNXRUNTIME} feature path needs the onnxruntime package")
        return int8_choice()
    if (
        choice.device.type == "cpu"
        and not choice.uses_bf16
        and precision == "auto"
        and int8_check(state_dir)["use_int8"]
    ):
        return int8_choice()
    return choice


def int8_choice() -> DeviceChoice:
    return DeviceChoice(
        device=torch.device("cpu"),
        dtype=torch.float32,
        channels_last=False,
        feature_path=INT8_ONNXRUNTIME,
        feature_path_version=CALIBRATION_VERSION,
    )


def path_extractor(
    choice: DeviceChoice,
    backbone: Callable[[], FrozenFeatures],
    identity: BackboneIdentity,
    image_size: int,
    model_root: str | os.PathLike[str] | None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """What computes features on `choice`'s path: the int8 ONNX Runtime model, or the
    float32/bf16 copy of the backbone."""
    if choice.path == INT8_ONNXRUNTIME:
        return int8_extractor(backbone, identity, image_size, model_root)
    return inference_extractor(backbone(), identity, choice)


__all__ = [
    "AUTO",
    "BF16",
    "CALIBRATION_VERSION",
    "FEATURE_PATHS",
    "FEATURE_PATH_CHOICES",
    "FLOAT32",
    "INT8_ONNXRUNTIME",
    "FeaturePathError",
    "Int8Extractor",
    "check_feature_path",
    "choose_feature_path",
    "int8_check",
    "int8_extractor",
    "path_extractor",
    "quantize_int8",
]
