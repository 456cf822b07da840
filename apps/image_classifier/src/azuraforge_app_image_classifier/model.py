"""The network, the preprocessing stored with it, and prediction on raw images."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from azuraforge_learner import (
    Conv2D,
    Dropout,
    Flatten,
    Linear,
    MaxPool2D,
    Module,
    ReLU,
    Sequential,
    load_model,
)

from .data import DatasetError, ImageSizeError, read_images_file

__all__ = [
    "ImageSizeError",
    "build_cnn",
    "feature_size",
    "predict_images",
    "preprocess",
    "softmax",
]


def feature_size(image_size: tuple[int, int], blocks: int) -> tuple[int, int]:
    """Spatial size after `blocks` conv (same padding) + 2x2 max-pool blocks."""
    h, w = image_size
    for _ in range(blocks):
        h, w = h // 2, w // 2
    return h, w


def build_cnn(
    image_size: tuple[int, int],
    num_classes: int,
    channels: Sequence[int],
    hidden_units: int,
    dropout: float,
) -> Sequential:
    """Blocks of 3x3 conv (same padding) -> ReLU -> 2x2 max-pool, then a hidden dense layer
    with dropout and the class logits."""
    h, w = feature_size(image_size, len(channels))
    if h < 1 or w < 1:
        raise ValueError(
            f"{len(channels)} convolution blocks halve a {image_size[0]}x{image_size[1]} image "
            "to nothing; use fewer conv_channels entries"
        )
    layers: list[Module] = []
    c_in = 1
    for c_out in channels:
        layers += [Conv2D(c_in, c_out, 3, padding=1), ReLU(), MaxPool2D(2)]
        c_in = c_out
    layers += [Flatten(), Linear(c_in * h * w, hidden_units), ReLU()]
    if dropout > 0:
        layers.append(Dropout(dropout))
    layers.append(Linear(hidden_units, num_classes))
    return Sequential(*layers)


def preprocess(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """uint8-range pixels (N, H, W) -> float32 (N, 1, H, W), standardised with the training
    set's pixel mean and std (both on the 0-1 scale)."""
    x = np.asarray(images, dtype=np.float32) / np.float32(255.0)
    return ((x - np.float32(mean)) / np.float32(std))[:, None, :, :]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _as_image_batch(images: Any, size: tuple[int, int]) -> np.ndarray:
    """Raw input -> float64 (N, H, W) with checks: one image (H, W) or a batch (N, H, W), or
    (N, H*W) flat rows; pixels 0-255."""
    try:
        arr = np.asarray(images, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ImageSizeError(
            f"images must be numbers: nested lists or an array of {size[0]}x{size[1]} "
            f"grayscale images ({exc})"
        ) from None
    h, w = size
    if arr.ndim == 2 and arr.shape == (h, w):
        arr = arr[None]
    elif arr.ndim == 2 and arr.shape[1] == h * w:
        arr = arr.reshape(-1, h, w)
    elif arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3 or arr.shape[1:] != (h, w):
        raise ImageSizeError(
            f"wrong image size: this model takes {h}x{w} grayscale images (one {h}x{w} array, "
            f"a batch (N, {h}, {w}) or flat rows of {h * w} pixels), got an array of shape "
            f"{arr.shape}"
        )
    if arr.size and not np.all(np.isfinite(arr)):
        raise ImageSizeError("images contain NaN or infinite pixel values")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ImageSizeError(
            f"pixels must be in 0-255, got values from {arr.min():g} to {arr.max():g}"
        )
    return arr


def predict_images(
    model_path: str | os.PathLike[str], images: Any, model: Any = None, metadata: Any = None
) -> list[dict[str, Any]]:
    """Classify RAW grayscale images (0-255 pixels) with a model saved by the pipeline:
    nested lists or arrays, or the path of an image file, an IDX file or a zip of images.

    Returns one `{"label", "class_index", "probabilities"}` per image, the probabilities keyed
    by class name.
    """
    if model is None or metadata is None:
        model, metadata = load_model(Path(model_path), with_metadata=True)
    try:
        size = (int(metadata["image_size"][0]), int(metadata["image_size"][1]))
        names = [str(n) for n in metadata["class_names"]]
        norm = metadata["normalization"]
        mean, std = float(norm["mean"]), float(norm["std"])
    except (KeyError, TypeError, IndexError, ValueError):
        raise DatasetError(
            f"{Path(model_path).name}: not an image_classifier model (its metadata lacks image_size, "
            "class_names or normalization)"
        ) from None
    if isinstance(images, os.PathLike):  # an uploaded file: PNG, IDX or zip of PNGs
        images = read_images_file(images, image_size=size)[0]
    elif isinstance(images, str):  # JSON from a client never names a file on the server
        raise ImageSizeError("images must be pixel arrays; give a file as a Path (an upload)")
    batch = _as_image_batch(images, size)
    if len(batch) == 0:
        return []
    from azuraforge_core import Tensor, no_grad

    model.eval()
    x = preprocess(batch, mean, std)
    outs = []
    with no_grad():
        for start in range(0, len(x), 256):
            outs.append(model(Tensor(x[start : start + 256])).numpy())
    probs = softmax(np.concatenate(outs).astype(np.float64))
    results = []
    for row in probs:
        k = int(row.argmax())
        results.append(
            {
                "label": names[k],
                "class_index": k,
                "probabilities": {n: float(p) for n, p in zip(names, row, strict=True)},
            }
        )
    return results
