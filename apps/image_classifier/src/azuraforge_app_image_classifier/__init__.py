"""AzuraForge's image classifier plugin: a CNN for grayscale digit images.

Registered as the `image_classifier` pipeline in the `azuraforge.pipelines` entry-point group.
"""

from .data import (
    DatasetError,
    ImageDataset,
    download_mnist,
    load_digits_8x8,
    load_image_folder,
    load_mnist_5k,
    load_mnist_idx,
    read_idx,
    write_idx,
)
from .model import ImageSizeError, predict_images
from .pipeline import ImageClassifier, ImageClassifierConfig

__all__ = [
    "DatasetError",
    "ImageClassifier",
    "ImageClassifierConfig",
    "ImageDataset",
    "ImageSizeError",
    "download_mnist",
    "load_digits_8x8",
    "load_image_folder",
    "load_mnist_5k",
    "load_mnist_idx",
    "predict_images",
    "read_idx",
    "write_idx",
]
