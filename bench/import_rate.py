"""Benchmark: bulk-import rate of 640x480 JPEGs, one image after another and with worker threads.

Run alone: ``python bench/import_rate.py [--images 200] [--workers N] [--rounds 2]`` prints
images/s of a sequential import (PAINSITE_IMPORT_WORKERS=1) and of a parallel one (N threads
processing the next rows while the import stores them in turn; default: the CPUs available) side
by side with their ratio, and writes bench/results/import_rate.json. It builds a ZIP of synthetic
faces with a manifest (half the rows carry an NRS, so labels are recorded too) and imports it
through the same code a `default` worker runs, into a throw-away SQLite database and media folder
(or DATABASE_URL when set), emptied between imports so every import stores every image. The two
modes alternate for `--rounds` rounds, so a change in the machine's load hits both.

Why threads and not processes: the CPU part of an import alone (decode, re-encode, sha256, face
detection, thumbnail on the same images) is also timed one after another, on threads and on a
pool of spawned processes; processes would pay off only if they beat threads there.
Target: 20 images/s or more per import on a 2-core machine.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import zipfile
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.machine import load_average, machine  # noqa: E402

TARGET_IMAGES_PER_SECOND = 20.0
WIDTH, HEIGHT = 640, 480


def _setup_django_in_child() -> None:
    # A spawned process starts bare: settings only, it never opens a database connection.
    import django

    django.setup()


def _process(data: bytes) -> str:
    from annotation.intake import process_image

    return process_image(data=data, filename="x.jpg").sha256


def _pure_rate(executor: Executor | None, jpegs: list[bytes]) -> float:
    if executor is None:
        started = time.perf_counter()
        for data in jpegs:
            _process(data)
        return len(jpegs) / (time.perf_counter() - started)
    list(executor.map(_process, jpegs[:8]))  # warm: cascades loaded, processes started
    started = time.perf_counter()
    list(executor.map(_process, jpegs))
    return len(jpegs) / (time.perf_counter() - started)


def main() -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rounds", type=int, default=2, help="sequential/parallel pairs, alternating")
    parser.add_argument(
        "--database-url", default="", help="a throw-away database to import into (default: SQLite in a temp folder)"
    )
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="painsite-bench-import-"))
    # Never the configured database: the benchmark writes hundreds of rows and empties the tables.
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{scratch / 'bench.sqlite3'}"
    os.environ["PAINSITE_VAR_DIR"] = str(scratch)
    os.environ["PAINSITE_MEDIA_ROOT"] = str(scratch / "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "painsite.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import cv2
    import PIL

    from annotation.bulk_import import start_archive_import
    from annotation.faces import detect_face
    from annotation.intake import make_thumbnail, prepare_image
    from annotation.models import Image
    from tests.annotation.image_factories import encode, make_face

    settings.PAINSITE_IMPORT_INLINE_MAX_ROWS = args.images
    settings.PAINSITE_IMPORT_INLINE_MAX_BYTES = 1 << 40

    jpegs = [encode(make_face(WIDTH, HEIGHT, seed=seed), "JPEG", quality=90) for seed in range(args.images)]
    rows = ["filename,patient,cohort,nrs,kind,captured_at,consent"]
    rows += [f"{i:04d}.jpg,B{i // 10:03d},clinical,{i % 11 if i % 2 else ''},,,granted" for i in range(args.images)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("manifest.csv", "\n".join(rows) + "\n")
        for i, data in enumerate(jpegs):
            archive.writestr(f"{i:04d}.jpg", data)
    archive_bytes = buffer.getvalue()

    started_machine = machine(pillow=PIL.__version__, opencv=cv2.__version__, opencv_threads=cv2.getNumThreads())
    modes = {"sequential": 1, "parallel": args.workers}
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    faces_found = 0.0
    for _ in range(args.rounds):
        for mode, workers in modes.items():
            call_command("flush", interactive=False, verbosity=0)
            shutil.rmtree(scratch / "media", ignore_errors=True)
            user = User.objects.create_user("bench-importer")
            settings.PAINSITE_IMPORT_WORKERS = workers
            started, cpu_started = time.perf_counter(), time.process_time()
            job = start_archive_import(
                archive=io.BytesIO(archive_bytes), size=len(archive_bytes), source_name="bench.zip", actor=user
            )
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
            assert job.created_count == args.images, job.report["rejected"][:3]
            faces_found = Image.objects.filter(face_box__isnull=False).count() / args.images
            runs[mode].append({"seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3)})

    def summary(mode: str) -> dict[str, object]:
        seconds = sum(run["seconds"] for run in runs[mode])
        cpu_seconds = sum(run["cpu_seconds"] for run in runs[mode])
        images = args.images * len(runs[mode])
        return {
            "workers": modes[mode],
            "runs": runs[mode],
            "images_per_second": round(images / seconds, 2),
            # CPU seconds of this process: what it costs, whatever else the machine is doing.
            "images_per_cpu_second": round(images / cpu_seconds, 2),
        }

    sequential, parallel = summary("sequential"), summary("parallel")
    ratio = parallel["images_per_second"] / sequential["images_per_second"]

    stages = {"decode_reencode": 0.0, "face_detection": 0.0, "thumbnail": 0.0}
    sample = jpegs[: min(50, len(jpegs))]
    for data in sample:
        t0 = time.perf_counter()
        prepared = prepare_image(data=data, filename="x.jpg")
        t1 = time.perf_counter()
        detect_face(prepared.picture)
        t2 = time.perf_counter()
        make_thumbnail(prepared.picture)
        t3 = time.perf_counter()
        stages["decode_reencode"] += t1 - t0
        stages["face_detection"] += t2 - t1
        stages["thumbnail"] += t3 - t2

    pure_sample = jpegs[: min(120, len(jpegs))]
    with ThreadPoolExecutor(args.workers) as threads:
        thread_rate = _pure_rate(threads, pure_sample)
    with ProcessPoolExecutor(
        args.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_setup_django_in_child
    ) as processes:
        process_rate = _pure_rate(processes, pure_sample)
    one_by_one_rate = _pure_rate(None, pure_sample)

    result = {
        "benchmark": "import_rate",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "images": args.images,
        "image_size": [WIDTH, HEIGHT],
        "rounds": args.rounds,
        "sequential": sequential,
        "parallel": parallel,
        "parallel_to_sequential": round(ratio, 2),
        "target_images_per_second": TARGET_IMAGES_PER_SECOND,
        "meets_target": parallel["images_per_second"] >= TARGET_IMAGES_PER_SECOND,
        "faces_found_fraction": round(faces_found, 3),
        "labels_recorded": sum(1 for i in range(args.images) if i % 2),
        "stage_ms_per_image": {name: round(1000 * total / len(sample), 2) for name, total in stages.items()},
        "cpu_part_images_per_second": {
            "images": len(pure_sample),
            "one_after_another": round(one_by_one_rate, 2),
            "threads": round(thread_rate, 2),
            "processes": round(process_rate, 2),
            "workers": args.workers,
        },
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "machine": {**started_machine, "load_average_at_end": load_average()},
    }
    output = ROOT / "bench" / "results" / "import_rate.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{started_machine['cpu_model']}, {started_machine['cpus']} cores, load average {load_average()[0]}")
    print(f"{'mode':<12} {'workers':>7} {'images/s':>9} {'per CPU s':>9}")
    for mode, figures in (("sequential", sequential), ("parallel", parallel)):
        print(
            f"{mode:<12} {figures['workers']:>7} {figures['images_per_second']:>9.1f} "
            f"{figures['images_per_cpu_second']:>9.1f}"
        )
    print(
        f"parallel / sequential: {ratio:.2f}x; target {TARGET_IMAGES_PER_SECOND:.0f} images/s "
        f"({'met' if result['meets_target'] else 'not met'}); per image: {result['stage_ms_per_image']}"
    )
    pure = result["cpu_part_images_per_second"]
    print(
        f"CPU part alone, images/s: one after another {pure['one_after_another']}, "
        f"{args.workers} threads {pure['threads']}, {args.workers} processes {pure['processes']}"
    )
    print(f"wrote {output.relative_to(ROOT)}")
    shutil.rmtree(scratch, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
