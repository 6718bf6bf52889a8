"""Synthetic, clearly-marked pain faces for the demo, the tests and the benchmarks.

No real person is shown: every face is drawn with Pillow from random parameters and carries a
visible "SYNTHETIC" mark. The expression follows the NRS the way pain faces do, through the action
units of the Prkachin-Solomon Pain Intensity score (PSPI): brow lowering (AU4), orbital tightening
and eye narrowing (AU6/7), nose wrinkle and upper-lip raise (AU9/10), eye closure (AU43), plus the
mouth opening and lip stretch (AU25-27, AU20) that often come with them. Each patient has an
identity (face shape, skin tone, hair, glasses, eye spacing, position in frame) and an
expressiveness: a stoic patient shows less of the same pain, so the face alone cannot give the NRS
exactly and a model has something to learn.

This package is pure (Pillow + NumPy): no Django import, so the ML core's tests and benchmarks use it
too. It lives outside the apps because it is demo and test data, not part of either: `identity`
(who a patient is, what their face shows), `parts` and `render` (drawing), `dataset` (planned
patients and written data sets).
"""

from painsite.synthetic_faces.dataset import PlannedPatient, encode_jpeg, plan_patients, write_dataset
from painsite.synthetic_faces.identity import (
    COHORTS,
    MARK,
    Expression,
    FaceIdentity,
    expression_intensity,
    make_identity,
    nrs_for_intensity,
    sample_expression,
)
from painsite.synthetic_faces.render import draw_face, render_face

__all__ = [
    "COHORTS",
    "MARK",
    "Expression",
    "FaceIdentity",
    "PlannedPatient",
    "draw_face",
    "encode_jpeg",
    "expression_intensity",
    "make_identity",
    "nrs_for_intensity",
    "plan_patients",
    "render_face",
    "sample_expression",
    "write_dataset",
]
