"""The `image_classifier` pipeline: a small CNN for grayscale digit images."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

import azuraforge_core as af
from azuraforge_learner import (
    SGD,
    Adam,
    AdamW,
    Callback,
    CosineAnnealingLR,
    CrossEntropyLoss,
    Learner,
    ModelFileError,
    Optimizer,
    RMSprop,
    load_checkpoint,
    save_model,
)
from azuraforge_pipeline import (
    Cancelled,
    DataPath,
    FieldError,
    Pipeline,
    PipelineConfig,
    RunContext,
    applies_when,
)

from . import report
from .data import (
    DatasetError,
    ImageDataset,
    default_cache_dir,
    describe_counts,
    download_mnist,
    extract_zip,
    load_digits_8x8,
    load_image_folder,
    load_mnist_5k,
    load_mnist_idx,
    random_affine,
    stratified_split,
    subsample,
)
from .model import build_cnn, predict_images, preprocess

__all__ = ["ImageClassifier", "ImageClassifierConfig"]

MODEL_FILE = "model.safetensors"
_CHECKPOINT = "learner.safetensors"


AUGMENTING = applies_when(augment=[True])  # the warp's settings, shown while augment is on


class ImageClassifierConfig(PipelineConfig):
    """Settings of one training run. The defaults reach about 98.5% test accuracy on the
    offline MNIST subset in about 20 s of CPU time (one core)."""

    dataset: Literal["mnist_5k", "digits_8x8", "mnist_idx", "image_folder"] = Field(
        "mnist_5k",
        title="Dataset",
        description=(
            "mnist_5k: 5,000 real MNIST digits shipped offline (default); digits_8x8: "
            "scikit-learn's 1,797 8x8 digits; mnist_idx: the MNIST IDX files in data_path "
            "(or downloaded with 'download'); image_folder: a folder of images with one "
            "subfolder per class in data_path."
        ),
    )
    data_path: DataPath | None = Field(
        None,
        title="Data folder",
        description=(
            "For mnist_idx: the folder (or a zip of it) with the IDX files (default: the "
            "download cache). For image_folder: the folder (or a zip of it) with one subfolder "
            "of images per class. On a server: an upload (`uploads/<id>.zip`) or a path in a "
            "data root."
        ),
        json_schema_extra=applies_when(dataset=["mnist_idx", "image_folder"]),
    )
    download: bool = Field(
        False,
        title="Download MNIST",
        description="mnist_idx only: download the official MNIST files when they are missing "
        "(cached on disk, fetched once).",
        json_schema_extra=applies_when(dataset=["mnist_idx"]),
    )
    max_samples: int | None = Field(
        None,
        ge=30,
        le=1_000_000,
        title="Maximum images",
        description="Use at most this many images (a stratified sample); empty means all.",
    )
    epochs: int = Field(
        30, ge=1, le=200, title="Epochs", description="Passes over the training set."
    )
    batch_size: int = Field(64, ge=4, le=2048, title="Batch size", description="Images per step.")
    learning_rate: float = Field(
        3e-3, gt=0, le=1.0, title="Learning rate", description="Initial learning rate."
    )
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = Field(
        "adamw",
        title="Optimizer",
        description="AdamW: Adam with decoupled weight decay 0.01; SGD uses momentum 0.9.",
    )
    lr_schedule: Literal["cosine", "constant"] = Field(
        "cosine",
        title="Learning-rate schedule",
        description="cosine: decay to zero over the epochs; constant: keep it fixed.",
    )
    conv_channels: list[int] = Field(
        default_factory=lambda: [6, 32],
        min_length=1,
        max_length=4,
        title="Convolution channels",
        description="Output channels of each 3x3 conv + ReLU + 2x2 max-pool block.",
    )
    hidden_units: int = Field(
        128, ge=8, le=2048, title="Hidden units", description="Width of the dense layer."
    )
    dropout: float = Field(
        0.25, ge=0.0, le=0.9, title="Dropout", description="Dropout before the output layer."
    )
    augment: bool = Field(
        True,
        title="Augmentation",
        description="Warp each training image a little (shift, rotation, zoom) every epoch.",
    )
    max_shift: float = Field(
        2.0,
        ge=0.0,
        le=8.0,
        title="Maximum shift",
        description="Largest shift in pixels for 28x28 images (augment); smaller images "
        "move proportionally less.",
        json_schema_extra=AUGMENTING,
    )
    max_rotation: float = Field(
        10.0,
        ge=0.0,
        le=45.0,
        title="Maximum rotation",
        description="Degrees (augment).",
        json_schema_extra=AUGMENTING,
    )
    max_zoom: float = Field(
        0.1,
        ge=0.0,
        le=0.5,
        title="Maximum zoom",
        description="Scale by a random factor in [1 - max_zoom, 1 + max_zoom] (augment).",
        json_schema_extra=AUGMENTING,
    )
    validation_fraction: float = Field(
        0.1,
        ge=0.02,
        le=0.5,
        title="Validation fraction",
        description="Share of each class held out to watch training.",
    )
    test_fraction: float = Field(
        0.2,
        ge=0.02,
        le=0.5,
        title="Test fraction",
        description="Share of each class held out for the final, honest evaluation.",
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, title="Seed", description="Split, init, shuffling.")
    num_threads: int = Field(
        1,
        ge=1,
        le=64,
        title="BLAS threads",
        description="Threads for matrix products; 1 is fastest for these small matrices on a "
        "busy machine.",
    )

    @model_validator(mode="after")
    def _check(self) -> ImageClassifierConfig:
        if any(c < 1 or c > 512 for c in self.conv_channels):
            raise FieldError("conv_channels", "each entry must be between 1 and 512")
        if self.validation_fraction + self.test_fraction > 0.8:
            raise FieldError(
                "test_fraction",
                "validation_fraction + test_fraction must leave at least 20% for training",
            )
        if self.dataset == "image_folder" and not self.data_path:
            raise FieldError("data_path", "data_path is required for dataset 'image_folder'")
        return self


class _Reporting(Callback):
    """Forwards training to the RunContext and stops the Learner when a cancel arrives."""

    def __init__(self, context: RunContext, total_epochs: int) -> None:
        self.context = context
        self.total_epochs = total_epochs
        self.cancelled = False

    def on_batch_end(self, logs: dict[str, Any]) -> bool | None:
        if self.context.should_stop():
            self.cancelled = True
            return True  # the Learner stops after this batch
        steps = logs["steps"] or 1
        if logs["step"] % max(1, steps // 10) == 0 or logs["step"] == steps:
            self.context.progress(
                epoch=logs["epoch"], total_epochs=self.total_epochs,
                step=logs["step"], total_steps=steps,
            )  # fmt: skip
        return None

    def on_epoch_end(self, logs: dict[str, Any]) -> None:
        m = logs.get("metrics") or {}
        values = {"loss": logs["loss"], "lr": logs["lr"]}
        if logs.get("val_loss") is not None:
            values["val_loss"] = logs["val_loss"]
        for key in ("accuracy", "val_accuracy"):
            if key in m:
                values[key] = m[key]
        self.context.log_metrics(values, epoch=logs["epoch"])
        self.context.progress(epoch=logs["epoch"], total_epochs=self.total_epochs)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items() if k != "lr")
        self.context.log(f"epoch {logs['epoch']}/{self.total_epochs}: {shown}")


def _make_optimizer(config: ImageClassifierConfig, params: Any) -> Optimizer:
    lr = config.learning_rate
    if config.optimizer == "sgd":
        return SGD(params, lr=lr, momentum=0.9)
    if config.optimizer == "adamw":
        return AdamW(params, lr=lr)
    if config.optimizer == "rmsprop":
        return RMSprop(params, lr=lr)
    return Adam(params, lr=lr)


def load_dataset(config: ImageClassifierConfig) -> ImageDataset:
    """The dataset the config names (raises DatasetError with the reason). `data_path` may
    be a folder or a zip of that folder (e.g. an upload)."""
    if config.dataset == "mnist_5k":
        return load_mnist_5k()
    if config.dataset == "digits_8x8":
        return load_digits_8x8()
    with tempfile.TemporaryDirectory(prefix="azuraforge-data-") as tmp:
        # the images are read into memory, so the unpacked copy can go afterwards
        if config.dataset == "mnist_idx":
            folder = Path(config.data_path) if config.data_path else default_cache_dir()
            if config.download:
                download_mnist(folder)
            elif not folder.exists():
                raise DatasetError(
                    f"the MNIST folder {folder.name} does not exist; set data_path to a folder "
                    "(or a zip) with the IDX files, or set download=true to fetch them"
                )
            given = folder
            if folder.is_file():
                folder = extract_zip(folder, tmp)
            data = load_mnist_idx(folder)
        else:
            assert config.data_path is not None  # the config validator requires it
            folder = given = Path(config.data_path)
            if folder.is_file():
                folder = extract_zip(folder, tmp)
            data = load_image_folder(folder)
        # the report names what the user gave (an unpacked zip lives in a temporary folder)
        return replace(data, source=f"{data.name} from {given.name}")


def _fingerprint(config: ImageClassifierConfig) -> str:
    ignore = {"num_threads"}
    text = json.dumps(config.model_dump(exclude=ignore), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ImageClassifier(Pipeline[ImageClassifierConfig]):
    """Trains a CNN on grayscale images and judges it against simple baselines."""

    id = "image_classifier"
    name = "Image Classifier"
    description = (
        "Trains a convolutional network to classify small grayscale images (handwritten "
        "digits and similar), reports accuracy, per-class precision/recall/F1 and the "
        "confusion matrix next to simple baselines, and saves a model that takes raw images."
    )
    version = "0.1.0"
    Config: ClassVar[type[PipelineConfig]] = ImageClassifierConfig

    @classmethod
    def predict(cls, model_path: str | os.PathLike[str], inputs: Any) -> list[dict[str, Any]]:
        """Classify RAW grayscale images with 0-255 pixels (28x28 for MNIST, 8x8 for the
        digits, or the training size of a folder dataset), as nested lists or arrays: one
        `{label, class_index, probabilities}` per image."""
        return predict_images(model_path, inputs)

    def run(self, config: ImageClassifierConfig, context: RunContext) -> dict[str, Any]:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=config.num_threads, user_api="blas"):
            return self._run(config, context)

    def _run(self, cfg: ImageClassifierConfig, context: RunContext) -> dict[str, Any]:
        rng = np.random.default_rng(cfg.seed)
        af.manual_seed(cfg.seed)
        context.log(f"loading dataset {cfg.dataset}")
        data = load_dataset(cfg)
        if cfg.max_samples is not None:
            data = subsample(data, cfg.max_samples, rng)
        split = stratified_split(
            data.labels, data.class_names, cfg.validation_fraction, cfg.test_fraction, rng
        )
        k = len(data.class_names)
        raw_train = data.images[split.train]
        # Normalise with the training part's statistics only (no peeking at test pixels).
        mean = float(raw_train.mean() / 255.0)
        std = float(raw_train.std() / 255.0) or 1.0
        x_train = preprocess(raw_train, mean, std)
        x_val = preprocess(data.images[split.val], mean, std)
        x_test = preprocess(data.images[split.test], mean, std)
        y_train, y_val = data.labels[split.train], data.labels[split.val]
        y_test = data.labels[split.test]
        context.log(
            f"{len(data)} images {data.image_size[0]}x{data.image_size[1]}, {k} classes; "
            f"split {len(split.train)} train / {len(split.val)} val / {len(split.test)} test"
        )
        context.emit(
            "dataset",
            {
                "name": data.name, "source": data.source, "image_size": list(data.image_size),
                "class_names": data.class_names, "train": len(split.train),
                "val": len(split.val), "test": len(split.test),
                "class_counts": describe_counts(data.labels, data.class_names),
            },
        )  # fmt: skip

        model = build_cnn(data.image_size, k, cfg.conv_channels, cfg.hidden_units, cfg.dropout)
        if context.device != "cpu":  # a GPU worker (AZURAFORGE_DEVICE=cuda): batches follow
            model.to(context.device)
            context.log(f"training on {context.device}")
        optimizer = _make_optimizer(cfg, model.named_parameters())
        scheduler = (
            CosineAnnealingLR(optimizer, cfg.epochs) if cfg.lr_schedule == "cosine" else None
        )
        reporting = _Reporting(context, cfg.epochs)
        learner = Learner(
            model, CrossEntropyLoss(), optimizer, metrics=["accuracy"],
            callbacks=[reporting], scheduler=scheduler, seed=cfg.seed,
        )  # fmt: skip
        aug_rng = np.random.default_rng(cfg.seed + 1)
        fill = float((0.0 - mean) / std)  # a blank pixel after normalisation
        # max_shift is meant for 28x28 digits; smaller images move proportionally less.
        shift = cfg.max_shift * min(data.image_size) / 28.0
        ckpt = context.checkpoint_dir / _CHECKPOINT
        fingerprint = _fingerprint(cfg)
        self._resume(learner, ckpt, fingerprint, aug_rng, context)

        t0, cpu0 = time.perf_counter(), time.process_time()
        for _epoch in range(learner.epoch + 1, cfg.epochs + 1):
            xe = x_train
            if cfg.augment:
                xe = random_affine(x_train, shift, cfg.max_rotation, cfg.max_zoom, fill, aug_rng)
            learner.fit(xe, y_train, epochs=1, batch_size=cfg.batch_size,
                        validation_data=(x_val, y_val))  # fmt: skip
            if reporting.cancelled or context.should_stop():
                context.log("cancelled: training stopped", "warning")
                raise Cancelled("the run was cancelled during training")
            context.flush()  # this epoch's reports first: a resumed run starts after it
            learner.save_checkpoint(
                ckpt, extra={"fingerprint": fingerprint, "aug_rng": aug_rng.bit_generator.state}
            )
        train_seconds = time.perf_counter() - t0
        train_cpu_seconds = time.process_time() - cpu0  # independent of other load

        # ---- honest evaluation on the held-out test part
        context.log("evaluating on the test set")
        y_pred = learner.predict(x_test).argmax(axis=1)
        evaluation = report.classification_report(y_test, y_pred, data.class_names)
        base = report.baselines(x_train, y_train, x_test, y_test, k)
        history = learner.history.to_dict()["history"]
        summary: dict[str, Any] = {
            "accuracy": evaluation["accuracy"],
            "precision_macro": evaluation["precision_macro"],
            "recall_macro": evaluation["recall_macro"],
            "f1_macro": evaluation["f1_macro"],
            "test_loss": float(learner.evaluate(x_test, y_test)["loss"]),
            "baselines": base,
            "beats_baselines": bool(evaluation["accuracy"] > max(base.values())),
            "dataset": data.name,
            "source": data.source,
            "image_size": list(data.image_size),
            "num_classes": k,
            "class_names": data.class_names,
            "train_size": len(split.train),
            "val_size": len(split.val),
            "test_size": len(split.test),
            "epochs_trained": learner.epoch,
            "train_seconds": round(train_seconds, 2),
            "train_cpu_seconds": round(train_cpu_seconds, 2),
            "model_artifact": MODEL_FILE,
        }
        if history.get("val_accuracy"):
            summary["val_accuracy"] = float(history["val_accuracy"][-1])

        # ---- events a dashboard draws
        context.emit("confusion_matrix", evaluation["confusion_matrix"])
        context.emit(
            "classification_report",
            {
                "accuracy": evaluation["accuracy"], "per_class": evaluation["per_class"],
                "baselines": base,
            },
        )  # fmt: skip
        context.log_metrics(
            {"test_accuracy": evaluation["accuracy"], "test_f1_macro": evaluation["f1_macro"],
             **{f"baseline_{name}": acc for name, acc in base.items()}},
            epoch=learner.epoch,
        )  # fmt: skip

        # ---- artifacts
        metadata = {
            "pipeline": self.id,
            "pipeline_version": self.version,
            "image_size": list(data.image_size),
            "class_names": data.class_names,
            "normalization": {"pixel_scale": 255.0, "mean": mean, "std": std},
            "input": "raw grayscale images, pixels 0-255, shape (H, W) or (N, H, W)",
            "dataset": data.name,
            "test_accuracy": evaluation["accuracy"],
        }
        model_path = context.artifact_path(MODEL_FILE)
        save_model(learner.model, model_path, metadata=metadata)
        context.save_artifact(MODEL_FILE, model_path, kind="model")
        ckpt.unlink(missing_ok=True)  # only a retry of an unfinished run needs it
        context.save_artifact("metrics.json", {**summary, "per_class": evaluation["per_class"]})
        context.save_artifact("confusion_matrix.json", evaluation["confusion_matrix"])
        context.save_artifact("history.json", history)
        context.save_artifact("config.json", cfg.model_dump())
        cm = np.asarray(evaluation["confusion_matrix"]["matrix"])
        plots = {
            "training_curves.png": lambda p: report.plot_curves(history, p),
            "confusion_matrix.png": lambda p: report.plot_confusion_matrix(cm, data.class_names, p),
            "misclassified.png": lambda p: report.plot_misclassified(
                data.images[split.test], y_test, y_pred, data.class_names, p
            ),
        }
        for name, draw in plots.items():
            path = context.artifact_path(name)
            draw(path)
            context.save_artifact(name, path, kind="image")
        context.save_artifact(
            "report.md", report.markdown_report(summary, evaluation, cfg.model_dump())
        )
        context.log(
            f"test accuracy {evaluation['accuracy']:.4f} (baselines: "
            + ", ".join(f"{n} {a:.4f}" for n, a in base.items())
            + f"); trained {learner.epoch} epochs in {train_seconds:.1f} s"
        )
        return summary

    @staticmethod
    def _resume(
        learner: Learner,
        ckpt: Path,
        fingerprint: str,
        aug_rng: np.random.Generator,
        context: RunContext,
    ) -> None:
        """Continue a retried run from its last completed epoch, if it saved one."""
        if not ckpt.is_file():
            return
        try:
            saved = load_checkpoint(ckpt)  # read first: only a matching run may resume
            if (saved.get("extra") or {}).get("fingerprint") != fingerprint:
                context.log("ignoring a checkpoint written by another config", "warning")
                return
            info = learner.load_checkpoint(ckpt)
        except (ModelFileError, KeyError, ValueError) as exc:
            context.log(
                f"ignoring an unusable checkpoint ({exc}); training from scratch", "warning"
            )
            return
        extra = info.get("extra") or {}
        if "aug_rng" in extra:
            aug_rng.bit_generator.state = extra["aug_rng"]
        context.log(f"resumed from the checkpoint after epoch {learner.epoch}")
