"""CPU extraction paths for the frozen VGG16 part, side by side on this machine.

Every candidate computes the 4096-d features of the same batch of synthetic faces (drawn at
128 px, data seed 11, preprocessed as training does) with the same thread count. After one
warm-up call each, the candidates run in turn, round after round, so a machine shared with
other work slows them alike; the median round gives images/s and the ratio to plain float32
NCHW torchvision VGG16. Batch 1 (one assessment) is measured the same way. Beside the speed,
the cosine of each candidate's features to float32's, per image.

Candidates: torch float32 NCHW (the baseline) and channels_last; torch bf16 (channels_last,
autocast) only where the CPU has native bf16; ONNX Runtime float32; ONNX Runtime static int8
(the project's `int8-onnxruntime` path, calibrated on modeling/ml/calibration/); torch's own
int8 (FX graph mode, x86 backend, calibrated on the same faces).

    python bench/ml_cpu_paths.py [--image-size 224] [--batch 16] [--rounds 3] [--threads 2]

Writes bench/results/ml_cpu_paths.json (or --out) with the CPU model and flags.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from annotation.faces import detect_face  # noqa: E402
from modeling.ml.backbone import open_backbone  # noqa: E402
from modeling.ml.device import _cpu_flags, cpu_supports_bf16  # noqa: E402
from modeling.ml.feature_paths import (  # noqa: E402  # noqa: E402
    Int8Extractor,
    _export_onnx,
    _Exportable,
    calibration_batch,
    onnxruntime_version,
    quantize_int8,
)
from modeling.ml.network import FrozenFeatures, for_inference  # noqa: E402
from modeling.ml.transforms import EvalPreset  # noqa: E402
from painsite.synthetic_faces import plan_patients  # noqa: E402

BUILD_SECONDS: dict[str, float] = {}
RELEVANT_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16", "amx_int8")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def faces(count: int, image_size: int) -> torch.Tensor:
    preset = EvalPreset(image_size)
    images = []
    for patient in plan_patients(count, 1, 11):
        image = patient.draw(0, 128)
        images.append(preset(image, detect_face(image)))
    return torch.stack(images[:count])


def torch_fx_int8(frozen: FrozenFeatures, calibration: torch.Tensor, example: torch.Tensor) -> torch.nn.Module:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    prepared = prepare_fx(copy.deepcopy(frozen).eval(), get_default_qconfig_mapping("x86"), (example,))
    with torch.inference_mode():
        for start in range(0, len(calibration), 8):
            prepared(calibration[start : start + 8])
    return convert_fx(prepared)


def candidates(
    frozen: FrozenFeatures, image_size: int, work: Path, threads: int
) -> dict[str, Callable[[torch.Tensor], Any]]:
    runs: dict[str, Callable[[torch.Tensor], Any]] = {}
    runs["torch float32 NCHW"] = lambda batch: frozen(batch)
    nhwc = for_inference(frozen, device=torch.device("cpu"), dtype=torch.float32, channels_last=True)
    runs["torch float32 channels_last"] = lambda batch: nhwc(batch.contiguous(memory_format=torch.channels_last))
    if cpu_supports_bf16():
        bf16 = for_inference(frozen, device=torch.device("cpu"), dtype=torch.bfloat16, channels_last=True)

        def run_bf16(batch: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return bf16(batch.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)).float()

        runs["torch bf16 channels_last"] = run_bf16
    calibration = calibration_batch(image_size)
    if onnxruntime_version() is not None:
        exportable = _Exportable(frozen, image_size).eval()
        _export_onnx(exportable, image_size, work / "float32.onnx")
        runs["onnxruntime float32"] = Int8Extractor(work / "float32.onnx", threads)
        started = time.perf_counter()
        quantize_int8(exportable, image_size, calibration, work / "int8.onnx")
        BUILD_SECONDS["onnxruntime int8"] = round(time.perf_counter() - started, 1)
        print(f"onnxruntime int8: calibrated and quantized in {BUILD_SECONDS['onnxruntime int8']} s", flush=True)
        runs["onnxruntime int8 (int8-onnxruntime)"] = Int8Extractor(work / "int8.onnx", threads)
    fx = torch_fx_int8(frozen, calibration, calibration[:1])
    runs["torch int8 FX x86"] = lambda batch: fx(batch)
    return runs


def measure(runs: dict[str, Callable[[torch.Tensor], Any]], batch: torch.Tensor, rounds: int) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    with torch.inference_mode():
        for run in runs.values():
            run(batch)  # warm-up: first-call allocations and kernel selection
        for _ in range(rounds):
            for name, run in runs.items():
                started = time.perf_counter()
                run(batch)
                seconds[name].append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--single-rounds", type=int, default=5, help="rounds at batch 1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ml_cpu_paths.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    frozen = FrozenFeatures(open_backbone(init_seed=0, fingerprint_dir=None).build()).eval()
    images = faces(args.batch, args.image_size)
    with tempfile.TemporaryDirectory() as work:
        runs = candidates(frozen, args.image_size, Path(work), args.threads)
        with torch.inference_mode():
            reference = frozen(images).numpy()
            cosines = {}
            for name, run in runs.items():
                out = np.asarray(run(images), dtype=np.float32)
                cosines[name] = (
                    (out * reference).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(reference, axis=1)
                )
        batch_seconds = measure(runs, images, args.rounds)
        single_seconds = measure(runs, images[:1], args.single_rounds)
    load_after = os.getloadavg()

    baseline = "torch float32 NCHW"
    results = []
    for name in runs:
        rate = args.batch / float(np.median(batch_seconds[name]))
        single = 1 / float(np.median(single_seconds[name]))
        results.append(
            {
                "path": name,
                "images_per_s": round(rate, 3),
                "ratio_to_float32_nchw": round(rate * float(np.median(batch_seconds[baseline])) / args.batch, 3),
                "batch1_images_per_s": round(single, 3),
                "batch1_ratio_to_float32_nchw": round(single * float(np.median(single_seconds[baseline])), 3),
                "round_seconds": [round(value, 3) for value in batch_seconds[name]],
                "cosine_to_float32": {
                    "min": round(float(cosines[name].min()), 5),
                    "mean": round(float(cosines[name].mean()), 5),
                },
            }
        )
        print(
            f"{name:38s} {rate:7.2f} images/s  {results[-1]['ratio_to_float32_nchw']:5.2f}x   "
            f"batch 1: {single:6.2f}/s {results[-1]['batch1_ratio_to_float32_nchw']:5.2f}x   "
            f"cosine min {results[-1]['cosine_to_float32']['min']:.4f}",
            flush=True,
        )
    flags = _cpu_flags()
    document = {
        "machine": {
            "cpu": cpu_model(),
            "cores_visible": os.cpu_count(),
            "threads": args.threads,
            "flags": {flag: flag in flags for flag in RELEVANT_FLAGS},
            "native_bf16": cpu_supports_bf16(),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in load_after],
            "shared": "measured while other people ran tests on the same cores; rounds interleave the candidates",
        },
        "libraries": {
            "torch": torch.__version__,
            "onnxruntime": onnxruntime_version(),
            "python": platform.python_version(),
        },
        "setup": {
            "image_size": args.image_size,
            "batch": args.batch,
            "rounds": args.rounds,
            "single_rounds": args.single_rounds,
            "backbone": "random-init (seed 0)",
            "images": "synthetic faces, data seed 11, drawn at 128 px, face crop",
            "calibration": "modeling/ml/calibration (32 synthetic faces, data seed 7)",
        },
        "results": results,
        "int8_build_seconds": BUILD_SECONDS,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
