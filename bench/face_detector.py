"""Benchmark: the face detector's choice rule on real photos and on the synthetic demo faces.

Compares the earlier rule (the largest candidate of the Haar cascade, no confidence) with the rule
in annotation.faces (the most confident candidate, none below MIN_CONFIDENCE) on the same images:

- scikit-image's astronaut photo in nine encodings (PNG RGB/RGBA/palette/grey/16-bit, JPEG, WebP):
  how often the chosen box is her face (IoU >= 0.5 with the hand-checked box);
- scikit-image's LFW subset: 100 real face crops and 100 non-face crops, set on a canvas;
- twelve scikit-image photos without a face;
- synthetic faces as the demo and the tests draw them (painsite.synthetic_faces, JPEG).

Run alone: ``python bench/face_detector.py [--synthetic 300]``; prints the table and writes
bench/results/face_detector.json.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from annotation.faces import MIN_CONFIDENCE, FaceBox, find_faces  # noqa: E402
from painsite.synthetic_faces import COHORTS, draw_face, make_identity  # noqa: E402
from tests.ml import real_photos  # noqa: E402


def largest_rule(image: Image.Image) -> FaceBox | None:
    candidates = find_faces(image)
    return max((found.box for found in candidates), key=lambda box: box[2] * box[3], default=None)


def confident_rule(image: Image.Image) -> FaceBox | None:
    candidates = find_faces(image)
    return candidates[0].box if candidates and candidates[0].trusted else None


RULES = {"largest_candidate": largest_rule, "most_confident_above_threshold": confident_rule}


def synthetic_faces(count: int) -> list[Image.Image]:
    images = []
    for index in range(count):
        identity = make_identity(np.random.default_rng([11, index]), COHORTS[index % 2])
        face = draw_face(identity, index % 11, np.random.default_rng([11, index]), size=224)
        buffer = io.BytesIO()
        face.save(buffer, "JPEG", quality=90)
        images.append(Image.open(io.BytesIO(buffer.getvalue())))
    return images


def best_confidences(images: list[Image.Image]) -> list[float]:
    return [candidates[0].confidence for candidates in map(find_faces, images) if candidates]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=300, help="synthetic faces to draw (default 300)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "face_detector.json")
    options = parser.parse_args()

    astronaut = real_photos.encodings(real_photos.astronaut())
    sets = {
        "lfw_faces": real_photos.lfw_faces(),
        "lfw_non_faces": real_photos.lfw_non_faces(),
        "photos_without_faces": list(real_photos.no_face_photos().values()),
        "synthetic_faces": synthetic_faces(options.synthetic),
    }
    results: dict[str, dict] = {}
    for rule_name, rule in RULES.items():
        boxes = {name: rule(image) for name, image in astronaut.items()}
        row = {
            "astronaut_face_chosen": sum(
                box is not None and real_photos.overlap(box, real_photos.ASTRONAUT_FACE) >= 0.5
                for box in boxes.values()
            ),
            "astronaut_encodings": len(boxes),
            "astronaut_boxes": {name: box for name, box in boxes.items()},
        }
        for set_name, images in sets.items():
            row[f"{set_name}_found"] = sum(rule(image) is not None for image in images)
            row[f"{set_name}_total"] = len(images)
        results[rule_name] = row
    confidences = {name: best_confidences(images) for name, images in sets.items()}
    astronaut_background = [
        found.confidence
        for found in find_faces(astronaut["png-rgb"])
        if real_photos.overlap(found.box, real_photos.ASTRONAUT_FACE) < 0.5
    ]
    summary = {
        "cpu": cpu_model(),
        "min_confidence": MIN_CONFIDENCE,
        "scikit_image": real_photos.SKIMAGE_VERSION,
        "rules": results,
        "best_candidate_confidence": {
            name: {
                "n": len(values),
                "min": min(values, default=None),
                "p05": float(np.percentile(values, 5)) if values else None,
                "median": float(np.median(values)) if values else None,
            }
            for name, values in confidences.items()
        },
        "astronaut_background_candidate_confidence": astronaut_background,
    }
    print(
        f"{'rule':34} {'astronaut':>10} {'LFW faces':>10} {'LFW non-faces':>14} {'no-face photos':>15} {'synthetic':>10}"
    )
    for rule_name, row in results.items():
        print(
            f"{rule_name:34} {row['astronaut_face_chosen']:>6}/{row['astronaut_encodings']:<3}"
            f" {row['lfw_faces_found']:>6}/{row['lfw_faces_total']:<3}"
            f" {row['lfw_non_faces_found']:>10}/{row['lfw_non_faces_total']:<3}"
            f" {row['photos_without_faces_found']:>11}/{row['photos_without_faces_total']:<3}"
            f" {row['synthetic_faces_found']:>6}/{row['synthetic_faces_total']:<3}"
        )
    print("best-candidate confidence:", json.dumps(summary["best_candidate_confidence"]))
    print("astronaut background candidate:", astronaut_background)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {options.out}")


if __name__ == "__main__":
    main()
