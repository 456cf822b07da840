"""The engine against PyTorch, fairly: every measurement in a fresh process of its own.

    uv run python bench/compare.py                       # 3 models x {2, 1} threads, 5 rounds
    uv run python bench/compare.py --rounds 9 --threads 2
    uv run python bench/compare.py --models cnn --rounds 1 --first-step-runs 0
    uv run python bench/compare.py --markdown-only       # just the table, for the README

Each (framework, variant, model, threads) measurement is one child process (`child.py`):

* engine children run with the project's `.venv` python and never import torch; torch
  children run with `.torch-venv`'s python (`bench/setup_torch.sh`), where azuraforge is not
  installed. In one process, numpy's OpenBLAS threads and torch's OpenMP threads spin
  against each other on a small machine and torch collapses: that was the old harness's error.
* OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS are set in the child's
  environment before it starts; a torch child also calls torch.set_num_threads.
* The frameworks take turns (engine, torch, engine raw, engine, torch, ...) over `--rounds`
  rounds, so a burst of load from other processes hits all of them. Ratios are the median
  of the per-round ratios (each pair ran back to back).
* All children of a model read the same .npz (data, initial weights, batch order), so the
  loss after the last step must agree between frameworks: a correctness check.
* First step: the parent stamps time.time() just before starting a child that imports its
  framework, loads the data, builds the model and runs one forward + backward + update;
  median over `--first-step-runs` fresh processes per framework.

Every child reports its pid, the framework modules it imported and threadpoolctl's view of
its thread pools; all are printed (and written with `--json PATH`). Numbers are printed,
never asserted: a FAIL is a performance finding. The exit status is 1 only when a child failed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import print_table
from workloads import FIRST_STEP_TARGET_S, WORKLOADS, write_npz

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
CHILD = BENCH_DIR / "child.py"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
TARGET_THREADS = 2  # the targets are for 2 threads; other counts are reported only
TORCH_HINT = "run bench/setup_torch.sh (makes .torch-venv from the local CPU wheel)"


@dataclass(frozen=True)
class Framework:
    key: str  # table label
    framework: str  # child --framework
    variant: str  # child --variant
    python: str


@dataclass
class Child:
    fw: Framework
    model: str
    threads: int
    round: int
    first_step: bool
    result: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # from the parent's stamp
    load: float = 0.0
    steal: float | None = None  # share of CPU time stolen by the host while it ran
    error: str = ""


def _load() -> tuple[float, float, float]:
    return os.getloadavg()


def _fmt_load(v: tuple[float, ...]) -> str:
    return " ".join(f"{x:.2f}" for x in v)


def _cpu_ticks(stat: Path = Path("/proc/stat")) -> tuple[int, int] | None:
    """(steal, total) clock ticks of all CPUs since boot, from Linux's /proc/stat; None
    elsewhere. Steal is the time the hypervisor ran something else while one of this VM's
    vCPUs wanted to run: load that the load average never shows, and one reason a 2-thread
    run on a small VM can be slow (a threaded product waits for the stolen thread)."""
    try:
        first = stat.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if len(first) < 9 or first[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    ticks = [int(v) for v in first[1:9]]
    return ticks[7], sum(ticks)


def _steal_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of all CPU time between two `_cpu_ticks` readings that was stolen."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def _fmt_share(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _child_env(threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    for var in THREAD_VARS:
        env[var] = str(threads)
    return env


def run_child(
    fw: Framework,
    model: str,
    data: Path,
    threads: int,
    rnd: int,
    *,
    first_step: bool = False,
    steps: int | None = None,
    warmup: int | None = None,
) -> Child:
    """Start one fresh interpreter for one measurement and read its RESULT line."""
    cmd = [fw.python, str(CHILD), "--framework", fw.framework, "--variant", fw.variant]
    cmd += ["--model", model, "--data", str(data), "--threads", str(threads)]
    if first_step:
        cmd.append("--first-step")
    if steps is not None:
        cmd += ["--steps", str(steps)]
    if warmup is not None:
        cmd += ["--warmup", str(warmup)]
    child = Child(fw, model, threads, rnd, first_step, load=_load()[0])
    ticks = _cpu_ticks()
    t0 = time.time()  # stamped before the process exists: interpreter start-up counts
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=_child_env(threads), cwd=REPO_ROOT, check=False
    )
    child.steal = _steal_share(ticks, _cpu_ticks())
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        child.error = f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}"
        return child
    child.result = json.loads(lines[-1][len("RESULT ") :])
    child.seconds = {k: v - t0 for k, v in child.result["stamps"].items()}
    return child


# ----------------------------------------------------------------------- output
def _num(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _spread(vals: list[float]) -> str:
    return f"{_num(min(vals))}-{_num(max(vals))}" if len(vals) > 1 else ""


def print_markdown(headers: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for r in rows:
        print("| " + " | ".join(r) + " |")


def _ok(children: list[Child]) -> list[Child]:
    return [c for c in children if not c.error]


def summarize(
    children: list[Child], frameworks: list[Framework], models: list[str], threads: list[int]
) -> tuple[list[list[str]], list[list[str]], list[dict[str, Any]]]:
    """Per (model, threads): a throughput row (medians, spreads, ratios, target) and a detail
    row (CPU ms per step, final losses), plus a record for --json."""
    keys = [f.key for f in frameworks]
    rows, details, records = [], [], []
    for model in models:
        for th in threads:
            mine = [
                c
                for c in _ok(children)
                if c.model == model and c.threads == th and not c.first_step
            ]
            by_key = {k: [c for c in mine if c.fw.key == k] for k in keys}
            rate = {k: [c.result["samples_per_s"] for c in v] for k, v in by_key.items()}
            cpu = {k: [c.result["cpu_ms_per_step"] for c in v] for k, v in by_key.items()}
            row = [model, str(th)]
            for k in keys:
                spread = f" ({_spread(rate[k])})" if len(rate[k]) > 1 else ""
                row.append(f"{_num(statistics.median(rate[k]))}{spread}" if rate[k] else "SKIP")
            ratios: dict[str, float | None] = {}
            for k in keys:
                if k == "torch":
                    continue
                per_round = []
                for c in by_key[k]:  # each engine child against the torch child of its round
                    t = [x for x in by_key.get("torch", []) if x.round == c.round]
                    if t:
                        per_round.append(c.result["samples_per_s"] / t[0].result["samples_per_s"])
                ratios[k] = statistics.median(per_round) if per_round else None
                row.append(f"{ratios[k]:.3g}" if ratios[k] is not None else "SKIP")
            target = WORKLOADS[model].target
            main_ratio = ratios.get("engine")
            if th != TARGET_THREADS:
                row += ["-", "-"]
            else:
                row.append(f">= {target}")
                ok = None if main_ratio is None else main_ratio >= target
                row.append("SKIP" if ok is None else ("PASS" if ok else "FAIL"))
            rows.append(row)
            detail = [model, str(th)]
            detail += [f"{statistics.median(cpu[k]):.2f}" if cpu[k] else "-" for k in keys]
            detail += [
                f"{by_key[k][-1].result['loss_last']:.5f}" if by_key[k] else "-" for k in keys
            ]
            details.append(detail)
            records.append(
                {
                    "model": model,
                    "threads": th,
                    "samples_per_s": rate,
                    "cpu_ms_per_step": cpu,
                    "ratio_to_torch": ratios,
                    "target": target if th == TARGET_THREADS else None,
                }
            )
    return rows, details, records


def headers(frameworks: list[Framework]) -> tuple[list[str], list[str]]:
    keys = [f.key for f in frameworks]
    main = ["model", "threads", *(f"{k} samples/s" for k in keys)]
    main += [f"{k}/torch" for k in keys if k != "torch"] + ["target", "status"]
    detail = ["model", "threads", *(f"{k} CPU ms/step" for k in keys)]
    detail += [f"{k} final loss" for k in keys]
    return main, detail


def first_step_rows(children: list[Child], frameworks: list[Framework]) -> list[list[str]]:
    rows = []
    for fw in frameworks:
        mine = [c for c in _ok(children) if c.first_step and c.fw.key == fw.key]
        if not mine:
            continue
        step = [c.seconds["step"] for c in mine]
        med = {s: statistics.median(c.seconds[s] for c in mine) for s in ("imports", "data")}
        target = f"<= {FIRST_STEP_TARGET_S}" if fw.key == "engine" else "-"
        status = "-"
        if fw.key == "engine":
            status = "PASS" if statistics.median(step) <= FIRST_STEP_TARGET_S else "FAIL"
        rows.append(
            [
                fw.key,
                f"{statistics.median(step):.3f} ({_spread(step)})",
                f"{med['imports']:.3f}",
                f"{med['data']:.3f}",
                target,
                status,
            ]
        )
    return rows


def _pools(c: Child) -> str:
    return "; ".join(
        f"{p.get('internal_api')} {p.get('version') or ''} {p.get('architecture') or ''} "
        f"{p.get('num_threads')} threads".replace("  ", " ")
        for p in c.result.get("threadpools", [])
    )


def blas_note(children: list[Child]) -> str:
    """Which BLAS kernels the engine's children ran, and whether the environment chose them.

    OPENBLAS_CORETYPE (passed to the children like the rest of the environment, since a
    user's own training runs with it too) can force older kernels than the CPU has: with
    `Haswell` on an AVX-512 CPU the engine's matrix products run on AVX2 (measured on an
    AMD EPYC: 1.3-1.6x slower products), while PyTorch's MKL ignores the variable."""
    kernels = sorted(
        {
            f"{p.get('internal_api')} {p.get('architecture')}"
            for c in _ok(children)
            if c.fw.framework == "engine"
            for p in c.result.get("threadpools", [])
            if p.get("architecture")
        }
    )
    note = f"engine BLAS kernels: {', '.join(kernels) or 'not reported'}"
    forced = os.environ.get("OPENBLAS_CORETYPE")
    if forced:
        note += (
            f" (OPENBLAS_CORETYPE={forced} is set in this environment and chose them; "
            "`env -u OPENBLAS_CORETYPE make bench` lets OpenBLAS pick the CPU's own)"
        )
    return note


