"""save_model/load_model and checkpoints: round trips, metadata, and rejection of wrong,
truncated or corrupt files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from azuraforge_core import Tensor
from azuraforge_learner import Module, Parameter, Sequential
from azuraforge_learner.data import StandardScaler, scaler_from_state
from azuraforge_learner.optim import Adam
from azuraforge_learner.schedulers import StepLR
from azuraforge_learner.serialization import (
    ModelFileError,
    load_checkpoint,
    load_model,
    read_architecture,
    read_metadata,
    save_checkpoint,
    save_model,
)


class SerNet(Module):
    """x @ w + b, with an integer buffer (like BatchNorm's counter)."""

    def __init__(self, n_in: int = 3, n_out: int = 2) -> None:
        super().__init__()
        self.n_in, self.n_out = n_in, n_out
        rng = np.random.default_rng(n_in * 10 + n_out)
        self.w = Parameter(rng.normal(size=(n_in, n_out)))
        self.b = Parameter(rng.normal(size=n_out))
        self.register_buffer("count", Tensor(np.array(7, dtype=np.int64)))

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.w + self.b

    def get_config(self) -> dict:
        return {"n_in": self.n_in, "n_out": self.n_out}


def net() -> Sequential:
    m = Sequential(SerNet(3, 4), SerNet(4, 2))
    m[0].w.data += 1.0  # differs from a freshly built one
    return m


def test_model_round_trip_with_metadata(tmp_path: Path) -> None:
    model = net()
    scaler = StandardScaler().fit(np.random.default_rng(0).normal(size=(20, 3)))
    meta = {"features": ["a", "b", "c"], "classes": ["x", "y"], "scaler": scaler.get_state()}
    path = save_model(model, tmp_path / "m.safetensors", metadata=meta)
    loaded, got_meta = load_model(path, with_metadata=True)
    assert isinstance(loaded, Sequential) and not loaded.training
    x = Tensor(np.random.default_rng(1).normal(size=(5, 3)))
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[k], v)
        assert loaded.state_dict()[k].dtype == v.dtype
    assert got_meta["features"] == ["a", "b", "c"]
    s2 = scaler_from_state(got_meta["scaler"])
    np.testing.assert_allclose(s2.mean, scaler.mean)
    assert read_metadata(path) == got_meta
    assert read_architecture(path) == model.describe()


def test_file_is_plain_safetensors_with_json_header(tmp_path: Path) -> None:
    from safetensors import safe_open

    path = save_model(net(), tmp_path / "m.safetensors", metadata={"k": 1})
    with safe_open(str(path), framework="np") as f:
        keys = set(f.keys())
        header = f.metadata()
    assert keys == {"0.w", "0.b", "0.count", "1.w", "1.b", "1.count"}
    assert header["format"] == "azuraforge.model"
    assert json.loads(header["architecture"])["type"] == "Sequential"
    assert json.loads(header["metadata"]) == {"k": 1}
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def _rewrite_header(path: Path, change) -> None:
    from safetensors.numpy import load_file, save_file

    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        meta = json.loads(f.read(n))["__metadata__"]
    tensors = load_file(str(path))
    change(meta)
    save_file(tensors, str(path), metadata=meta)


def test_shapes_not_matching_the_description_are_rejected(tmp_path: Path) -> None:
    path = save_model(net(), tmp_path / "m.safetensors")

    def shrink(meta: dict) -> None:
        arch = json.loads(meta["architecture"])
        arch["config"]["layers"][1]["config"]["n_in"] = 5
        meta["architecture"] = json.dumps(arch)

    _rewrite_header(path, shrink)
    with pytest.raises(ModelFileError, match=r"do not match the model architecture.*1\.w"):
        load_model(path)


def test_unknown_module_type_is_rejected_without_importing(tmp_path: Path) -> None:
    path = save_model(net(), tmp_path / "m.safetensors")

    def evil(meta: dict) -> None:
        meta["architecture"] = json.dumps({"type": "os.system", "config": {}})

    _rewrite_header(path, evil)
    with pytest.raises(ModelFileError, match=r"unknown module type 'os\.system'"):
        load_model(path)


def test_truncated_file_is_rejected(tmp_path: Path) -> None:
    path = save_model(net(), tmp_path / "m.safetensors")
    data = path.read_bytes()
    for cut in (len(data) - 5, 100, 4):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match=r"truncated|corrupt"):
            load_model(bad)


def test_corrupt_data_and_header_are_rejected(tmp_path: Path) -> None:
    path = save_model(net(), tmp_path / "m.safetensors")
    data = bytearray(path.read_bytes())
    flipped = bytearray(data)
    flipped[-3] ^= 0xFF  # a bit flip inside the weights: caught by the checksum
    bad = tmp_path / "flip.safetensors"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(bad)
    header = bytearray(data)
    header[10] = ord("{") if header[10] != ord("{") else ord("[")
    bad.write_bytes(bytes(header))
    with pytest.raises(ModelFileError, match=r"corrupt|not a JSON object"):
        load_model(bad)
    other = tmp_path / "foreign.safetensors"
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(2, np.float32)}, str(other))
    with pytest.raises(ModelFileError, match="format marker"):
        load_model(other)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.safetensors")


def test_metadata_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="JSON"):
        save_model(net(), tmp_path / "m.safetensors", metadata={"a": np.zeros(2)})


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    model = net()
    opt = Adam(model.named_parameters(), lr=0.01)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    x = Tensor(np.random.default_rng(2).normal(size=(8, 3)))
    for _ in range(3):
        loss = (model(x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    rng = np.random.default_rng(5)
    rng.random(3)
    path = save_checkpoint(
        tmp_path / "c.safetensors", model, opt, sched, epoch=3,
        rng_state={"shuffle": rng.bit_generator.state}, extra={"note": "hi"}, metadata={"m": 1},
    )  # fmt: skip
    fresh = Sequential(SerNet(3, 4), SerNet(4, 2))
    opt2 = Adam(fresh.named_parameters(), lr=0.5)
    sched2 = StepLR(opt2, step_size=1, gamma=0.5)
    info = load_checkpoint(path, fresh, opt2, sched2)
    assert info["epoch"] == 3 and info["extra"] == {"note": "hi"} and info["metadata"] == {"m": 1}
    assert opt2.lr == opt.lr and sched2.last_epoch == 3
    for name, st in opt.state.items():
        assert opt2.state[name]["step"] == st["step"] == 3
        np.testing.assert_array_equal(opt2.state[name]["exp_avg"], st["exp_avg"])
    r2 = np.random.default_rng()
    r2.bit_generator.state = info["rng_state"]["shuffle"]
    np.testing.assert_array_equal(r2.random(4), rng.random(4))
    # a checkpoint holds a loadable model; a model file is not a checkpoint
    np.testing.assert_array_equal(load_model(path)(x).numpy(), model(x).numpy())
    built = load_checkpoint(path)["model"]
    np.testing.assert_array_equal(built(x).numpy(), model(x).numpy())
    mpath = save_model(model, tmp_path / "m.safetensors")
    with pytest.raises(ModelFileError, match="not a training checkpoint"):
        load_checkpoint(mpath, fresh)
