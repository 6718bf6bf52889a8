"""The VGG16 backbone: ImageNet weights found offline (or downloaded when allowed) or a loudly
recorded random init, its identity (sha256) and fingerprints cached on disk so a warm retrain
never builds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
import urllib.error
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torchvision.models import VGG, VGG16_Weights, vgg16

logger = logging.getLogger(__name__)

# torchvision names its weight files after the first 8 hex digits of their sha256; the whole
# sha256 and size of VGG16 IMAGENET1K_V1 (https://download.pytorch.org/models/vgg16-397923af.pth).
WEIGHTS_SHA256_PREFIX = "397923af"
VGG16_IMAGENET_SHA256 = "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0"
VGG16_IMAGENET_BYTES = 553_433_881

_download_failed = False
_offline_said = False


# One backbone per process is kept: building VGG16 costs seconds and ~0.5 GB, and a worker
# retrains and assesses with the same weights again and again. It is shared read-only. Beside it,
# the fingerprints this process has computed by building (the truth) and those it has read.
_cache_lock = threading.RLock()
_cache: dict[BackboneSource, tuple[VGG, BackboneIdentity]] = {}
_computed: dict[BackboneSource, str] = {}
_read: dict[BackboneSource, str] = {}
# How many times this process has constructed a VGG16 backbone (tests and benchmarks read it).
vgg16_constructions = 0


IMAGENET = "vgg16-imagenet1k-v1"


RANDOM_INIT = "random-init"


WEIGHTS_FILENAME = "vgg16-397923af.pth"


class WeightsFileError(ValueError):
    """A weights or checkpoint file is missing, corrupt or not what it claims. Names the file."""


@dataclass(frozen=True)
class BackboneIdentity:
    """Which VGG16 weights the frozen part holds. `sha256` is the ImageNet file's sha256, or for
    a random init the sha256 of the initialised state (see `state_sha256`) with its seed."""

    name: str
    sha256: str
    init_seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """A fingerprint of a state dict: names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def installed_weights_path() -> Path:
    """Where training and assessment look for the ImageNet weights: PAINSITE_VGG16_WEIGHTS if
    set, else torchvision's hub cache under $TORCH_HOME (where a download would put them)."""
    explicit = os.getenv("PAINSITE_VGG16_WEIGHTS", "").strip()
    if explicit:
        return Path(explicit)
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILENAME


def imagenet_weights_path() -> Path | None:
    """PAINSITE_VGG16_WEIGHTS if set (it must exist), else torchvision's hub cache under
    $TORCH_HOME, else None."""
    path = installed_weights_path()
    if os.getenv("PAINSITE_VGG16_WEIGHTS", "").strip() and not path.is_file():
        raise WeightsFileError(f"PAINSITE_VGG16_WEIGHTS points to {path}, which is not a file")
    return path if path.is_file() else None


