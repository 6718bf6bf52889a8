"""Where the bf16 extraction speed-up comes from: VGG16's frozen part on one fixed batch of random
images, float32 NCHW (the plain torchvision forward) against the project's bf16 + channels_last
copy, side by side in one process; then each convolution alone in both, with its GFLOP/s.

    python bench/ml_bf16.py                  # 224 px, 64 images, best of 3 alternating rounds
    python bench/ml_bf16.py --compile        # also the bf16 copy under torch.compile (freezing)

Run it under `flock /tmp/bench.lock` on a shared machine. Writes bench/results/ml_bf16.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is first on sys.path, and bench/queue.py would shadow the standard
# library's queue module that torch imports.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from modeling.ml.backbone import load_backbone  # noqa: E402
from modeling.ml.device import choose_device, configure_threads, cpu_supports_bf16  # noqa: E402
from modeling.ml.features import compute_vectors  # noqa: E402
from modeling.ml.network import FrozenFeatures, for_inference  # noqa: E402


def best_seconds(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Best wall time of each run over `rounds` alternating rounds, after one warm-up each."""
    for run in runs.values():
        run()
    best = {name: float("inf") for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def whole_network(images: torch.Tensor, rounds: int, use_compile: bool) -> dict[str, Any]:
    vgg, _ = load_backbone(init_seed=0, allow_download=False)
    choice = choose_device("cpu", "bfloat16")
    plain = FrozenFeatures(vgg).eval()
    bf16 = for_inference(FrozenFeatures(vgg), device=torch.device("cpu"), dtype=torch.bfloat16, channels_last=True)
    float32_channels_last = for_inference(
        FrozenFeatures(vgg), device=torch.device("cpu"), dtype=torch.float32, channels_last=True
    )

    def batches(forward: Callable[[torch.Tensor], object], batch_size: int) -> Callable[[], None]:
        @torch.inference_mode()
        def run() -> None:
            for start in range(0, len(images), batch_size):
                forward(images[start : start + batch_size])

        return run

    runs = {
        "float32 NCHW, batch 32": batches(plain, 32),
        "float32 channels_last, batch 32": batches(
            lambda x: float32_channels_last(x.contiguous(memory_format=torch.channels_last)), 32
        ),
        "bf16 channels_last (project), batch 16": batches(lambda x: compute_vectors(bf16, x, choice), 16),
        "bf16 channels_last (project), batch 32": batches(lambda x: compute_vectors(bf16, x, choice), 32),
        "bf16 channels_last (project), batch 64": batches(lambda x: compute_vectors(bf16, x, choice), 64),
    }
    if use_compile:
        os.environ.setdefault("TORCHINDUCTOR_FREEZING", "1")
        compiled = torch.compile(bf16)
        started = time.perf_counter()
        batches(lambda x: compute_vectors(compiled, x, choice), 32)()
        compile_seconds = time.perf_counter() - started
        runs["bf16 channels_last under torch.compile, batch 32"] = batches(
            lambda x: compute_vectors(compiled, x, choice), 32
        )
    seconds = best_seconds(runs, rounds)
    baseline = seconds["float32 NCHW, batch 32"]
    report = {
        name: {"images_per_s": len(images) / value, "speedup_vs_float32_nchw": baseline / value}
        for name, value in seconds.items()
    }
    if use_compile:
        report["compile_seconds"] = compile_seconds
    return report


def convolutions(images: torch.Tensor, rounds: int) -> list[dict[str, Any]]:
    """Each 3x3 convolution of VGG16 on its own input, float32 NCHW vs bf16 channels_last."""
    vgg, _ = load_backbone(init_seed=0, allow_download=False)
    rows = []
    activation = images
    with torch.inference_mode():
        for index, layer in enumerate(vgg.features):
            if isinstance(layer, nn.Conv2d):
                fast = for_inference(layer, device=torch.device("cpu"), dtype=torch.bfloat16, channels_last=True)
                fast_input = activation.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
                seconds = best_seconds(
                    {
                        "float32": lambda layer=layer, activation=activation: layer(activation),
                        "bf16": lambda fast=fast, fast_input=fast_input: fast(fast_input),
                    },
                    rounds,
                )
                batch, _, height, width = activation.shape
                flops = 2 * batch * height * width * layer.out_channels * layer.in_channels * 9
                rows.append(
                    {
                        "layer": index,
                        "input": list(activation.shape),
                        "out_channels": layer.out_channels,
                        "float32_gflops": flops / seconds["float32"] / 1e9,
                        "bf16_gflops": flops / seconds["bf16"] / 1e9,
                        "speedup": seconds["float32"] / seconds["bf16"],
                    }
                )
            activation = layer(activation)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also time the bf16 copy under torch.compile")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ml_bf16.json")
    args = parser.parse_args()

    threads = configure_threads()
    images = torch.randn(args.images, 3, args.image_size, args.image_size, generator=torch.Generator().manual_seed(0))
    report: dict[str, Any] = {
        "machine": {
            "nproc": os.cpu_count(),
            "torch_threads": threads,
            "bf16_native": cpu_supports_bf16(),
            "torch": torch.__version__,
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        },
        "images": args.images,
        "image_size": args.image_size,
        "rounds": args.rounds,
    }
    report["whole_network"] = whole_network(images, args.rounds, args.compile)
    for name, row in report["whole_network"].items():
        if isinstance(row, dict):
            print(f"{name:50s} {row['images_per_s']:6.2f} img/s  {row['speedup_vs_float32_nchw']:.2f}x")
    report["convolutions"] = convolutions(images[:16], args.rounds)
    for row in report["convolutions"]:
        print(
            f"conv at features[{row['layer']:2d}] {str(row['input']):22s} float32 {row['float32_gflops']:5.0f} "
            f"GFLOP/s, bf16 {row['bf16_gflops']:5.0f} GFLOP/s: {row['speedup']:.2f}x"
        )
    report["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
