"""The Pipeline base class, config validation and RunContext, without any platform."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import numpy as np
import pytest
from pydantic import Field, model_validator

from azuraforge_pipeline import (
    Cancelled,
    ConfigError,
    FieldError,
    Pipeline,
    PipelineConfig,
    PipelineRegistry,
    RecordingReporter,
    RunContext,
    UnknownPipelineError,
    applications,
    official_catalog,
)


class Optim(StrEnum):
    sgd = "sgd"
    adam = "adam"


class Toy(Pipeline):
    id = "toy"
    name = "Toy"
    description = "fits a line"
    version = "1.2.0"

    class Config(PipelineConfig):
        epochs: int = Field(3, ge=1, le=100, description="passes over the data")
        lr: float = Field(0.1, gt=0, description="learning rate")
        optimizer: Optim = Field(Optim.adam, description="update rule")

    def run(self, config: Config, context: RunContext) -> dict[str, float]:
        loss = 1.0
        for epoch in range(1, config.epochs + 1):
            context.check_cancelled()
            loss *= 1 - config.lr
            context.progress(epoch=epoch, total_epochs=config.epochs)
            context.log_metrics({"loss": loss}, epoch=epoch)
        context.emit("prediction", {"y": context.rng.normal(size=3).tolist()})
        context.save_artifact("summary.json", {"loss": loss})
        return {"loss": loss}


def test_schema_has_titles_descriptions_bounds_and_choices() -> None:
    schema = Toy.config_schema()
    props = schema["properties"]
    assert props["epochs"]["minimum"] == 1 and props["epochs"]["maximum"] == 100
    assert props["epochs"]["description"] == "passes over the data"
    assert props["epochs"]["title"] == "Epochs"
    assert props["lr"]["exclusiveMinimum"] == 0
    enum_def = schema["$defs"]["Optim"]
    assert enum_def["enum"] == ["sgd", "adam"]
    assert Toy.default_config() == {"epochs": 3, "lr": 0.1, "optimizer": "adam"}
    described = Toy.describe()
    assert described["id"] == "toy" and described["version"] == "1.2.0"


def test_invalid_config_names_the_field() -> None:
    with pytest.raises(ConfigError) as info:
        Toy.validate_config({"epochs": 0, "lrr": 1})
    paths = [p for p, _ in info.value.errors]
    assert "epochs" in paths and "lrr" in paths
    assert "toy" in str(info.value)
    ok = Toy.validate_config({"epochs": "5", "optimizer": "sgd"})
    assert ok.epochs == 5 and ok.optimizer is Optim.sgd


def test_run_reports_through_context(tmp_path: Path) -> None:
    reporter = RecordingReporter()
    ctx = RunContext(artifact_dir=tmp_path / "a", reporter=reporter, seed=7)
    result = Toy().run(Toy.validate_config({"epochs": 2}), ctx)
    assert result == pytest.approx({"loss": 0.81})
    assert [m[0]["loss"] for m in reporter.metric_points] == pytest.approx([0.9, 0.81])
    assert [m[2] for m in reporter.metric_points] == [1, 2]
    assert reporter.progress_updates[-1]["epoch"] == 2
    assert reporter.events[0][0] == "prediction"
    expected = np.random.default_rng(7).normal(size=3).tolist()
    assert reporter.events[0][1]["y"] == expected  # seeded generator: reproducible
    assert reporter.artifacts == [
        ("summary.json", (tmp_path / "a/summary.json").stat().st_size, "json")
    ]


def test_cancellation_and_stop_callback(tmp_path: Path) -> None:
    flag = {"stop": False}
    ctx = RunContext(artifact_dir=tmp_path, stop_requested=lambda: flag["stop"])
    assert not ctx.should_stop()
    flag["stop"] = True
    with pytest.raises(Cancelled):
        Toy().run(Toy.validate_config({}), ctx)
    other = RunContext(artifact_dir=tmp_path)
    other.request_stop()
    assert other.should_stop()


def test_artifact_paths_cannot_escape(tmp_path: Path) -> None:
    ctx = RunContext(artifact_dir=tmp_path / "art")
    with pytest.raises(ValueError, match="inside artifact_dir"):
        ctx.save_artifact("../evil.txt", "x")
    path = ctx.save_artifact("plots/curve.txt", "hello")
    assert path.read_text() == "hello"


def test_checkpoint_roundtrip(tmp_path: Path) -> None:
    ctx = RunContext(artifact_dir=tmp_path)
    assert ctx.load_checkpoint() is None
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    ctx.save_checkpoint({"w": w}, {"epoch": 4})
    again = RunContext(artifact_dir=tmp_path).load_checkpoint()
    assert again is not None
    np.testing.assert_array_equal(again.arrays["w"], w)
    assert again.meta == {"epoch": 4}
    assert not list(ctx.checkpoint_dir.glob("*.tmp"))


def test_log_metrics_needs_a_position(tmp_path: Path) -> None:
    ctx = RunContext(artifact_dir=tmp_path)
    with pytest.raises(ValueError, match="step= or epoch="):
        ctx.log_metrics({"loss": 1.0})


def test_device_is_the_cpu_unless_the_platform_says_otherwise(tmp_path: Path) -> None:
    assert RunContext(artifact_dir=tmp_path).device == "cpu"
    assert RunContext(artifact_dir=tmp_path, device="CUDA:1").device == "cuda:1"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        RunContext(artifact_dir=tmp_path, device="tpu")


def test_registry_unknown_id_lists_known() -> None:
    registry = PipelineRegistry()
    registry.register(Toy)
    assert registry.get("toy") is Toy
    with pytest.raises(UnknownPipelineError, match="known pipelines: toy"):
        registry.get("tyo")


def test_catalog_merges_installed_flag() -> None:
    official = official_catalog()
    assert [e.id for e in official] == [
        "stock_predictor",
        "weather_forecaster",
        "image_classifier",
        "hyper_tuner",
    ]
    assert official[0].package == "azuraforge-app-stock-predictor"
    registry = PipelineRegistry()
    registry.register(Toy)
    rows = {row.id: row for row in applications(registry)}
    assert rows["toy"].installed and not rows["toy"].official and rows["toy"].version == "1.2.0"
    assert rows["hyper_tuner"].official and rows["hyper_tuner"].package == "azuraforge-hyper-tuner"
    assert not rows["hyper_tuner"].installed


class Ranged(Pipeline):
    id = "ranged"
    name = "Ranged"

    class Config(PipelineConfig):
        low: float = Field(0.0, description="lower end")
        high: float = Field(1.0, description="upper end")

        @model_validator(mode="after")
        def _ordered(self) -> Ranged.Config:
            if self.high <= self.low:
                raise FieldError("high", "must be greater than low")
            if self.low < -100:
                raise ValueError("the range is too wide")  # a plain rule blames the whole config
            return self

    def run(self, config: Config, context: RunContext) -> None:
        return None


def test_a_cross_field_rule_blames_the_field_it_names() -> None:
    with pytest.raises(ConfigError) as err:
        Ranged.validate_config({"low": 2.0, "high": 1.0})
    assert err.value.errors == [("high", "must be greater than low")]
    with pytest.raises(ConfigError) as err:
        Ranged.validate_config({"low": -200.0})
    assert err.value.errors == [("", "Value error, the range is too wide")]


def test_a_checkpoint_is_written_after_the_reports_before_it_are_flushed(tmp_path: Path) -> None:
    seen: list[tuple[int, bool]] = []
    ctx_holder: list[RunContext] = []

    class Buffering(RecordingReporter):
        def flush(self) -> None:  # what was reported so far, and whether the checkpoint exists
            path = ctx_holder[0].checkpoint_dir / "checkpoint.npz"
            seen.append((len(self.metric_points), path.exists()))

    ctx = RunContext(artifact_dir=tmp_path, reporter=Buffering())
    ctx_holder.append(ctx)
    ctx.log_metrics({"loss": 1.0}, epoch=1)
    ctx.save_checkpoint({"w": np.zeros(2)}, {"epoch": 1})
    assert seen == [(1, False)]  # flushed first, then written
    ctx.flush()
    assert seen[-1] == (1, True)
