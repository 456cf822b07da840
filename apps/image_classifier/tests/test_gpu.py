"""The pipeline on a GPU worker (`AZURAFORGE_DEVICE=cuda` gives its RunContext the device):
the model trains on the GPU and learns like on the CPU. Marked `gpu`: `make test-gpu` runs it
(it fails, never skips, without CuPy and a GPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
from azuraforge_app_image_classifier import ImageClassifier

from azuraforge_pipeline import RecordingReporter, RunContext

pytestmark = pytest.mark.gpu

TINY = {"conv_channels": [8], "hidden_units": 32, "epochs": 2, "max_samples": 400}


def test_trains_on_the_device_the_platform_names(tmp_path: Path) -> None:
    results = {}
    for device in ("cpu", "cuda"):
        reporter = RecordingReporter()
        context = RunContext(
            artifact_dir=tmp_path / device, reporter=reporter, seed=0, device=device
        )
        results[device] = ImageClassifier().run(ImageClassifier.validate_config(TINY), context)
        assert (("info", "training on cuda") in reporter.logs) == (device == "cuda")
    # the same seed and data: the GPU's float32 sums differ, the learning does not
    assert abs(results["cuda"]["accuracy"] - results["cpu"]["accuracy"]) <= 0.05
