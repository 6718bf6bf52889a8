"""Benchmark: how fast write_dataset draws a reference-sized synthetic data set, and how many of
its faces the upload path's face detector finds.

Run alone: ``python bench/synthetic_faces.py [--patients 554 --images-per-patient 8]`` writes the
JPEGs and manifest into a temp folder (deleted afterwards), prints the figures and writes
bench/results/synthetic_faces.json. The defaults give 4,432 images, about the 4,449 of the
reference study (3,411 clinical + 1,038 simulated). Detection runs on a sample of the written
JPEGs with annotation.faces.detect_face (equalised, as on upload) and with the plain cascade.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from annotation.faces import detect_face  # noqa: E402
from painsite.synthetic_faces import write_dataset  # noqa: E402

CASCADE = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def plain_cascade_finds(image: Image.Image) -> bool:
    gray = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY)
    side = image.width // 5
    return len(CASCADE.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))) > 0


def main() -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=554)
    parser.add_argument("--images-per-patient", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--detection-sample", type=int, default=500)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="painsite-synthetic-"))
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        manifest = write_dataset(folder, args.patients, args.images_per_patient, seed=args.seed, size=args.size)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        with manifest.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        megabytes = sum(path.stat().st_size for path in folder.rglob("*.jpg")) / 1e6

        sample = rows[:: max(1, len(rows) // args.detection_sample)][: args.detection_sample]
        upload_found = plain_found = 0
        by_cohort: dict[str, list[int]] = {}
        for row in sample:
            with Image.open(folder / row["path"]) as opened:
                image = opened.convert("RGB")
            found = detect_face(image) is not None
            upload_found += found
            plain_found += plain_cascade_finds(image)
            by_cohort.setdefault(row["cohort"], []).append(found)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    nrs = np.array([int(row["nrs"]) for row in rows])
    result = {
        "images": len(rows),
        "patients": args.patients,
        "size": args.size,
        "seconds_wall": round(wall, 1),
        "seconds_cpu": round(cpu, 1),
        "ms_per_image_cpu": round(1000 * cpu / len(rows), 2),
        "images_per_cpu_second": round(len(rows) / cpu, 1),
        "megabytes": round(megabytes, 1),
        "detection_sample": len(sample),
        "faces_found_upload_path": round(upload_found / len(sample), 3),
        "faces_found_plain_cascade": round(plain_found / len(sample), 3),
        "faces_found_by_cohort": {cohort: round(float(np.mean(found)), 3) for cohort, found in by_cohort.items()},
        "nrs_counts": np.bincount(nrs, minlength=11).tolist(),
        "load_average": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results" / "synthetic_faces.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
