"""Benchmark: bulk-import rate of 640x480 JPEGs in one worker process, face detection included.

Run alone: ``python bench/import_rate.py [--images 200]`` prints images/s and writes
bench/results/import_rate.json. It builds a ZIP of synthetic faces with a manifest (half the rows
carry an NRS, so labels are recorded too) and imports it through the same code a `default` worker
runs, into a throw-away SQLite database and media folder (or DATABASE_URL when set). A per-stage
breakdown (decode + re-encode, face detection, thumbnail) on the same images says where time goes.
Target: 20 images/s or more per worker process on a 2-core machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_IMAGES_PER_SECOND = 20.0
WIDTH, HEIGHT = 640, 480


def main() -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument(
        "--database-url", default="", help="a throw-away database to import into (default: SQLite in a temp folder)"
    )
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="painsite-bench-import-"))
    # Never the configured database: the benchmark writes hundreds of rows.
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
    user = User.objects.create_user("bench-importer")

    jpegs = [encode(make_face(WIDTH, HEIGHT, seed=seed), "JPEG", quality=90) for seed in range(args.images)]
    rows = ["filename,patient,cohort,nrs,kind,captured_at,consent"]
    rows += [f"{i:04d}.jpg,B{i // 10:03d},clinical,{i % 11 if i % 2 else ''},,,granted" for i in range(args.images)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("manifest.csv", "\n".join(rows) + "\n")
        for i, data in enumerate(jpegs):
            archive.writestr(f"{i:04d}.jpg", data)

    load_before = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), time.process_time()
    buffer.seek(0)
    job = start_archive_import(archive=buffer, size=len(buffer.getvalue()), source_name="bench.zip", actor=user)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    assert job.created_count == args.images, job.report["rejected"][:3]

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

    rate = args.images / seconds
    result = {
        "benchmark": "import_rate",
        "images": args.images,
        "image_size": [WIDTH, HEIGHT],
        "seconds": round(seconds, 3),
        "images_per_second": round(rate, 2),
        "target_images_per_second": TARGET_IMAGES_PER_SECOND,
        "meets_target": rate >= TARGET_IMAGES_PER_SECOND,
        # CPU seconds this process used: what the rate would be with its cores to itself. On a
        # shared machine (load average above the core count) wall-clock time is mostly waiting.
        "cpu_seconds": round(cpu_seconds, 3),
        "images_per_cpu_second": round(args.images / cpu_seconds, 2),
        "faces_found_fraction": round(Image.objects.filter(face_box__isnull=False).count() / args.images, 3),
        "labels_recorded": sum(1 for i in range(args.images) if i % 2),
        "stage_ms_per_image": {name: round(1000 * total / len(sample), 2) for name, total in stages.items()},
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m_before": round(load_before, 2),
            "python": platform.python_version(),
            "pillow": PIL.__version__,
            "opencv": cv2.__version__,
            "opencv_threads": cv2.getNumThreads(),
        },
    }
    output = ROOT / "bench" / "results" / "import_rate.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"imported {args.images} {WIDTH}x{HEIGHT} JPEGs in {seconds:.2f} s: {rate:.1f} images/s "
        f"(target {TARGET_IMAGES_PER_SECOND:.0f}, {rate / TARGET_IMAGES_PER_SECOND:.2f}x); "
        f"{result['images_per_cpu_second']:.1f} images per CPU second; load average {load_before:.1f} on {os.cpu_count()} cores; "
        f"per image: {result['stage_ms_per_image']}; faces found {result['faces_found_fraction']:.0%}"
    )
    print(f"wrote {output.relative_to(ROOT)}")
    shutil.rmtree(scratch, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
