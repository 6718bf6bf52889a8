"""manage.py seed_demo: synthetic patients, faces and pain labels for the demo and the tests.

Everything goes through the same services real data uses (patients, image intake with face
detection, label recording), so the demo exercises the whole path and the audit log shows it.
Every image is drawn by painsite.synthetic_faces and marked SYNTHETIC in a corner.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from PIL import Image as PILImage

from annotation.intake import DuplicateImage, store_image
from annotation.models import Consent, Image, LabelKind, PainLabel, Patient
from annotation.services import create_patient, record_label
from painsite.core.roles import CLINICIAN, assign_role
from painsite.synthetic_faces import Expression, PlannedPatient, nrs_for_intensity, plan_patients

CODE_PREFIX = "DEMO-"
SELF_REPORT_CLINICIAN = "demo-clinician"
SELF_REPORT_SHARE = 0.85  # some patients could not or did not report a score


@dataclass(frozen=True)
class DemoRater:
    """A simulated observer: scores the face with a personal bias and noise, and labels a subset."""

    username: str
    bias: float
    noise: float
    share: float


# Observers tend to underestimate pain, and not all by the same amount.
DEMO_RATERS = (
    DemoRater("demo-rater-1", bias=-0.6, noise=1.0, share=0.7),
    DemoRater("demo-rater-2", bias=0.2, noise=1.3, share=0.55),
)
# captured_at of the first image; a patient's next images follow every few hours.
CAPTURE_START = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


def observed_nrs(expression: Expression) -> float:
    """The NRS a face suggests to an observer, from the action units that show at any pain level.

    A stoic patient's pain is underestimated, as at a real bedside.
    """
    return nrs_for_intensity((expression.brow_lowering + expression.orbital_tightening + expression.lip_stretch) / 3)


def plan_labels(patient: PlannedPatient, index: int, expression: Expression) -> list[tuple[str, int, str]]:
    """(username, nrs, kind) of every demo label of one image, deterministic for the seed."""
    rng = patient.image_rng(index, "labels")
    draws = rng.random(1 + len(DEMO_RATERS))
    noise = rng.normal(0, 1, size=len(DEMO_RATERS))
    labels = []
    if draws[0] < SELF_REPORT_SHARE:
        labels.append((SELF_REPORT_CLINICIAN, patient.nrs[index], LabelKind.SELF_REPORT.value))
    seen = observed_nrs(expression)
    for rater, draw, jitter in zip(DEMO_RATERS, draws[1:], noise):
        if draw < rater.share:
            score = int(np.clip(round(seen + rater.bias + rater.noise * jitter), 0, 10))
            labels.append((rater.username, score, LabelKind.OBSERVER.value))
    return labels


@dataclass
class Summary:
    patients_new: int = 0
    patients_existing: int = 0
    images_new: int = 0
    images_existing: int = 0
    labels_new: int = 0
    faces_found: int = 0
    skipped_withdrawn: list[str] = field(default_factory=list)

    @property
    def images(self) -> int:
        return self.images_new + self.images_existing

    @property
    def created_anything(self) -> bool:
        return bool(self.patients_new or self.images_new or self.labels_new)


def demo_user(username: str) -> User:
    """A demo clinician who cannot log in: an unusable password, made for the demo labels only."""
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(username=username)
        user.set_unusable_password()
        user.save()
        assign_role(user, CLINICIAN)
    return user


class Command(BaseCommand):
    help = (
        "Create synthetic demo patients (both cohorts), their faces (drawn, marked SYNTHETIC) and "
        "demo labels: self-reports entered by demo-clinician and observer scores by demo-rater-1 "
        "and demo-rater-2. Running it again with the same arguments creates nothing new; more "
        "patients or images per patient add to the earlier ones, which stay as they were."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, default=60, help="number of patients (default 60)")
        parser.add_argument("--images-per-patient", type=int, default=6, help="images per patient (default 6)")
        parser.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same data")
        parser.add_argument("--size", type=int, default=256, help="image width and height in pixels (default 256)")

    def handle(self, *args, patients: int, images_per_patient: int, seed: int, size: int, **options) -> None:
        if patients < 1 or images_per_patient < 1:
            raise CommandError("--patients and --images-per-patient must be at least 1")
        if not 64 <= size <= 1024:
            raise CommandError("--size must be between 64 and 1024 pixels")
        if seed < 0:
            raise CommandError("--seed must not be negative")
        clinician = demo_user(SELF_REPORT_CLINICIAN)
        raters = {rater.username: demo_user(rater.username) for rater in DEMO_RATERS}
        users = {SELF_REPORT_CLINICIAN: clinician, **raters}

        summary = Summary()
        for planned in plan_patients(patients, images_per_patient, seed):
            self._seed_patient(planned, size=size, clinician=clinician, users=users, summary=summary)
        self._report(summary)

    def _seed_patient(
        self, planned: PlannedPatient, *, size: int, clinician: User, users: dict[str, User], summary: Summary
    ) -> None:
        code = CODE_PREFIX + planned.code
        patient = Patient.objects.filter(code=code).first()
        if patient is None:
            # Made-up faces of made-up people: the demo clinician records consent, as a real one would.
            patient = create_patient(code=code, cohort=planned.cohort, actor=clinician, consent=Consent.GRANTED)
            summary.patients_new += 1
        else:
            summary.patients_existing += 1
        if not patient.has_consent:
            # Withdrawn consent is respected even for made-up patients: no new images or labels.
            summary.skipped_withdrawn.append(code)
            return
        for index in range(len(planned.nrs)):
            picture, expression = planned.render(index, size)
            captured_at = CAPTURE_START + timedelta(days=planned.number, hours=4 * index)
            image = self._store(
                picture,
                patient=patient,
                filename=f"{code}-{index + 1:03d}.png",
                clinician=clinician,
                captured_at=captured_at,
                summary=summary,
            )
            summary.faces_found += image.face_box is not None
            already_labeled = set(PainLabel.objects.filter(image=image).values_list("rater__username", flat=True))
            for username, nrs, kind in plan_labels(planned, index, expression):
                if username not in already_labeled:
                    record_label(image=image, rater=users[username], nrs=nrs, kind=kind)
                    summary.labels_new += 1

    def _store(
        self,
        picture: PILImage.Image,
        *,
        patient: Patient,
        filename: str,
        clinician: User,
        captured_at: datetime,
        summary: Summary,
    ) -> Image:
        # PNG, so the stored JPEG is the first and only lossy encoding of the drawing.
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", compress_level=1)
        try:
            stored = store_image(
                data=buffer.getvalue(),
                filename=filename,
                patient=patient,
                uploaded_by=clinician,
                captured_at=captured_at,
            )
        except DuplicateImage as duplicate:
            summary.images_existing += 1
            return duplicate.existing_image
        summary.images_new += 1
        return stored.image

    def _report(self, summary: Summary) -> None:
        write = self.stdout.write
        write(f"Patients: {summary.patients_new} created, {summary.patients_existing} already there.")
        write(f"Images:   {summary.images_new} created, {summary.images_existing} already there.")
        write(f"Labels:   {summary.labels_new} created.")
        write(f"Faces found in {summary.faces_found} of {summary.images} images.")
        if summary.skipped_withdrawn:
            write(f"Skipped (consent withdrawn): {', '.join(summary.skipped_withdrawn)}.")
        if summary.created_anything:
            write(self.style.SUCCESS("Synthetic demo data seeded."))
        else:
            write("Nothing new: the demo data for these arguments is already there.")
