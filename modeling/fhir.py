"""FHIR R4 resources for a patient's pain scores and model assessments, for a hospital's record.

The mapping (docs/deploy.md, "FHIR R4", says it for a hospital's IT team):

- a clinician's NRS score is an Observation coded LOINC 72514-3 with `valueInteger`. There is one
  Observation per chain of scores (one rater, one image): the chain's standing score, `final`
  when it was never changed, `amended` when it replaced an earlier score, `entered-in-error`
  (no value) when the rater took it back. Its id follows the chain's first row, so a corrected
  score updates the Observation a hospital already holds instead of adding a second one.
  Superseded values are not exported; the full history stays in PainSite (labels.csv).
- who gave the score is in `method` (PainSite codes `self-report` / `observer-estimate`) and in
  `performer`: a self-report names the Patient first (they reported it), then the Practitioner
  who recorded it; an observer estimate names the Practitioner only.
- a model assessment is an Observation coded PainSite `facial-pain-level` with the level as
  `valueCodeableConcept`, one component per level holding its probability, and `device` pointing
  to a Device for the model version. Assessments without a face have no level and are not
  exported (no face, no score).
- nobody is named: a Patient is its pseudonymous code, a Practitioner an HMAC of the account id
  (never the username), and images are referred to by id only, never sent.

Resources are built as plain JSON dicts. tests/modeling/test_fhir.py parses everything the
endpoints emit with fhir.resources' R4B models (R4B keeps R4's Observation, Patient,
Practitioner, Device, OperationOutcome and Bundle; fhir.resources has no R4 package). They are
not parsed again on every request: that costs about 2 ms per Observation, and a patient
watched by Monitor with Record on gains an assessment every few seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.utils import timezone
from django.utils.translation import gettext

from annotation.image_access import may_view_patient_data
from annotation.models import LabelKind, PainLabel, Patient
from modeling.models import Assessment, ModelVersion

Resource = dict[str, Any]

PAINSITE_CODES = "http://painsite.org/fhir/CodeSystem/painsite"
PAIN_LEVEL_CODES = "http://painsite.org/fhir/CodeSystem/pain-level"
PATIENT_CODE_SYSTEM = "http://painsite.org/fhir/NamingSystem/patient-code"
PRACTITIONER_SYSTEM = "http://painsite.org/fhir/NamingSystem/practitioner-pseudonym"
MODEL_VERSION_SYSTEM = "http://painsite.org/fhir/NamingSystem/model-version"
WEIGHTS_SHA256_SYSTEM = "http://painsite.org/fhir/NamingSystem/model-weights-sha256"
IMAGE_SYSTEM = "http://painsite.org/fhir/NamingSystem/image"
LABEL_SYSTEM = "http://painsite.org/fhir/NamingSystem/pain-label"
ASSESSMENT_SYSTEM = "http://painsite.org/fhir/NamingSystem/assessment"
LOINC = "http://loinc.org"
NRS_LOINC = "72514-3"
NRS_LOINC_DISPLAY = "Pain severity - 0-10 verbal numeric rating [Score] - Reported"
FACIAL_PAIN_LEVEL = "facial-pain-level"
METHODS = {
    LabelKind.SELF_REPORT: ("self-report", "Self-report: the patient's own score, recorded by a clinician"),
    LabelKind.OBSERVER: ("observer-estimate", "Observer estimate: a clinician's score from the patient's face"),
}
MODEL_METHOD = ("model-estimate", "Model estimate: a PainSite model's pain level from a face image")
SURVEY_CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey",
            "display": "Survey",
        }
    ]
}
PROBABILITY_UNIT = {"unit": "probability", "system": "http://unitsofmeasure.org", "code": "1"}
RANDOM_INIT_WARNING = (
    "Warning: this model version was trained from a random initialisation, not from ImageNet "
    "weights; it is for trying PainSite, not for clinical use."
)
# FHIR ids: letters, digits, '-' and '.', at most 64 characters.
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


# Identities


def patient_id(patient: Patient) -> str:
    """The code itself where it is a valid FHIR id; otherwise a digest of it (the code is still
    the Patient's identifier)."""
    if FHIR_ID.fullmatch(patient.code):
        return patient.code
    return "painsite-" + hashlib.sha256(patient.code.encode()).hexdigest()[:32]


def practitioner_id(user_id: int) -> str:
    """A stable pseudonym for an account: an HMAC of its id, keyed by PAINSITE_FHIR_PSEUDONYM_KEY,
    so it can be neither read back to a username nor computed outside PainSite."""
    key = settings.PAINSITE_FHIR_PSEUDONYM_KEY.encode()
    return hmac.new(key, f"practitioner:{user_id}".encode(), hashlib.sha256).hexdigest()[:24]


def device_id(version: ModelVersion) -> str:
    return f"model-version-{version.pk}"


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _reference(resource_type: str, resource_id: str, display: str | None = None) -> Resource:
    reference = {"reference": f"{resource_type}/{resource_id}"}
    return {**reference, "display": display} if display else reference


def _image_reference(image_id: int) -> Resource:
    # A logical reference: the image stays in PainSite, the hospital gets its id only.
    return {
        "type": "Media",
        "identifier": {"system": IMAGE_SYSTEM, "value": str(image_id)},
        "display": f"face image {image_id} (kept in PainSite, not exported)",
    }


# Resources


def patient_resource(patient: Patient) -> Resource:
    return {
        "resourceType": "Patient",
        "id": patient_id(patient),
        "meta": {"tag": [{"system": PAINSITE_CODES, "code": f"cohort-{patient.cohort}"}]},
        "identifier": [{"system": PATIENT_CODE_SYSTEM, "value": patient.code}],
    }


def practitioner_resource(user_id: int) -> Resource:
    pseudonym = practitioner_id(user_id)
    return {
        "resourceType": "Practitioner",
        "id": pseudonym,
        "identifier": [{"system": PRACTITIONER_SYSTEM, "value": pseudonym}],
    }


def device_resource(version: ModelVersion) -> Resource:
    device: Resource = {
        "resourceType": "Device",
        "id": device_id(version),
        "identifier": [
            {"system": MODEL_VERSION_SYSTEM, "value": version.name},
            {"system": WEIGHTS_SHA256_SYSTEM, "value": version.weights_sha256},
        ],
        "status": "inactive" if version.stage == "archived" else "active",
        "deviceName": [{"name": f"PainSite facial pain model {version.name}", "type": "model-name"}],
        "type": {"text": f"Software: facial pain level classifier ({version.backbone})"},
        "version": [{"value": version.name}],
    }
    if version.is_random_init:
        device["note"] = [{"text": RANDOM_INIT_WARNING}]
    return device


def label_observation(chain: list[PainLabel], patient: Patient) -> Resource:
    """The Observation of one chain of scores (one rater, one image), oldest row first."""
    first, head = chain[0], chain[-1]
    image = head.image
    if head.is_retraction:
        status = "entered-in-error"
    elif len(chain) > 1:
        status = "amended"
    else:
        status = "final"
    code, display = METHODS[head.kind]
    subject = _reference("Patient", patient_id(patient))
    practitioner = _reference("Practitioner", practitioner_id(head.rater_id))
    observation: Resource = {
        "resourceType": "Observation",
        "id": f"label-{first.pk}",
        "meta": {"versionId": str(len(chain)), "lastUpdated": _instant(head.created_at)},
        "identifier": [{"system": LABEL_SYSTEM, "value": str(head.pk)}],
        "status": status,
        "category": [SURVEY_CATEGORY],
        "code": {
            "coding": [{"system": LOINC, "code": NRS_LOINC, "display": NRS_LOINC_DISPLAY}],
            "text": "Pain score, NRS 0-10",
        },
        "subject": subject,
        # When the face was photographed; the upload time where that is unknown (as the patient page).
        "effectiveDateTime": _instant(image.captured_at or image.uploaded_at),
        "issued": _instant(head.created_at),
        "performer": [subject, practitioner] if head.kind == LabelKind.SELF_REPORT else [practitioner],
        "method": {"coding": [{"system": PAINSITE_CODES, "code": code, "display": display}], "text": display},
        "derivedFrom": [_image_reference(image.pk)],
    }
    if head.is_retraction:
        observation["note"] = [{"text": "The rater took this score back; it no longer stands."}]
    else:
        observation["valueInteger"] = head.nrs
    return observation


def _level_display(name: str, version: ModelVersion) -> str:
    for level in version.pain_levels:
        if level.get("name") == name and len(level.get("nrs", [])) == 2:
            low, high = level["nrs"]
            return f"{name} (NRS {low})" if low == high else f"{name} (NRS {low}-{high})"
    return name


def _level_names(assessment: Assessment, version: ModelVersion) -> list[str]:
    """The version's levels in scale order; any level the row names beyond them after."""
    names = [level["name"] for level in version.pain_levels if level.get("name") in assessment.probabilities]
    return names + [name for name in assessment.probabilities if name not in names]


def assessment_observation(assessment: Assessment, version: ModelVersion, patient: Patient) -> Resource:
    image = assessment.image
    level_display = _level_display(assessment.level, version)
    note = (
        f"Machine-generated by PainSite model version {version.name} from a face image; "
        "not a clinician's score. The probabilities are the model's, one per pain level."
    )
    notes = [{"text": note}] + ([{"text": RANDOM_INIT_WARNING}] if version.is_random_init else [])
    return {
        "resourceType": "Observation",
        "id": f"assessment-{assessment.pk}",
        "identifier": [{"system": ASSESSMENT_SYSTEM, "value": str(assessment.pk)}],
        "status": "final",
        "code": {
            "coding": [
                {
                    "system": PAINSITE_CODES,
                    "code": FACIAL_PAIN_LEVEL,
                    "display": "Pain level estimated by a model from a face image",
                }
            ],
            "text": "Pain level (model assessment)",
        },
        "subject": _reference("Patient", patient_id(patient)),
        # When the face was photographed; the time of the assessment where that is unknown.
        "effectiveDateTime": _instant(image.captured_at or assessment.created_at),
        "issued": _instant(assessment.created_at),
        "valueCodeableConcept": {
            "coding": [{"system": PAIN_LEVEL_CODES, "code": assessment.level, "display": level_display}],
            "text": level_display,
        },
        "note": notes,
        "method": {
            "coding": [{"system": PAINSITE_CODES, "code": MODEL_METHOD[0], "display": MODEL_METHOD[1]}],
            "text": MODEL_METHOD[1],
        },
        "device": _reference("Device", device_id(version), f"PainSite model {version.name}"),
        "derivedFrom": [_image_reference(image.pk)],
        "component": [
            {
                "code": {
                    "coding": [{"system": PAIN_LEVEL_CODES, "code": name}],
                    "text": f"Probability of pain level {name}",
                },
                "valueQuantity": {"value": assessment.probabilities[name], **PROBABILITY_UNIT},
            }
            for name in _level_names(assessment, version)
        ],
    }


def operation_outcome(*, severity: str, code: str, diagnostics: str) -> Resource:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


# Reads


def _label_chains(patient: Patient) -> list[list[PainLabel]]:
    """Every chain of scores on the patient's images, each oldest row first."""
    rows = (
        PainLabel.objects.filter(image__patient=patient)
        .select_related("image")
        .only("nrs", "kind", "created_at", "is_retraction", "rater", "image__captured_at", "image__uploaded_at")
        .order_by("id")
    )
    chains: dict[tuple[int, int], list[PainLabel]] = {}
    for row in rows:
        chains.setdefault((row.image_id, row.rater_id), []).append(row)
    return list(chains.values())


def _assessments(patient: Patient) -> list[Assessment]:
    # No face, no score: an assessment without a face (only rows written before that rule) has no level.
    return list(
        Assessment.objects.filter(patient=patient, face_found=True)
        .select_related("image")
        .only("level", "probabilities", "created_at", "model_version", "image__captured_at")
        .order_by("id")
    )


def _versions(ids: Iterable[int]) -> dict[int, ModelVersion]:
    fields = ("id", "name", "stage", "backbone", "weights_sha256", "pain_levels")
    return {version.pk: version for version in ModelVersion.objects.filter(pk__in=set(ids)).only(*fields)}


@dataclass(frozen=True)
class PatientRecord:
    """The patient's exportable Observations and the resources they refer to. `withheld`: the
    viewer may not see this patient's scores, so there are none."""

    patient: Patient
    withheld: bool
    observations: list[Resource]
    practitioners: list[Resource]
    devices: list[Resource]

    def withheld_outcome(self) -> Resource:
        return operation_outcome(
            severity="information",
            code="suppressed",
            diagnostics=gettext(
                "Patient %(code)s withdrew consent: their scores and assessments are withheld from this account."
            )
            % {"code": self.patient.code},
        )


def patient_record(patient: Patient, *, viewer: User | AnonymousUser) -> PatientRecord:
    # The one rule of annotation.image_access: a withdrawn patient's scores are withheld from
    # everyone but admins; the rows themselves stay in PainSite.
    withheld = not may_view_patient_data(viewer, patient)
    chains = [] if withheld else _label_chains(patient)
    assessments = [] if withheld else _assessments(patient)
    versions = _versions(assessment.model_version_id for assessment in assessments)
    observations = [label_observation(chain, patient) for chain in chains] + [
        assessment_observation(assessment, versions[assessment.model_version_id], patient) for assessment in assessments
    ]
    observations.sort(key=lambda observation: (observation["effectiveDateTime"], observation["issued"]))
    return PatientRecord(
        patient=patient,
        withheld=withheld,
        observations=observations,
        practitioners=[practitioner_resource(user_id) for user_id in sorted({chain[-1].rater_id for chain in chains})],
        devices=[device_resource(versions[pk]) for pk in sorted(versions)],
    )


def observation_search_bundle(
    patient: Patient, *, viewer: User | AnonymousUser, base_url: str, self_url: str
) -> Resource:
    """`GET /fhir/Observation?patient=<code>`: the patient's Observations as a searchset."""
    record = patient_record(patient, viewer=viewer)
    entries = [_entry(base_url, resource, "match") for resource in record.observations]
    if record.withheld:
        entries.append(_entry(base_url, record.withheld_outcome(), "outcome"))
    return _searchset(entries, total=len(record.observations), self_url=self_url)


def patient_everything_bundle(
    patient: Patient, *, viewer: User | AnonymousUser, base_url: str, self_url: str
) -> Resource:
    """`GET /fhir/Patient/<code>/$everything`: the Patient, its Observations and every Practitioner
    and Device they refer to."""
    record = patient_record(patient, viewer=viewer)
    resources = [patient_resource(patient), *record.observations, *record.practitioners, *record.devices]
    entries = [_entry(base_url, resource, "match") for resource in resources]
    if record.withheld:
        entries.append(_entry(base_url, record.withheld_outcome(), "outcome"))
    return _searchset(entries, total=len(resources), self_url=self_url)


def _entry(base_url: str, resource: Resource, mode: str) -> Resource:
    entry: Resource = {"resource": resource, "search": {"mode": mode}}
    if "id" in resource:
        entry = {"fullUrl": f"{base_url}{resource['resourceType']}/{resource['id']}", **entry}
    return entry


def _searchset(entries: list[Resource], *, total: int, self_url: str) -> Resource:
    return {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": _instant(timezone.now())},
        "type": "searchset",
        "total": total,
        "link": [{"relation": "self", "url": self_url}],
        "entry": entries,
    }
