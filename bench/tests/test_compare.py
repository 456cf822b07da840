"""The fair harness really measures each framework in a process of its own.

These tests check how `bench/compare.py` runs its measurements, never how fast anything
is: every (framework, model, threads) job is a fresh child process (its own pid, started by
the harness), an engine child never imports torch and a torch child never imports
azuraforge, and the thread count given to the harness reaches the child's thread pools
(threadpoolctl's view from inside the child). A tiny `--steps` keeps them to seconds.

The torch side needs `.torch-venv` (`bench/setup_torch.sh`). Where it is missing, the test
checks instead that the harness says so and reports SKIP, and warns that the torch side
went untested; the engine side and the process separation are tested either way.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
COMPARE = REPO / "bench" / "compare.py"
TORCH_PY = REPO / ".torch-venv" / "bin" / "python"
THREADS = (1, 2)


def run_harness(tmp_path: Path, *extra: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / "run.json"
    cmd = [sys.executable, str(COMPARE), "--engine-python", sys.executable, "--models", "mlp"]
    cmd += ["--rounds", "1", "--steps", "2", "--warmup", "1", "--first-step-runs", "1"]
    cmd += ["--threads", *map(str, THREADS), "--json", str(out), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), proc.stdout


def blas_threads(child: dict[str, Any]) -> list[int]:
    return [p["num_threads"] for p in child["threadpools"] if p["user_api"] == "blas"]


def assert_separate_processes(doc: dict[str, Any]) -> None:
    kids = doc["children"]
    pids = [c["pid"] for c in kids]
    assert len(set(pids)) == len(pids), f"two jobs shared a process: {pids}"
    assert doc["parent_pid"] not in pids and os.getpid() not in pids
    assert all(c["ppid"] == doc["parent_pid"] for c in kids), "a child not started by the harness"
    assert not any(c["error"] for c in kids)


def test_engine_jobs_run_in_fresh_processes_without_torch(tmp_path: Path) -> None:
    doc, stdout = run_harness(tmp_path, "--no-torch")
    kids = doc["children"]
    # 1 round x 1 model x 2 thread counts x (learner, raw) + 1 first-step child
    assert len(kids) == 5
    assert_separate_processes(doc)
    for c in kids:
        assert "torch" not in c["imported"], c["imported"]
        assert "azuraforge_core" in c["imported"]
        # the learner is what a user trains with; the raw variant is the core alone
        assert ("azuraforge_learner" in c["imported"]) == (c["variant"] == "learner")
        assert c["env"] == dict.fromkeys(
            ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), str(c["threads"])
        )
        assert blas_threads(c) and set(blas_threads(c)) == {c["threads"]}
    assert {c["threads"] for c in kids if not c["first_step"]} == set(THREADS)
    # same weights and batches: the learner and the raw engine end at the same loss
    for th in THREADS:
        learner, raw = (
            next(c for c in kids if c["threads"] == th and c["job"] == k and not c["first_step"])
            for k in ("engine", "engine raw")
        )
        assert abs(learner["loss_last"] - raw["loss_last"]) < 1e-4
    assert "PyTorch: SKIP" in stdout
    # the kernels the engine ran are reported, and who chose them
    kernels = {p["architecture"] for c in kids for p in c["threadpools"] if p.get("architecture")}
    assert kernels and all(f"openblas {k}" in stdout for k in kernels)
    forced = os.environ.get("OPENBLAS_CORETYPE")
    assert (f"OPENBLAS_CORETYPE={forced} is set" in stdout) == bool(forced)
    # the host's steal time is reported, for the run and for each child
    assert "CPU time stolen by the host (hypervisor): " in stdout
    if Path("/proc/stat").exists():
        assert 0 <= doc["steal_share"] <= 1
        assert all(0 <= c["steal_share"] <= 1 for c in kids)


def test_steal_share_is_read_from_proc_stat(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import compare
    finally:
        sys.path.remove(str(REPO / "bench"))
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 0 50 800 10 0 5 35 20 0\ncpu0 50 0 25 400 5 0 2 18 10 0\n")
    before = compare._cpu_ticks(stat)
    assert before == (35, 1000)  # guest time is already counted in user
    stat.write_text("cpu  200 0 60 1500 10 0 5 225 40 0\n")
    after = compare._cpu_ticks(stat)
    assert after == (225, 2000)
    assert compare._steal_share(before, after) == 0.19
    assert compare._steal_share(None, after) is None
    assert compare._steal_share(after, after) is None  # no time passed
    stat.write_text("intr 1 2 3\n")  # not Linux's layout
    assert compare._cpu_ticks(stat) is None
    assert compare._cpu_ticks(tmp_path / "missing") is None


def test_a_forced_blas_kernel_is_named_in_the_report(tmp_path: Path) -> None:
    """OPENBLAS_CORETYPE reaches the engine's children (a user's training runs with it
    too) and the report says that the environment, not OpenBLAS, chose the kernels."""
    cmd = [sys.executable, str(COMPARE), "--engine-python", sys.executable, "--models", "mlp"]
    cmd += ["--rounds", "1", "--steps", "2", "--warmup", "1", "--first-step-runs", "0"]
    cmd += ["--threads", "1", "--no-torch", "--no-raw", "--markdown-only"]
    core = "ARMV8" if platform.machine() in ("aarch64", "arm64") else "Sandybridge"  # any AVX
    env = {**os.environ, "OPENBLAS_CORETYPE": core}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"engine BLAS kernels: openblas {core}" in proc.stdout
    assert f"OPENBLAS_CORETYPE={core} is set in this environment" in proc.stdout


def test_torch_jobs_run_in_their_own_interpreter(tmp_path: Path) -> None:
    if not TORCH_PY.exists():
        doc, stdout = run_harness(tmp_path, "--no-raw", "--torch-python", str(tmp_path / "none"))
        assert "PyTorch: SKIP" in stdout and "setup_torch.sh" in stdout
        assert {c["framework"] for c in doc["children"]} == {"engine"}
        warnings.warn(
            "no .torch-venv (bench/setup_torch.sh): the torch child went untested; only the "
            "harness's SKIP report was checked",
            stacklevel=1,
        )
        return
    doc, _ = run_harness(tmp_path, "--no-raw")
    kids = doc["children"]
    assert_separate_processes(doc)
    torch_kids = [c for c in kids if c["framework"] == "torch"]
    engine_kids = [c for c in kids if c["framework"] == "engine"]
    assert len(torch_kids) == 3 and len(engine_kids) == 3  # 2 thread counts + first step
    for c in torch_kids:
        assert c["imported"] == ["torch"], c["imported"]
        assert Path(c["python"]).parent.parent.name == ".torch-venv"
        assert c["torch_threads"] == c["threads"]
        openmp = [p["num_threads"] for p in c["threadpools"] if p["user_api"] == "openmp"]
        assert openmp and set(openmp) == {c["threads"]}
    for c in engine_kids:
        assert "torch" not in c["imported"]
    for th in THREADS:
        eng, tor = (
            next(c for c in kids if c["threads"] == th and c["job"] == k and not c["first_step"])
            for k in ("engine", "torch")
        )
        assert abs(eng["loss_first"] - tor["loss_first"]) < 1e-4
        assert abs(eng["loss_last"] - tor["loss_last"]) < 1e-3