# ------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    ap.add_argument("--threads", nargs="+", type=int, default=[2, 1], help="thread counts")
    # Five rounds, not three: on a shared 2-vCPU machine the speed of both frameworks moves by
    # up to 40% in phases of seconds, and a phase change between the two runs of a round
    # skews that round's ratio; the median of five shrugs off two such rounds.
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds (median taken)")
    ap.add_argument("--steps", type=int, help="timed steps per child (default: per model)")
    ap.add_argument("--warmup", type=int, help="untimed steps per child (default: per model)")
    ap.add_argument("--first-step-runs", type=int, default=5, help="fresh processes per framework")
    ap.add_argument("--first-step-model", choices=list(WORKLOADS), default="mlp")
    ap.add_argument("--no-raw", action="store_true", help="skip the raw-engine variant")
    ap.add_argument("--no-torch", action="store_true", help="engine only")
    ap.add_argument("--engine-python", default=None, help="default: .venv/bin/python")
    ap.add_argument("--torch-python", default=str(REPO_ROOT / ".torch-venv" / "bin" / "python"))
    ap.add_argument("--json", type=Path, help="write every child's record here")
    ap.add_argument("--markdown-only", action="store_true", help="print only markdown tables")
    args = ap.parse_args(argv)
    say = (lambda *a, **k: None) if args.markdown_only else print

    engine_py = args.engine_python or str(REPO_ROOT / ".venv" / "bin" / "python")
    if not Path(engine_py).exists():
        engine_py = sys.executable
    torch_note = ""
    if args.no_torch:
        torch_note = "--no-torch"
    elif not Path(args.torch_python).exists():
        torch_note = f"{args.torch_python} not found; {TORCH_HINT}"
    frameworks = [Framework("engine", "engine", "learner", engine_py)]
    if not torch_note:
        frameworks.append(Framework("torch", "torch", "nn", args.torch_python))
    if not args.no_raw:
        frameworks.append(Framework("engine raw", "engine", "raw", engine_py))

    # An installed package carries its bytecode (torch's does, in .torch-venv); a checkout
    # whose environment sets PYTHONDONTWRITEBYTECODE (this machine's does) would otherwise
    # compile the engine's sources again in every fresh process: 60 ms of its 0.3 s first
    # step. So compile them once, as an install would.
    sources = [REPO_ROOT / "packages" / name / "src" for name in ("core", "learner")]
    sources.append(REPO_ROOT / "bench")
    subprocess.run([engine_py, "-m", "compileall", "-q", *map(str, sources)], check=False,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    load_before = _load()
    ticks_before = _cpu_ticks()
    say(
        f"parent pid {os.getpid()}, {os.cpu_count()} cpus, load average before {_fmt_load(load_before)}"
    )
    say(f"engine python: {engine_py}")
    say(f"torch python:  {'SKIP: ' + torch_note if torch_note else args.torch_python}")
    for m in args.models:
        say(f"{m}: {WORKLOADS[m].title}")

    children: list[Child] = []
    with tempfile.TemporaryDirectory(prefix="azuraforge-bench-") as tmp:
        data: dict[str, Path] = {}
        for m in set(args.models) | ({args.first_step_model} if args.first_step_runs else set()):
            wl = WORKLOADS[m]
            steps = wl.steps if args.steps is None else args.steps
            warmup = wl.warmup if args.warmup is None else args.warmup
            data[m] = write_npz(m, Path(tmp) / f"{m}.npz", steps, warmup)
        t_start = time.perf_counter()
        for rnd in range(args.rounds):
            for model in args.models:
                for th in args.threads:
                    for fw in frameworks:  # A B C A B C ...: load bursts hit every framework
                        c = run_child(
                            fw, model, data[model], th, rnd, steps=args.steps, warmup=args.warmup
                        )
                        children.append(c)
                        if c.error:
                            say(f"  FAILED {fw.key} {model} {th} threads: {c.error}")
            say(
                f"round {rnd + 1}/{args.rounds} done ({time.perf_counter() - t_start:.0f} s)",
                flush=True,
            )
        first_fws = [f for f in frameworks if f.key in ("engine", "torch")]
        for rnd in range(args.first_step_runs):
            for fw in first_fws:
                c = run_child(
                    fw,
                    args.first_step_model,
                    data[args.first_step_model],
                    TARGET_THREADS,
                    rnd,
                    first_step=True,
                )
                children.append(c)
                if c.error:
                    say(f"  FAILED first step {fw.key}: {c.error}")
    load_after = _load()
    loads = [c.load for c in children]
    steal = _steal_share(ticks_before, _cpu_ticks())
    steals = [c.steal for c in children if c.steal is not None]
    steal_note = f"CPU time stolen by the host (hypervisor): {_fmt_share(steal)} of the run" + (
        f", {_fmt_share(min(steals))}-{_fmt_share(max(steals))} per child" if steals else ""
    )

    rows, details, records = summarize(children, frameworks, args.models, args.threads)
    main_headers, detail_headers = headers(frameworks)
    fs_headers = [
        "framework",
        "first step s (min-max)",
        "imports done s",
        "data loaded s",
        "target",
        "status",
    ]
    fs_rows = first_step_rows(children, frameworks)
    if args.markdown_only:
        print_markdown(main_headers, rows)
        if fs_rows:
            print()
            print_markdown(fs_headers, fs_rows)
        print(
            f"\nload average {_fmt_load(load_before)} before, {_fmt_load(load_after)} after, "
            f"1-min {min(loads, default=0):.2f}-{max(loads, default=0):.2f} during"
        )
        print(steal_note)
        print(blas_note(children))
    else:
        print("\nChildren (one fresh process each; the evidence):")
        for c in children:
            if c.error:
                continue
            r = c.result
            kind = "first step" if c.first_step else f"round {c.round + 1}"
            print(
                f"  pid {r['pid']:>7} {c.fw.key:<10} {c.model:<4} {c.threads} threads {kind:<10} "
                f"imported {','.join(r['imported']) or '-'}; torch threads {r['torch_threads']}; {_pools(c)}"
            )
        print_table(
            main_headers,
            rows,
            f"Training samples/s: median (min-max) of {args.rounds} rounds; ratio: median of the per-round ratios",
        )
        print_table(
            detail_headers,
            details,
            "CPU ms per step (all threads; at 1 thread the measure least moved by other load) and the loss after the last step (same data, weights and batches: must agree)",
        )
        if fs_rows:
            print_table(
                fs_headers,
                fs_rows,
                f"Process start -> end of the first training step ({args.first_step_model}, "
                f"{TARGET_THREADS} threads, median of {args.first_step_runs} fresh processes)",
            )
        if torch_note:
            print(f"\nPyTorch: SKIP ({torch_note}); ratios are SKIP.")
        print(
            f"\nload average (1, 5, 15 min): before {_fmt_load(load_before)}, after {_fmt_load(load_after)}; "
            f"1-min {min(loads, default=0):.2f}-{max(loads, default=0):.2f} at the children's starts; {os.cpu_count()} cpus"
        )
        print(steal_note)
        print(blas_note(children))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "parent_pid": os.getpid(),
            "load_before": load_before,
            "load_after": load_after,
            "steal_share": steal,
            "torch": torch_note or "ok",
            "summary": records,
            "children": [
                {
                    "framework": c.fw.framework,
                    "variant": c.fw.variant,
                    "model": c.model,
                    "threads": c.threads,
                    **c.result,  # what the child says of itself (pid, imports, pools, ...)
                    "job": c.fw.key,
                    "round": c.round,
                    "first_step": c.first_step,
                    "seconds": c.seconds,
                    "steal_share": c.steal,
                    "error": c.error,
                }
                for c in children
            ],
        }
        args.json.write_text(json.dumps(doc, indent=1))
    return 1 if any(c.error for c in children) else 0


if __name__ == "__main__":
    sys.exit(main())
