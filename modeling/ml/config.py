"""Training configuration: one plain dataclass that travels in checkpoints and weights files."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from modeling.ml.levels import DEFAULT_LEVELS, PainLevels

MODES = ("head", "finetune")
OPTIMIZERS = ("adamw", "adam", "sgd")
PRECISIONS = ("auto", "float32", "bfloat16")
# Which kernels compute the frozen features in head mode (modeling/ml/feature_paths.py).
FEATURE_PATHS = ("auto", "float32", "bf16", "int8-onnxruntime")


def _check_choice(what: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid options: {', '.join(valid)}")


@dataclass
class TrainConfig:
    """Hyperparameters of one training run.

    `mode="head"` trains a small classifier on cached frozen-backbone features (the CPU default);
    `mode="finetune"` trains the last convolutional block and every fully connected layer.
    """

    mode: str = "head"
    epochs: int = 60
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 1e-2
    optimizer: str = "adamw"
    seed: int = 0
    image_size: int = 224
    patience: int = 10
    device: str = "auto"
    levels: str = DEFAULT_LEVELS
    precision: str = "auto"
    head_hidden: int = 0
    dropout: float = 0.5
    skip_unreadable: bool = False
    # Feature extraction batch (head mode): independent of the training batch, which for the
    # head is a batch of 4096-d vectors.
    extract_batch_size: int = 32
    # Processes decoding and augmenting images for fine-tuning; -1 (auto) uses one per CPU but
    # one (at most 16) on CUDA, where the GPU would otherwise wait for the CPU, and none on the
    # CPU, where they would take cores from the network. Results depend on it: each worker draws its own augmentation.
    loader_workers: int = -1
    # auto: bf16 where native, CUDA on a GPU, int8 through ONNX Runtime where a trial finds it
    # faster, else float32. An explicit path wins over `precision` for the features.
    feature_path: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.levels, PainLevels):
            self.levels = self.levels.spec
        _check_choice("mode", self.mode, MODES)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("feature path", self.feature_path, FEATURE_PATHS)
        PainLevels.parse(self.levels)
        for name in ("epochs", "batch_size", "image_size", "extract_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.image_size < 32:
            raise ValueError(f"image_size must be at least 32 pixels (VGG16 pools 5 times), got {self.image_size}")
        if self.loader_workers < -1:
            raise ValueError(f"loader_workers must be -1 (auto) or at least 0, got {self.loader_workers}")
        if self.patience < 1:
            raise ValueError(f"patience must be at least 1, got {self.patience}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def pain_levels(self) -> PainLevels:
        return PainLevels.parse(self.levels)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}; valid settings: {', '.join(sorted(known))}")
        return cls(**values)