def offline() -> bool:
    """PAINSITE_OFFLINE: this machine never downloads weights (install them with
    `manage.py install_weights`)."""
    return os.getenv("PAINSITE_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def download_imagenet_weights() -> Path | None:
    """Let torchvision download the ImageNet weights into its hub cache; None when offline.
    Tried once per process: an offline worker should not wait on DNS for every run. With
    PAINSITE_OFFLINE set it is never tried, and the process says so once."""
    global _download_failed, _offline_said
    if offline():
        if not _offline_said:
            _offline_said = True
            logger.warning(
                "PAINSITE_OFFLINE is set: the VGG16 ImageNet weights are not downloaded; install them "
                "with `manage.py install_weights PATH` (expected at %s)",
                installed_weights_path(),
            )
        return None
    if _download_failed:
        return None
    try:
        # torch.hub announces the download on stdout, where the command line prints its JSON.
        with contextlib.redirect_stdout(sys.stderr):
            VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
    except (urllib.error.URLError, OSError, RuntimeError) as error:
        _download_failed = True
        logger.warning("could not download the VGG16 ImageNet weights: %s", error)
        return None
    return imagenet_weights_path()


def read_imagenet_state(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    sha = sha256_of_file(path)
    if sha != VGG16_IMAGENET_SHA256:
        raise WeightsFileError(
            f"{path} is not the VGG16 ImageNet weights file: its sha256 is {sha[:16]}…, "
            f"expected {VGG16_IMAGENET_SHA256[:16]}… (torchvision's IMAGENET1K_V1)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several unrelated types for a damaged file
        raise WeightsFileError(f"cannot load VGG16 weights from {path}: {error}") from None
    return state, sha


def _random_init_vgg16(seed: int) -> VGG:
    # fork_rng: initialising the backbone must not shift the caller's random stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return vgg16(weights=None)


@dataclass(frozen=True)
class BackboneSource:
    """Where a backbone's weights come from: the ImageNet file, or a random init from a seed."""

    name: str
    init_seed: int | None = None
    path: Path | None = None

    def describe(self) -> dict[str, Any]:
        """Everything the backbone's sha256 depends on, short of building it. A random init
        depends on the seed and the code that initialises (torch, torchvision); a file on its
        bytes, which a rewrite would show in its size or modification time."""
        if self.name == IMAGENET:
            assert self.path is not None
            stat = self.path.stat()
            return {
                "name": IMAGENET,
                "path": str(self.path.resolve()),
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
            }
        return {
            "name": RANDOM_INIT,
            "init_seed": int(self.init_seed or 0),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
        }


# A small persistent cache of backbone fingerprints beside the feature cache: it tells which
# sha256 (and so which feature-cache folder) a backbone has without building the VGG16, which
# costs seconds (a random init also has to hash 138M parameters). Entries are written only after
# a build computed them, and every build checks its sha256 against them.
FINGERPRINTS_FOLDER = "backbone-fingerprints"


FINGERPRINT_FORMAT = "painsite-backbone-fingerprint/1"


def _canonical_sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def fingerprint_path(folder: str | os.PathLike[str], source: BackboneSource) -> Path:
    return Path(folder) / FINGERPRINTS_FOLDER / f"{_canonical_sha256(source.describe())[:32]}.json"


def read_fingerprint(folder: str | os.PathLike[str], source: BackboneSource) -> str | None:
    """The backbone sha256 recorded for `source`, or None when there is no usable entry. A
    damaged or foreign entry is logged and ignored (the backbone is then built and the entry
    rewritten), never trusted."""
    path = fingerprint_path(folder, source)
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        logger.warning("ignoring damaged backbone fingerprint %s (%s): the backbone will be rebuilt", path, error)
        return None
    problem = None
    if not isinstance(entry, dict) or entry.get("format") != FINGERPRINT_FORMAT:
        problem = "not a PainSite backbone fingerprint"
    elif entry.get("source") != source.describe():
        problem = "it describes another backbone"
    elif entry.get("checksum") != _canonical_sha256({"source": entry["source"], "sha256": entry.get("sha256")}):
        problem = "its checksum does not match its content"
    elif not (isinstance(entry["sha256"], str) and len(entry["sha256"]) == 64):
        problem = "its sha256 is malformed"
    elif source.name == IMAGENET and entry["sha256"] != VGG16_IMAGENET_SHA256:
        problem = "its sha256 is not the ImageNet file's"
    if problem:
        logger.warning("ignoring backbone fingerprint %s: %s; the backbone will be rebuilt", path, problem)
        return None
    return entry["sha256"]


def write_fingerprint(folder: str | os.PathLike[str], source: BackboneSource, sha256: str) -> None:
    """Record a computed fingerprint, atomically (temp file + rename): concurrent workers write
    the same bytes, and a crash never leaves half an entry."""
    path = fingerprint_path(folder, source)
    described = source.describe()
    entry = {
        "format": FINGERPRINT_FORMAT,
        "source": described,
        "sha256": sha256,
        "checksum": _canonical_sha256({"source": described, "sha256": sha256}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(entry, out, indent=1, sort_keys=True)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def forget_backbones() -> None:
    """Drop this process's backbone and known fingerprints, as in a fresh process."""
    with _cache_lock:
        _cache.clear()
        _computed.clear()
        _read.clear()


def _frozen(model: VGG) -> VGG:
    model.eval()
    model.requires_grad_(False)
    return model


def _build(source: BackboneSource) -> tuple[VGG, BackboneIdentity]:
    global vgg16_constructions
    with _cache_lock:
        if source in _cache:
            return _cache[source]
        vgg16_constructions += 1
        if source.name == IMAGENET:
            assert source.path is not None
            state, sha = read_imagenet_state(source.path)
            with torch.device("meta"):
                model = vgg16(weights=None)
            model.load_state_dict(state, assign=True)
            identity = BackboneIdentity(IMAGENET, sha)
        else:
            seed = int(source.init_seed or 0)
            model = _random_init_vgg16(seed)
            identity = BackboneIdentity(RANDOM_INIT, state_sha256(model.state_dict()), seed)
        _cache.clear()
        _cache[source] = (_frozen(model), identity)
        _computed[source] = identity.sha256
        return _cache[source]


def _identity(source: BackboneSource, sha256: str) -> BackboneIdentity:
    return BackboneIdentity(source.name, sha256, source.init_seed if source.name == RANDOM_INIT else None)


class Backbone:
    """A VGG16 backbone known by its identity; the network itself is built on first use.

    A warm head-mode retrain (every feature cached) and a prediction from cached features only
    need the identity (the feature-cache key), so they never pay for building the network.
    Whenever it is built, its sha256 is checked against the identity: a mismatch is an error.
    """

    def __init__(
        self, source: BackboneSource, identity: BackboneIdentity, *, fingerprint_dir: str | os.PathLike[str] | None
    ) -> None:
        self.source = source
        self.identity = identity
        self.fingerprint_dir = fingerprint_dir

    @property
    def built(self) -> bool:
        return self.source in _cache

    def build(self) -> VGG:
        """The frozen, shared VGG16 (deep-copy it before training any of it)."""
        model, found = _build(self.source)
        if found.sha256 != self.identity.sha256:
            where = ""
            if self.fingerprint_dir is not None:
                # The entry that named the wrong sha256 is corrected for the next run.
                write_fingerprint(self.fingerprint_dir, self.source, found.sha256)
                where = f" (the fingerprint in {fingerprint_path(self.fingerprint_dir, self.source)} is now corrected)"
            raise WeightsFileError(
                f"the {self.identity.name} backbone here (sha256 {found.sha256[:12]}) differs from the one the "
                f"model was trained on (sha256 {self.identity.sha256[:12]}){where}: predictions would not "
                f"reproduce training; check the weights file or the torch version"
            )
        return model


def _known_sha256(source: BackboneSource, fingerprint_dir: str | os.PathLike[str] | None) -> str | None:
    """The backbone's sha256 without building it, if this process or `fingerprint_dir` knows it.
    A fingerprint this process computed is written to `fingerprint_dir` when missing there (or
    corrected there when it differs)."""
    with _cache_lock:
        computed = _computed.get(source)
        if fingerprint_dir is None:
            return computed or _read.get(source)
        on_disk = read_fingerprint(fingerprint_dir, source)
        if computed is not None:
            if on_disk != computed:
                if on_disk is not None:
                    logger.warning(
                        "backbone fingerprint %s named sha256 %s, but the backbone built here has %s: corrected",
                        fingerprint_path(fingerprint_dir, source),
                        on_disk[:12],
                        computed[:12],
                    )
                write_fingerprint(fingerprint_dir, source, computed)
            return computed
        if on_disk is not None:
            _read[source] = on_disk
            return on_disk
        return _read.get(source)


def _open(source: BackboneSource, fingerprint_dir: str | os.PathLike[str] | None) -> Backbone:
    sha = _known_sha256(source, fingerprint_dir)
    if sha is None:
        _, identity = _build(source)
        if fingerprint_dir is not None:
            write_fingerprint(fingerprint_dir, source, identity.sha256)
        return Backbone(source, identity, fingerprint_dir=fingerprint_dir)
    return Backbone(source, _identity(source, sha), fingerprint_dir=fingerprint_dir)


def open_backbone(
    *, init_seed: int = 0, allow_download: bool = True, fingerprint_dir: str | os.PathLike[str] | None = None
) -> Backbone:
    """The VGG16 to build on: ImageNet weights when they can be found (or downloaded), else a
    random initialisation from `init_seed`, with a warning. Its identity comes from the
    fingerprints in `fingerprint_dir` (the feature cache folder) when they know it; the network
    is built only then when something needs it (`Backbone.build()`)."""
    path = imagenet_weights_path()
    if path is None and allow_download:
        path = download_imagenet_weights()
    if path is not None:
        return _open(BackboneSource(IMAGENET, path=path), fingerprint_dir)
    logger.warning(
        "VGG16 ImageNet weights not found (set PAINSITE_VGG16_WEIGHTS or put %s under "
        "$TORCH_HOME/hub/checkpoints): using a RANDOM-INIT backbone (seed %d); "
        "its features are far weaker than ImageNet's",
        WEIGHTS_FILENAME,
        init_seed,
    )
    return _open(BackboneSource(RANDOM_INIT, init_seed=int(init_seed)), fingerprint_dir)


def load_backbone(*, init_seed: int = 0, allow_download: bool = True) -> tuple[VGG, BackboneIdentity]:
    """`open_backbone`, built at once: the shared, frozen VGG16 and its identity."""
    backbone = open_backbone(init_seed=init_seed, allow_download=allow_download)
    return backbone.build(), backbone.identity


def backbone_for_identity(
    identity: BackboneIdentity, *, fingerprint_dir: str | os.PathLike[str] | None = None
) -> Backbone:
    """The backbone a model was trained on, checked against what this machine has: from a known
    fingerprint when there is one, else by building it. Fails saying why."""
    if identity.name == IMAGENET:
        path = imagenet_weights_path() or download_imagenet_weights()
        if path is None:
            raise WeightsFileError(
                f"this model was trained on the VGG16 ImageNet weights, which are not available here "
                f"(set PAINSITE_VGG16_WEIGHTS or put {WEIGHTS_FILENAME} under $TORCH_HOME/hub/checkpoints)"
            )
        source = BackboneSource(IMAGENET, path=path)
    elif identity.name == RANDOM_INIT:
        source = BackboneSource(RANDOM_INIT, init_seed=int(identity.init_seed or 0))
    else:
        raise WeightsFileError(f"unknown backbone {identity.name!r}; valid options: {IMAGENET}, {RANDOM_INIT}")
    found = _open(source, fingerprint_dir)
    if found.identity.sha256 != identity.sha256:
        raise WeightsFileError(
            f"the {identity.name} backbone here (sha256 {found.identity.sha256[:12]}) differs from the one the "
            f"model was trained on (sha256 {identity.sha256[:12]}): predictions would not reproduce "
            f"training; check the weights file or the torch version"
        )
    return found


def backbone_from_identity(identity: BackboneIdentity) -> VGG:
    """Rebuild exactly the backbone a model was trained on, or fail saying why."""
    return backbone_for_identity(identity).build()
