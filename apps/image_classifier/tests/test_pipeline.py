"""The image_classifier pipeline end to end: training, reporting, artifacts, predict."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from azuraforge_app_image_classifier import (
    DatasetError,
    ImageClassifier,
    ImageSizeError,
    load_digits_8x8,
    load_mnist_5k,
    write_idx,
)
from PIL import Image

from azuraforge_learner import read_metadata
from azuraforge_pipeline import (
    Cancelled,
    ConfigError,
    RecordingReporter,
    RunContext,
    applies_when_problems,
    discover,
)

# Small and quick: enough to exercise every step, not to reach full accuracy.
TINY = {"conv_channels": [8], "hidden_units": 32, "epochs": 2, "max_samples": 400}


def _run(tmp_path: Path, **overrides: Any) -> tuple[dict[str, Any], RecordingReporter, Path]:
    reporter = RecordingReporter()
    context = RunContext(artifact_dir=tmp_path / "artifacts", reporter=reporter, seed=0)
    config = ImageClassifier.validate_config(overrides)
    result = ImageClassifier().run(config, context)
    json.dumps(result)  # the platform stores the summary as JSON
    return result, reporter, context.artifact_dir


def _epoch_metrics(reporter: RecordingReporter) -> list[dict[str, float]]:
    return [values for values, _, epoch in reporter.metric_points if "val_loss" in values]


def test_mnist_subset_end_to_end(tmp_path: Path) -> None:
    result, reporter, artifacts = _run(tmp_path, **TINY)
    # metrics every epoch, in order, with the keys a dashboard charts
    per_epoch = _epoch_metrics(reporter)
    assert len(per_epoch) == 2
    for values in per_epoch:
        assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(values)
    assert [e for v, _, e in reporter.metric_points if "val_loss" in v] == [1, 2]
    assert any(p["epoch"] == 2 and p["total_epochs"] == 2 for p in reporter.progress_updates)
    assert any(p["step"] is not None for p in reporter.progress_updates)
    # results
    assert result["dataset"] == "mnist_5k" and result["image_size"] == [28, 28]
    assert result["train_size"] + result["val_size"] + result["test_size"] <= 400
    assert 0.0 <= result["accuracy"] <= 1.0
    assert set(result["baselines"]) == {"majority_class", "nearest_centroid", "logistic_regression"}
    assert result["baselines"]["majority_class"] < 0.2
    names = {path for path, _, _ in reporter.artifacts}
    expected = {
        "model.safetensors", "metrics.json", "confusion_matrix.json", "history.json",
        "training_curves.png", "confusion_matrix.png", "misclassified.png", "report.md",
    }  # fmt: skip
    assert expected <= names
    for name in expected:
        assert (artifacts / name).stat().st_size > 0
    for png in ("training_curves.png", "confusion_matrix.png", "misclassified.png"):
        assert (artifacts / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cm = json.loads((artifacts / "confusion_matrix.json").read_text())
    assert cm["labels"] == [str(d) for d in range(10)]
    assert np.asarray(cm["matrix"]).sum() == result["test_size"]
    events = dict(reporter.events)
    assert events["confusion_matrix"] == cm
    assert len(events["classification_report"]["per_class"]) == 10
    report = (artifacts / "report.md").read_text()
    assert "majority class" in report and "CNN" in report
    # the saved model carries its preprocessing
    meta = read_metadata(artifacts / "model.safetensors")
    assert meta["image_size"] == [28, 28] and meta["class_names"] == cm["labels"]
    assert set(meta["normalization"]) >= {"mean", "std"}


def test_model_learns_8x8_digits_and_predicts_raw_images(tmp_path: Path) -> None:
    result, _, artifacts = _run(tmp_path, dataset="digits_8x8", epochs=12)
    # chance is 10%; a linear model gets about 95%
    assert result["accuracy"] > 0.9, result
    assert result["accuracy"] > result["baselines"]["nearest_centroid"]
    assert result["beats_baselines"] == (result["accuracy"] > max(result["baselines"].values()))
    digits = load_digits_8x8()
    model = artifacts / "model.safetensors"
    raw = digits.images[:200]  # uint8, 0-255, exactly as a user would send them
    out = ImageClassifier.predict(model, raw)
    assert len(out) == 200
    labels = np.array([int(o["label"]) for o in out])
    assert np.mean(labels == digits.labels[:200]) > 0.9
    first = out[0]
    assert set(first) == {"label", "class_index", "probabilities"}
    assert pytest.approx(sum(first["probabilities"].values()), abs=1e-6) == 1.0
    assert first["label"] == max(first["probabilities"], key=first["probabilities"].get)
    # nested lists and a single image work too
    single = ImageClassifier.predict(model, digits.images[3].tolist())
    assert single[0]["label"] == out[3]["label"]


def test_predict_on_raw_28x28_and_wrong_sizes(tmp_path: Path) -> None:
    _, _, artifacts = _run(tmp_path, **TINY)
    model = artifacts / "model.safetensors"
    mnist = load_mnist_5k()
    batch = mnist.images[:5]
    out = ImageClassifier.predict(model, batch)
    assert [o["label"] for o in out] == [
        o["label"] for o in ImageClassifier.predict(model, batch.astype(np.float64).tolist())
    ]
    flat = ImageClassifier.predict(model, batch.reshape(5, 784))
    assert [o["label"] for o in flat] == [o["label"] for o in out]
    with pytest.raises(ImageSizeError, match="wrong image size: this model takes 28x28"):
        ImageClassifier.predict(model, np.zeros((2, 8, 8)))
    with pytest.raises(ImageSizeError, match="pixels must be in 0-255"):
        ImageClassifier.predict(model, np.full((28, 28), 300.0))
    with pytest.raises(ImageSizeError, match="must be numbers"):
        ImageClassifier.predict(model, [["a"] * 28] * 28)
    assert ImageClassifier.predict(model, np.zeros((0, 28, 28))) == []
    # files, as the API passes an upload: one PNG, an IDX file, a zip of PNGs
    labels = [o["label"] for o in out]
    Image.fromarray(batch[0], mode="L").save(tmp_path / "one.png")
    assert ImageClassifier.predict(model, tmp_path / "one.png")[0]["label"] == labels[0]
    # a string is data, never a file name: a client's JSON cannot make the server read a file
    with pytest.raises(ImageSizeError, match="must be pixel arrays"):
        ImageClassifier.predict(model, str(tmp_path / "one.png"))
    write_idx(tmp_path / "five.idx3-ubyte.gz", batch, compress=True)
    from_idx = ImageClassifier.predict(model, tmp_path / "five.idx3-ubyte.gz")
    assert [o["label"] for o in from_idx] == labels
    with zipfile.ZipFile(tmp_path / "pngs.zip", "w") as zf:
        for i, img in enumerate(batch):
            buf = io.BytesIO()
            Image.fromarray(img, mode="L").save(buf, format="PNG")
            zf.writestr(f"digits/{i}.png", buf.getvalue())
    assert [o["label"] for o in ImageClassifier.predict(model, tmp_path / "pngs.zip")] == labels
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match=r"notes\.txt: not an image") as err:
        ImageClassifier.predict(model, tmp_path / "notes.txt")
    assert str(tmp_path) not in str(err.value)  # named, not located
    assert isinstance(ImageSizeError("x"), ValueError)


def test_cancellation_stops_within_an_epoch(tmp_path: Path) -> None:
    calls = {"n": 0}

    def stop_after_a_few() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    reporter = RecordingReporter()
    context = RunContext(
        artifact_dir=tmp_path, reporter=reporter, seed=0, stop_requested=stop_after_a_few
    )
    config = ImageClassifier.validate_config({**TINY, "epochs": 5})
    with pytest.raises(Cancelled):
        ImageClassifier().run(config, context)
    assert _epoch_metrics(reporter) == []  # stopped inside the first epoch
    assert not (tmp_path / "model.safetensors").exists()


def test_resumes_from_checkpoint_of_a_retried_run(tmp_path: Path) -> None:
    """A run cancelled during epoch 2 and retried with the same directories continues at
    epoch 2 and ends exactly where an uninterrupted run ends."""
    config = ImageClassifier.validate_config({**TINY, "epochs": 3})
    straight, probe, _ = _run(tmp_path / "straight", **{**TINY, "epochs": 3})
    steps = max(p["total_steps"] or 0 for p in probe.progress_updates)
    calls = {"n": 0}

    def stop_in_second_epoch() -> bool:
        # should_stop runs once per batch and once after each epoch
        calls["n"] += 1
        return calls["n"] > steps + 1

    first = RecordingReporter()
    ctx1 = RunContext(
        artifact_dir=tmp_path / "retry", reporter=first, seed=0,
        stop_requested=stop_in_second_epoch,
    )  # fmt: skip
    with pytest.raises(Cancelled):
        ImageClassifier().run(config, ctx1)
    assert [e for v, _, e in first.metric_points if "val_loss" in v] == [1]
    second = RecordingReporter()
    ctx2 = RunContext(artifact_dir=tmp_path / "retry", reporter=second, seed=0, attempt=2)
    resumed = ImageClassifier().run(config, ctx2)
    assert [e for v, _, e in second.metric_points if "val_loss" in v] == [2, 3]
    assert any("resumed" in msg for _, msg in second.logs)
    assert resumed["epochs_trained"] == 3
    assert resumed["test_loss"] == pytest.approx(straight["test_loss"], rel=1e-6)
    assert resumed["accuracy"] == straight["accuracy"]


def test_same_seed_same_result(tmp_path: Path) -> None:
    a, _, _ = _run(tmp_path / "a", **TINY)
    b, _, _ = _run(tmp_path / "b", **TINY)
    c, _, _ = _run(tmp_path / "c", **{**TINY, "seed": 1})
    assert a["test_loss"] == b["test_loss"]
    assert a["test_loss"] != c["test_loss"]


def test_image_folder_end_to_end(tmp_path: Path) -> None:
    # Two visually distinct classes of 12x12 PNGs: bright square top-left vs bottom-right.
    rng = np.random.default_rng(0)
    root = tmp_path / "shapes"
    for name, (r, c) in {"top": (1, 1), "bottom": (6, 6)}.items():
        (root / name).mkdir(parents=True)
        for i in range(20):
            img = rng.integers(0, 40, size=(12, 12)).astype(np.uint8)
            img[r : r + 5, c : c + 5] = 255
            Image.fromarray(img, mode="L").save(root / name / f"{i}.png")
    result, _, artifacts = _run(
        tmp_path, dataset="image_folder", data_path=str(root), epochs=8, conv_channels=[4],
        hidden_units=16, augment=False, batch_size=8,
    )  # fmt: skip
    assert result["class_names"] == ["bottom", "top"] and result["image_size"] == [12, 12]
    assert result["accuracy"] == 1.0
    # the same folder as a zip (how an upload arrives) gives the same run
    archive = shutil.make_archive(str(tmp_path / "shapes"), "zip", tmp_path, "shapes")
    zipped, _, _ = _run(
        tmp_path / "z", dataset="image_folder", data_path=archive, epochs=8, conv_channels=[4],
        hidden_units=16, augment=False, batch_size=8,
    )  # fmt: skip
    assert zipped["test_loss"] == result["test_loss"]
    probe = np.zeros((12, 12))
    probe[1:6, 1:6] = 255
    assert ImageClassifier.predict(artifacts / "model.safetensors", probe)[0]["label"] == "top"


def test_mnist_idx_end_to_end(tmp_path: Path) -> None:
    mnist = load_mnist_5k()
    folder = tmp_path / "idx"
    folder.mkdir()
    pick = np.random.default_rng(0).permutation(len(mnist))[:300]  # the file is sorted by class
    write_idx(folder / "train-images-idx3-ubyte.gz", mnist.images[pick], compress=True)
    write_idx(folder / "train-labels-idx1-ubyte.gz", mnist.labels[pick].astype(np.uint8), True)
    result, _, _ = _run(
        tmp_path, dataset="mnist_idx", data_path=str(folder), epochs=1, conv_channels=[4],
        hidden_units=16,
    )  # fmt: skip
    assert result["dataset"] == "mnist_idx"
    assert result["train_size"] + result["val_size"] + result["test_size"] == 300


def test_bad_data_gives_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte").write_bytes(b"\x12\x34\x08\x03rubbish")
    (folder / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte: not an IDX file"):
        _run(tmp_path, dataset="mnist_idx", data_path=str(folder))
    with pytest.raises(DatasetError, match=r"does not exist.*download=true"):
        _run(tmp_path, dataset="mnist_idx", data_path=str(tmp_path / "nothing"))
    with pytest.raises(DatasetError, match="does not exist"):
        _run(tmp_path, dataset="image_folder", data_path=str(tmp_path / "nothing"))


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"epochs": 0}, "epochs"),
        ({"dataset": "cifar"}, "dataset"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"dropout": 1.5}, "dropout"),
        ({"conv_channels": []}, "conv_channels"),
        ({"validation_fraction": 0.5, "test_fraction": 0.5}, "test_fraction"),
        ({"dataset": "image_folder"}, "data_path"),  # a cross-field rule blames its field
        ({"conv_channels": [16, 0]}, "conv_channels"),
        ({"epcohs": 3}, "epcohs"),
    ],
)
def test_config_errors_name_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        ImageClassifier.validate_config(raw)
    paths = [path or "<root>" for path, _ in err.value.errors]
    assert field in paths


def test_too_many_conv_blocks_for_8x8_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="use fewer conv_channels"):
        _run(tmp_path, dataset="digits_8x8", conv_channels=[4, 4, 4, 4], epochs=1)


def test_schema_and_defaults_for_the_dashboard() -> None:
    schema = ImageClassifier.config_schema()
    props = schema["properties"]
    for name in ("dataset", "epochs", "batch_size", "learning_rate", "optimizer",
                 "conv_channels", "dropout", "augment", "validation_fraction",
                 "test_fraction", "seed"):  # fmt: skip
        assert "title" in props[name] and "description" in props[name], name
    assert props["epochs"]["minimum"] == 1
    assert "mnist_5k" in json.dumps(props["dataset"])
    defaults = ImageClassifier.default_config()
    assert defaults["dataset"] == "mnist_5k" and defaults["augment"] is True


def test_the_form_shows_data_path_and_the_warp_only_where_they_apply() -> None:
    props = ImageClassifier.config_schema()["properties"]
    conditional = {k: v["x-applies-when"] for k, v in props.items() if "x-applies-when" in v}
    assert conditional == {
        "data_path": {"dataset": ["mnist_idx", "image_folder"]},  # the datasets that read it
        "download": {"dataset": ["mnist_idx"]},
        "max_shift": {"augment": [True]},
        "max_rotation": {"augment": [True]},
        "max_zoom": {"augment": [True]},
    }
    assert applies_when_problems(ImageClassifier.Config) == []


def test_discovered_through_the_entry_point() -> None:
    registry = discover()
    assert "image_classifier" in registry
    assert registry.get("image_classifier") is ImageClassifier
    assert registry.distribution("image_classifier") == "azuraforge-app-image-classifier"


@pytest.mark.slow
def test_default_config_reaches_97_percent_on_mnist_subset(tmp_path: Path) -> None:
    result, reporter, _ = _run(tmp_path)
    print(json.dumps({k: result[k] for k in ("accuracy", "baselines", "train_seconds")}))
    assert result["test_size"] == 1000
    assert result["accuracy"] >= 0.97, result
    assert result["accuracy"] > max(result["baselines"].values())
    assert len(_epoch_metrics(reporter)) == ImageClassifier.default_config()["epochs"]


def test_every_checkpoint_follows_a_flush_of_the_reports_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed right after a checkpoint, a run resumes after that epoch on another worker: that
    epoch's metrics must have been stored before the checkpoint was written."""
    from azuraforge_learner import Learner

    order: list[tuple[str, int]] = []

    class Buffering(RecordingReporter):
        def flush(self) -> None:
            order.append(("flush", len(self.metric_points)))

    reporter = Buffering()
    save = Learner.save_checkpoint

    def spy(self: Learner, *args: Any, **kwargs: Any) -> Any:
        order.append(("checkpoint", len(reporter.metric_points)))
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Learner, "save_checkpoint", spy)
    context = RunContext(artifact_dir=tmp_path / "a", reporter=reporter, seed=0)
    ImageClassifier().run(ImageClassifier.validate_config(TINY), context)
    checkpoints = [i for i, (what, _) in enumerate(order) if what == "checkpoint"]
    assert len(checkpoints) == TINY["epochs"]
    for i in checkpoints:
        assert order[i - 1] == ("flush", order[i][1])
