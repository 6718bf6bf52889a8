"""Benchmark: how many beds one monitoring worker process keeps at a 10 s interval, and the lag
from grabbing a frame to seeing its assessment through the ward board's endpoint.

Run alone: ``python bench/ward.py [--beds 10,20,40,60] [--rounds 3] [--image-size 224]`` prints
the figures and writes bench/results/ward.json. It trains a small head-mode model on synthetic
faces at the real input size (so the VGG16 forward pass costs what production's does), makes it
the production version in a throw-away SQLite database, writes one MJPG video per bed of a
synthetic patient's face at 640x480 (painsite/synthetic_faces/video.py) and registers each as a
camera, read through OpenCV like an RTSP stream.

For each bed count, --rounds ward rounds run in this process exactly as a `monitoring` worker runs
them (modeling.ward_rounds.run_ward_round: claim the due slots, read and find the faces, one
batched forward pass, record), each at the next slot of every camera so every bed is due. A bed
count is kept when a round takes less than the interval: a worker whose round takes longer falls
behind and records missed slots. After each round the board endpoint (GET /api/ward/beds/, a
logged-in test client) is read and, for each bed, the time from the frame's grab to the answer
that shows it is the lag (a real worker adds up to one beat tick, PAINSITE_WARD_TICK_SECONDS, and
the board up to one poll, PAINSITE_WARD_BOARD_POLL_SECONDS).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.machine import machine

INTERVAL_SECONDS = 10
TARGET_BEDS = 40
WIDTH, HEIGHT = 640, 480
# Seeds whose synthetic faces OpenCV's cascade finds (tests/modeling/tiny_model.py).
FACE_SEEDS = (1, 3, 5, 6, 9, 11)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def main() -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beds", default="10,20,40,60", help="bed counts to try, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per bed count")
    parser.add_argument("--image-size", type=int, default=224, help="network input size the model is trained at")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="faces per forward pass (PAINSITE_WARD_BATCH_SIZE)"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "ward.json")
    args = parser.parse_args()
    counts = [int(value) for value in args.beds.split(",") if value.strip()]
    if not counts or min(counts) < 1 or args.rounds < 1:
        parser.error("--beds needs positive counts and --rounds at least 1")

    started_machine = machine()
    scratch = Path(tempfile.mkdtemp(prefix="painsite-bench-ward-"))
    os.environ.update(
        {
            "DATABASE_URL": f"sqlite:///{scratch / 'bench.sqlite3'}",
            "PAINSITE_VAR_DIR": str(scratch),
            "PAINSITE_MEDIA_ROOT": str(scratch / "media"),
            "PAINSITE_DATA_DIR": str(scratch / "data"),
            "PAINSITE_OFFLINE": "1",
            "DEBUG": "False",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "painsite.settings",
            "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
        }
    )
    import django

    django.setup()
    import torch
    from django.core.management import call_command
    from django.test import Client

    from modeling.models import Stage
    from modeling.ward import register_source
    from modeling.ward_frames import CameraReader
    from modeling.ward_models import CameraSource, StreamAssessment
    from modeling.ward_rounds import run_ward_round
    from painsite.synthetic_faces.video import face_frames, write_video
    from tests.annotation.factories import make_patient
    from tests.conftest import make_user
    from tests.modeling.tiny_model import make_model_version, tiny_model

    call_command("migrate", verbosity=0)
    from django.conf import settings

    if args.batch_size:
        settings.PAINSITE_WARD_BATCH_SIZE = args.batch_size
    print(f"training a head-mode model at {args.image_size} px on synthetic faces...", flush=True)
    result = tiny_model(image_size=args.image_size)
    make_model_version(result, name="v1", stage=Stage.PRODUCTION)
    admin = make_user("bench-admin", "admin")
    board = Client()
    board.force_login(make_user("bench-clinician", "clinician"))

    largest = max(counts)
    print(f"writing {largest} camera videos ({WIDTH}x{HEIGHT} MJPG)...", flush=True)
    videos = []
    for bed in range(largest):
        frames = face_frames(seed=FACE_SEEDS[bed % len(FACE_SEEDS)], nrs=(bed * 3) % 11, count=2, size=(WIDTH, HEIGHT))
        videos.append(write_video(scratch / "videos" / f"bed-{bed:03d}.avi", frames, fps=2, repeat=4))
    for bed, video in enumerate(videos):
        register_source(
            actor=admin,
            name=f"camera {bed:03d}",
            url=str(video),
            bed=f"{bed:03d}",
            patient=make_patient(f"BENCH-{bed:03d}"),
            interval_seconds=INTERVAL_SECONDS,
            active=False,
        )

    reader = CameraReader()
    slot = int(time.time() // INTERVAL_SECONDS)
    # A warm-up round: loads the model and opens the captures, as a worker does once.
    CameraSource.objects.filter(bed__in=[f"{bed:03d}" for bed in range(min(counts))]).update(active=True)
    run_ward_round(reader=reader, worker="bench", now=datetime.fromtimestamp(slot * INTERVAL_SECONDS + 1, tz=UTC))
    load_before = os.getloadavg()[0]
    measured = []
    for count in counts:
        CameraSource.objects.update(active=False, last_slot=None)
        CameraSource.objects.filter(bed__in=[f"{bed:03d}" for bed in range(count)]).update(active=True)
        rounds = []
        for _ in range(args.rounds):
            slot += 1
            report = run_ward_round(
                reader=reader, worker="bench", now=datetime.fromtimestamp(slot * INTERVAL_SECONDS + 1, tz=UTC)
            )
            answered = board.get("/api/ward/beds/")
            seen = time.time()
            if answered.status_code != 200 or report.claimed != count:
                raise RuntimeError(f"round of {count} beds: claimed {report.claimed}, board {answered.status_code}")
            frames = StreamAssessment.objects.filter(slot=slot, frame_at__isnull=False)
            lags = [seen - frame.timestamp() for frame in frames.values_list("frame_at", flat=True)]
            rounds.append(
                {
                    "seconds": report.seconds,
                    "phases": report.phases,
                    "assessed": report.assessed,
                    "no_face": report.no_face,
                    "no_frame": report.no_frame,
                    "lag_p50_s": round(statistics.median(lags), 3),
                    "lag_max_s": round(max(lags), 3),
                    "load_average_1m": round(os.getloadavg()[0], 2),
                }
            )
            print(
                f"{count} beds: round {report.seconds:.2f} s (forward {report.phases.get('forward', 0):.2f} s), "
                f"{report.assessed} assessed, {report.no_face} no face; lag p50 {rounds[-1]['lag_p50_s']} s",
                flush=True,
            )
        median_round = statistics.median(one["seconds"] for one in rounds)
        measured.append(
            {
                "beds": count,
                "rounds": rounds,
                "round_seconds_median": round(median_round, 3),
                "round_seconds_max": round(max(one["seconds"] for one in rounds), 3),
                "seconds_per_bed": round(median_round / count, 4),
                "share_of_interval": round(median_round / INTERVAL_SECONDS, 3),
                "keeps_up": max(one["seconds"] for one in rounds) < INTERVAL_SECONDS,
            }
        )
    reader.close_all()
    kept = [one["beds"] for one in measured if one["keeps_up"]]
    slowest = max(measured, key=lambda one: one["seconds_per_bed"])
    output = {
        "benchmark": "ward",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "interval_seconds": INTERVAL_SECONDS,
        "target_beds": TARGET_BEDS,
        "image_size": args.image_size,
        "frame_size": [WIDTH, HEIGHT],
        "model": {"device": "cpu", "feature_path": result.feature_path, "backbone": result.backbone},
        "worker": {
            "processes": 1,
            "torch_threads": torch.get_num_threads(),
            "batch_size": settings.PAINSITE_WARD_BATCH_SIZE,
        },
        "measured": measured,
        "most_beds_kept": max(kept) if kept else 0,
        # From the slowest bed count's cost per bed: what one worker could carry at this interval.
        "estimated_beds_per_worker": int(INTERVAL_SECONDS / slowest["seconds_per_bed"]),
        "meets_target": bool(kept) and max(kept) >= TARGET_BEDS,
        "gpu": "not measured: no GPU was lent to this run",
        "machine": {**started_machine, "load_average_1m_before": round(load_before, 2),
                    "load_average_at_end": [round(value, 2) for value in os.getloadavg()]},
    }  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(output, indent=2) + "\n")
    print(json.dumps({key: output[key] for key in ("most_beds_kept", "estimated_beds_per_worker", "meets_target")}))
    return output


if __name__ == "__main__":
    main()
