"""The face detector on real photographs (scikit-image's, in every encoding an upload can arrive in)
and on the synthetic demo faces."""

from __future__ import annotations

import io
import socket

import numpy as np
import pytest
from PIL import Image

from annotation.faces import (
    MIN_CONFIDENCE,
    detect_face,
    detect_face_with_confidence,
    find_faces,
)
from painsite.synthetic_faces import COHORTS, draw_face, make_identity
from tests.ml import real_photos

ASTRONAUT_ENCODINGS = real_photos.encodings(real_photos.astronaut())


def test_the_real_photos_load_without_a_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert real_photos.astronaut().size == (512, 512)
    assert len(real_photos.lfw_faces()) == 100 and len(real_photos.no_face_photos()) == len(real_photos.NO_FACE_PHOTOS)


@pytest.mark.parametrize("encoding", sorted(ASTRONAUT_ENCODINGS))
def test_it_finds_the_astronauts_face_in_every_encoding(encoding):
    picture = ASTRONAUT_ENCODINGS[encoding]
    box = detect_face(picture)
    assert box is not None, encoding
    assert real_photos.overlap(box, real_photos.ASTRONAUT_FACE) >= 0.8, (encoding, box)


def test_it_prefers_the_confident_face_to_a_larger_background_candidate():
    candidates = find_faces(ASTRONAUT_ENCODINGS["png-rgb"])
    assert len(candidates) == 2
    face, background = candidates
    assert real_photos.overlap(face.box, real_photos.ASTRONAUT_FACE) >= 0.8
    # The background patch is the larger box: size alone chose it.
    assert background.box[2] * background.box[3] > face.box[2] * face.box[3]
    assert face.confidence >= MIN_CONFIDENCE > background.confidence


def test_it_reports_its_confidence_in_the_face_it_chose():
    found = detect_face_with_confidence(ASTRONAUT_ENCODINGS["jpeg"])
    assert found is not None and found.confidence >= MIN_CONFIDENCE
    assert found.box == detect_face(ASTRONAUT_ENCODINGS["jpeg"])


def test_a_candidate_below_the_confidence_threshold_is_no_face():
    background = real_photos.astronaut().crop((250, 60, 512, 330))
    candidates = find_faces(background)
    assert candidates and not candidates[0].trusted
    assert detect_face(background) is None and detect_face_with_confidence(background) is None


def test_it_finds_most_real_faces_of_the_lfw_subset():
    found = [detect_face(picture) is not None for picture in real_photos.lfw_faces()]
    assert np.mean(found) >= 0.85, np.mean(found)


def test_it_finds_no_face_in_real_photos_without_one():
    assert [detect_face(picture) for picture in real_photos.lfw_non_faces()] == [None] * 100
    found = {name: detect_face(picture) for name, picture in real_photos.no_face_photos().items()}
    assert found == dict.fromkeys(real_photos.NO_FACE_PHOTOS)


def test_transparent_pixels_are_seen_as_grey_not_as_their_stored_colour():
    # The face's pixels are all there, but fully transparent: a viewer sees a grey square.
    hidden = real_photos.astronaut().convert("RGBA")
    hidden.putalpha(0)
    assert detect_face(hidden) is None
    assert detect_face(real_photos.astronaut()) is not None


def test_it_finds_the_synthetic_demo_faces():
    found = []
    for index in range(60):
        identity = make_identity(np.random.default_rng([11, index]), COHORTS[index % 2])
        face = draw_face(identity, index % 11, np.random.default_rng([11, index]), size=224)
        buffer = io.BytesIO()
        face.save(buffer, "JPEG", quality=90)
        found.append(detect_face(Image.open(buffer)) is not None)
    assert np.mean(found) >= 0.95, np.mean(found)


def test_an_image_too_small_for_a_face_has_none():
    assert detect_face(Image.new("RGB", (20, 20), (128, 128, 128))) is None
    assert find_faces(Image.new("RGB", (0, 0))) == []
