"""Benchmark: from a folder of study-shaped faces to the per-level AUROC table, phase by phase.

Run alone: ``python bench/time_to_table.py [--images 4449]`` draws a folder of synthetic faces
shaped like the reference study (CPD: 3,411 images of 503 postoperative patients, SPD: 1,038 images
of 51 volunteers; NRS as painsite/synthetic_faces draws them) with its manifest, then times what a
research group does on a fresh install with the embedded defaults (SQLite database, embedded SQLite
broker, one `celery worker -Q default,training -c 1` as `make run` starts it):

1. import  `manage.py import_images FOLDER --manifest CSV`
2. train   `manage.py train --cohort clinical --cohort simulated --mode head --wait`
3. table   `manage.py evaluate vN`: the per-level AUROC with 95% CI and F1 per cohort, recomputed
           from the stored test predictions (the figures the results page shows)

Everything lives in a throw-away PAINSITE_VAR_DIR (database, broker, media, model data), deleted
afterwards: a developer's data, database or broker is never touched (DATABASE_URL,
CELERY_BROKER_URL and the storage variables are removed from the commands' environment). Drawing
the faces, migrating and starting the worker are timed too but not counted in the total.
`--images N` scales both cohorts down for a trial run. `--features-on-arrival off` turns off
the worker that computes each image's features as it arrives (PAINSITE_FEATURES_ON_ARRIVAL=0), so
`train` computes them all: the time before that worker existed. Prints each phase's seconds and the total
against the target and writes bench/results/time_to_table.json with the CPU it ran on.

Target: under 10 minutes on 2 cores with AVX2 only, under 5 minutes with AMX.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.machine import load_average, machine  # noqa: E402
from painsite.synthetic_faces.dataset import encode_jpeg, plan_patients  # noqa: E402

# The reference study (docs: /work/shared/DESIGN.md, bench/synthetic_faces.py): images and patients per cohort.
STUDY = {"clinical": {"images": 3411, "patients": 503}, "simulated": {"images": 1038, "patients": 51}}
STUDY_IMAGES = sum(cohort["images"] for cohort in STUDY.values())
# A scaled-down trial still needs patients enough for train, validation and test in each cohort.
MIN_PATIENTS_PER_COHORT = 12
IMAGE_SIZE = 224
TARGET_SECONDS_AVX2 = 600.0
TARGET_SECONDS_AMX = 300.0
USER = "bench-researcher"
# Variables that would point the commands at a developer's own database, broker or files.
NOT_INHERITED = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_BROKER_KEY_PREFIX",
    "PAINSITE_MEDIA_ROOT",
    "PAINSITE_DATA_DIR",
    "PAINSITE_STORAGE",
    "PAINSITE_RESULTS_DIR",
)


def study_shape(images: int) -> dict[str, dict[str, int]]:
    """Images and patients per cohort for `images` in all, in the study's proportions."""
    clinical = round(images * STUDY["clinical"]["images"] / STUDY_IMAGES)
    shape = {}
    for cohort, count in (("clinical", clinical), ("simulated", images - clinical)):
        per_patient = STUDY[cohort]["images"] / STUDY[cohort]["patients"]
        patients = min(count, max(MIN_PATIENTS_PER_COHORT, round(count / per_patient)))
        shape[cohort] = {"images": count, "patients": patients}
    return shape


def write_study_folder(folder: Path, shape: dict[str, dict[str, int]], seed: int) -> Path:
    """JPEG faces under folder/<cohort>/<patient>/ and manifest.csv in the import format; each
    patient gets an equal share of the cohort's images (the first ones one image more)."""
    rows = [("filename", "patient", "cohort", "nrs", "kind", "captured_at", "consent")]
    for cohort, wanted in shape.items():
        share, extra = divmod(wanted["images"], wanted["patients"])
        planned = plan_patients(wanted["patients"], share + (extra > 0), seed, cohorts=(cohort,))
        for number, patient in enumerate(planned):
            (folder / cohort / patient.code).mkdir(parents=True, exist_ok=True)
            for index in range(share + (number < extra)):
                relative = f"{cohort}/{patient.code}/{patient.code}-{index + 1:03d}.jpg"
                (folder / relative).write_bytes(encode_jpeg(patient.draw(index, IMAGE_SIZE)))
                rows.append((relative, patient.code, cohort, str(patient.nrs[index]), "self_report", "", "granted"))
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return manifest


