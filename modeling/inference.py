"""The models that answer assessments: loaded once per process and version, shared by requests.

Loading a model rebuilds a VGG16 (seconds, half a gigabyte), so a web process keeps the versions
it serves in memory, keyed by version id and weights sha256, and shares them between its request
threads. Each request looks up the production version (one indexed query) and takes the model for
exactly that row: a promotion is picked up by the next request, and a request never mixes the
version it reports with another version's probabilities.

Preprocessing, device and precision are the ML core's (`modeling.ml.predict.load_model`): the
training eval preset, CUDA when present, bf16 and channels_last on CPUs that compute bf16 natively.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.utils.translation import gettext
from PIL import Image as PILImage

from modeling.artifacts import feature_cache_dir, weights_file
from modeling.ml.backbone import WeightsFileError
from modeling.ml.data import FaceBox
from modeling.ml.gradcam import grad_cam, overlay_base64, place_on_image
from modeling.ml.predict import LoadedModel, load_model
from modeling.ml.transforms import face_crop_box
from modeling.models import ModelVersion, Stage


class NoProductionModel(Exception):
    """No model version is in production, so there is nothing to assess with."""

    def __init__(self) -> None:
        super().__init__(
            gettext(
                "there is no production model yet: a researcher trains one on the Training page "
                "(/training/) and an admin promotes it on the Results page (/results/)"
            )
        )


class ModelVersionUnavailable(ValueError):
    """The requested model version does not exist or is archived."""


class ModelLoadFailed(Exception):
    """The version's weights file is missing, damaged or needs a backbone this machine lacks."""


def production_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(stage=Stage.PRODUCTION).first()


def production_version_id() -> int | None:
    """The production version's id alone (one indexed read, for ETags and other cheap checks)."""
    return ModelVersion.objects.filter(stage=Stage.PRODUCTION).values_list("pk", flat=True).first()


def resolve_version(requested: int | str | None = None) -> ModelVersion:
    """The version to assess with: the production one by default, or the one asked for by id or
    name, as long as it is not archived."""
    if requested is None or requested == "":
        version = production_version()
        if version is None:
            raise NoProductionModel()
        return version
    text = str(requested).strip()
    version = ModelVersion.objects.filter(pk=int(text)).first() if text.isdigit() else None
    if version is None:
        version = ModelVersion.objects.filter(name=text).first()
    if version is None:
        raise ModelVersionUnavailable(gettext("model version %(text)s does not exist") % {"text": repr(text)})
    if version.stage == Stage.ARCHIVED:
        raise ModelVersionUnavailable(
            gettext("model version %(name)s is archived: assess with the production model or a candidate")
            % {"name": version.name}
        )
    return version


@dataclass
class ServedModel:
    """One loaded model version and what a request needs to use it."""

    version_id: int
    version_name: str
    weights_sha256: str
    model: LoadedModel
    lock: contextlib.AbstractContextManager = field(repr=False)

    @property
    def level_names(self) -> list[str]:
        return self.model.level_names

    def predict(self, picture: PILImage.Image, face_box: FaceBox | None) -> np.ndarray:
        with self.lock:
            return self.model.predict_image(picture, face_box)

    def predict_many(
        self, pictures: list[PILImage.Image], face_boxes: list[FaceBox | None], *, batch_size: int = 32
    ) -> np.ndarray:
        """Batched forward passes for many pictures (a ward round's due beds)."""
        with self.lock:
            return self.model.predict_images(pictures, face_boxes, batch_size=batch_size)

    def heatmap(self, picture: PILImage.Image, face_box: FaceBox | None, *, level: int) -> np.ndarray:
        """Grad-CAM of `level` over the face crop, on the whole picture (its aspect ratio)."""
        batch = self.model.preset(picture, face_box).unsqueeze(0)
        network = self.model.network
        with self.lock:
            cam, _ = grad_cam(network.features, network.from_conv_output, batch, target=level)
        return place_on_image(cam, crop_box=face_crop_box(picture.size, face_box), image_size=picture.size)

    def explain(self, picture: PILImage.Image, face_box: FaceBox | None, *, level: int) -> str:
        """A base64 PNG of the picture with the Grad-CAM of `level` laid over it."""
        return overlay_base64(picture, self.heatmap(picture, face_box, level=level))


class ModelCache:
    """Loaded model versions of this process, most recently used last. A process serves the
    production version plus, for researchers, the occasional other one; each costs about half a
    gigabyte, so only the `capacity` most recently used stay loaded.

    Loading happens once per version even when many requests ask at the same moment (a lock per
    version); requests for versions already loaded never wait on a load. `loads` counts loads.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.loads = 0
        self._models: OrderedDict[tuple[int, str], ServedModel] = OrderedDict()
        self._loading: dict[tuple[int, str], threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, version: ModelVersion) -> ServedModel:
        key = (version.pk, version.weights_sha256)
        with self._lock:
            served = self._models.get(key)
            if served is not None:
                self._models.move_to_end(key)
                return served
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                served = self._models.get(key)
            if served is None:
                served = self._load(version)
                with self._lock:
                    self._models[key] = served
                    self.loads += 1
                    while len(self._models) > self.capacity:
                        self._models.popitem(last=False)
                    self._loading.pop(key, None)
        return served

    def _load(self, version: ModelVersion) -> ServedModel:
        device = settings.PAINSITE_INFERENCE_DEVICE
        try:
            # The feature cache folder holds the backbone fingerprints and the int8 model a head trained
            # on int8 features needs: without it each web process would rebuild them.
            model = load_model(
                weights_file(version),
                device=device,
                expected_sha256=version.weights_sha256 or None,
                cache_dir=feature_cache_dir(),
            )
        except WeightsFileError as error:
            raise ModelLoadFailed(
                gettext("model version %(name)s cannot be loaded: %(error)s") % {"name": version.name, "error": error}
            ) from None
        # On a CPU one forward pass already keeps every core busy (intra-op threads); running
        # several at once only adds contention, so requests take turns. A GPU takes them as
        # they come.
        lock = contextlib.nullcontext() if model.choice.device.type == "cuda" else threading.Lock()
        served = ServedModel(version.pk, version.name, version.weights_sha256, model, lock)
        # The first pass builds the fast bf16/channels_last copy of the network; doing it here,
        # under the load lock, keeps it out of the first request and out of any race.
        served.predict(PILImage.new("RGB", (model.image_size, model.image_size)), None)
        return served

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            self.loads = 0

    def loaded_versions(self) -> list[int]:
        with self._lock:
            return [version_id for version_id, _ in self._models]


models = ModelCache(capacity=settings.PAINSITE_INFERENCE_CACHE_VERSIONS)
