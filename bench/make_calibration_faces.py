"""Write the fixed calibration set for the int8 feature path: modeling/ml/calibration/*.png.

32 synthetic faces (16 patients x 2 images, data seed 7, so none of the tests' or benchmarks'
data seeds 1-4), drawn at 128 px like the tests' faces, cropped as training crops them (the
Haar cascade's face box grown by 20% per side). The PNG files are committed: the ML core reads
them without importing the generator, and a change to the generator does not silently change
every int8 model. Run again only together with raising `feature_paths.CALIBRATION_VERSION`.

    python bench/make_calibration_faces.py [--out modeling/ml/calibration]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from annotation.faces import detect_face  # noqa: E402
from modeling.ml.transforms import crop_face  # noqa: E402
from painsite.synthetic_faces import plan_patients  # noqa: E402

SEED = 7
PATIENTS = 16
IMAGES_PER_PATIENT = 2
DRAWN_SIZE = 128


def write_calibration_faces(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for patient in plan_patients(PATIENTS, IMAGES_PER_PATIENT, SEED):
        for index in range(IMAGES_PER_PATIENT):
            image = patient.draw(index, DRAWN_SIZE)
            path = out / f"{patient.code}-{index + 1}.png"
            crop_face(image, detect_face(image)).save(path, optimize=True)
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "modeling" / "ml" / "calibration")
    args = parser.parse_args()
    for path in write_calibration_faces(args.out):
        print(path)


if __name__ == "__main__":
    main()