def command_environment(var_dir: Path, *, features_on_arrival: bool) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    env.update(
        PAINSITE_VAR_DIR=str(var_dir),
        DJANGO_SETTINGS_MODULE="painsite.settings",
        PYTHONUNBUFFERED="1",
        PAINSITE_FEATURES_ON_ARRIVAL="1" if features_on_arrival else "0",
    )
    return env


def manage(env: dict[str, str], *arguments: str) -> str:
    """Run a manage.py command to its end, echoing its output; raise if it fails."""
    process = subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if process.returncode != 0:
        sys.stderr.write(process.stdout[-4000:] + process.stderr[-4000:])
        raise SystemExit(f"manage.py {' '.join(arguments)} failed (exit {process.returncode})")
    return process.stdout


def start_worker(env: dict[str, str], var_dir: Path) -> subprocess.Popen:
    log = (var_dir / "worker.log").open("w")
    worker = [
        sys.executable, "-m", "celery", "-A", "painsite", "worker", "-Q", "default,training",
        "-c", "1", "--loglevel", "INFO", "--hostname", f"bench-time-to-table-{os.getpid()}@%h",
    ]  # fmt: skip
    return subprocess.Popen(worker, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until_ready(worker: subprocess.Popen, var_dir: Path, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited (code {worker.returncode}); see its log:\n{_tail(var_dir)}")
        if " ready." in (var_dir / "worker.log").read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise SystemExit(f"the worker was not ready within {timeout:.0f} s:\n{_tail(var_dir)}")


def stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _tail(var_dir: Path) -> str:
    return (var_dir / "worker.log").read_text(errors="replace")[-3000:]


def main() -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=STUDY_IMAGES, help=f"faces in all (default {STUDY_IMAGES:,})")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic patients")
    parser.add_argument(
        "--features-on-arrival", choices=("on", "off"), default="on", help="a worker computes features as images arrive"
    )
    parser.add_argument("--out", type=Path, help="default bench/results/time_to_table[_features_off].json")
    args = parser.parse_args()
    if args.images < 2 * MIN_PATIENTS_PER_COHORT:
        parser.error(f"--images must be at least {2 * MIN_PATIENTS_PER_COHORT}")

    started_machine = machine()
    amx = "amx_bf16" in started_machine["cpu_flags"]
    target = TARGET_SECONDS_AMX if amx else TARGET_SECONDS_AVX2
    shape = study_shape(args.images)
    scratch = Path(tempfile.mkdtemp(prefix="painsite-bench-time-to-table-"))
    var_dir, folder = scratch / "var", scratch / "faces"
    on_arrival = args.features_on_arrival == "on"
    out = args.out or ROOT / "bench" / "results" / f"time_to_table{'' if on_arrival else '_features_off'}.json"
    env = command_environment(var_dir, features_on_arrival=on_arrival)
    setup: dict[str, float] = {}
    phases: dict[str, float] = {}
    worker = None
    try:
        print(
            f"{started_machine['cpu_model']}, {started_machine['cpus']} cores ({' '.join(started_machine['cpu_flags'])})"
        )
        print(f"data set: {json.dumps(shape)}; throw-away PAINSITE_VAR_DIR {var_dir}")
        started = time.perf_counter()
        manifest = write_study_folder(folder, shape, args.seed)
        setup["draw_faces"] = time.perf_counter() - started

        started = time.perf_counter()
        manage(env, "migrate", "--verbosity", "0")
        manage(env, "shell", "-c", f"from django.contrib.auth.models import User; User.objects.create_user({USER!r})")
        setup["migrate"] = time.perf_counter() - started
        started = time.perf_counter()
        worker = start_worker(env, var_dir)
        wait_until_ready(worker, var_dir)
        setup["worker_start"] = time.perf_counter() - started
        for name, seconds in setup.items():
            print(f"  (not counted) {name:<12} {seconds:8.1f} s")

        started = time.perf_counter()
        imported = manage(env, "import_images", str(folder), "--manifest", str(manifest), "--user", USER)
        phases["import"] = time.perf_counter() - started
        print(f"  import       {phases['import']:8.1f} s  {imported.splitlines()[0]}")

        started = time.perf_counter()
        trained = manage(
            env, "train", "--cohort", "clinical", "--cohort", "simulated", "--mode", "head", "--user", USER, "--wait"
        )
        phases["train"] = time.perf_counter() - started
        version = re.search(r"succeeded: (\S+)", trained)
        if version is None:
            raise SystemExit(f"train --wait did not name the new model version:\n{trained[-2000:]}")
        print(f"  train        {phases['train']:8.1f} s  {trained.strip().splitlines()[-1]}")

        started = time.perf_counter()
        table = manage(env, "evaluate", version.group(1))
        phases["table"] = time.perf_counter() - started
        print(f"  table        {phases['table']:8.1f} s")
        print("\n".join(f"    {line}" for line in table.strip().splitlines()))
        run_facts = json.loads(
            manage(
                env,
                "shell",
                "-c",
                "import json; from modeling.models import ModelVersion; "
                f"v = ModelVersion.objects.get(name={version.group(1)!r}); "
                "r = v.training_run; "
                "print(json.dumps({'backbone': v.backbone, 'hyperparameters': v.hyperparameters, "
                "'features_computed': r.features_computed, 'features_cached': r.features_cached}))",
            )
            .strip()
            .splitlines()[-1]
        )
    finally:
        if worker is not None:
            stop_worker(worker)
        worker_log = (var_dir / "worker.log").read_text(errors="replace") if (var_dir / "worker.log").exists() else ""
        shutil.rmtree(scratch, ignore_errors=True)
    # A fresh install builds its int8 feature model once (per backbone and image size) inside train.
    built = re.search(r"built the int8 feature model .* in ([0-9.]+) s", worker_log)

    total = sum(phases.values())
    result = {
        "benchmark": "time_to_table",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "images": args.images,
        "full_size": args.images == STUDY_IMAGES,
        "shape": shape,
        "image_size": IMAGE_SIZE,
        "stack": "SQLite + embedded SQLite broker, one celery worker -Q default,training -c 1",
        "features_on_arrival": on_arrival,
        "train_features_computed": run_facts["features_computed"],
        "train_features_cached": run_facts["features_cached"],
        "phase_seconds": {name: round(seconds, 1) for name, seconds in phases.items()},
        "total_seconds": round(total, 1),
        "not_counted_seconds": {name: round(seconds, 1) for name, seconds in setup.items()},
        "target_seconds": target,
        "target_kind": "AMX" if amx else "AVX2 only",
        "meets_target": total < target,
        "int8_feature_model_build_seconds_in_train": float(built.group(1)) if built else None,
        "backbone": run_facts["backbone"],
        "hyperparameters": run_facts["hyperparameters"],
        "table": table.strip().splitlines(),
        "machine": {**started_machine, "load_average_at_end": load_average()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    scale = "" if result["full_size"] else f" (scaled down: {args.images:,} of {STUDY_IMAGES:,} images)"
    print(
        f"total {total:.1f} s = "
        + " + ".join(f"{name} {seconds:.1f}" for name, seconds in phases.items())
        + f"; target under {target:.0f} s ({result['target_kind']}): "
        f"{'met' if result['meets_target'] else 'NOT met'}, {total / target:.2f}x of it{scale}; "
        f"load average {load_average()[0]} on {started_machine['cpus']} cores"
    )
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return result


if __name__ == "__main__":
    main()
