"""The `hyper_tuner` pipeline: a study over any other installed pipeline, each trial a child
experiment on the workers (see `study.py`)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, ClassVar

from azuraforge_pipeline import ChildrenNotSupportedError, Pipeline, RunContext, RunResult

from .config import HyperTunerConfig
from .study import Study

__all__ = ["HyperTuner", "HyperTunerConfig"]


class HyperTuner(Pipeline[HyperTunerConfig]):
    id: ClassVar[str] = "hyper_tuner"
    name: ClassVar[str] = "Hyper Tuner"
    description: ClassVar[str] = (
        "Searches the hyperparameters of another pipeline with Optuna (TPE, random or grid, "
        "optional pruning), running each trial as a child experiment on the workers."
    )
    version: ClassVar[str] = "0.1.0"
    coordinator: ClassVar[bool] = True  # it waits on its trials: never in a worker slot
    Config: ClassVar[type[HyperTunerConfig]] = HyperTunerConfig

    def run(self, config: HyperTunerConfig, context: RunContext) -> RunResult:
        if not context.can_submit:
            raise ChildrenNotSupportedError(
                "a study runs its trials as experiments: start it on the platform "
                "(`azuraforge tune`, the API or the dashboard)"
            )
        context.log(
            f"study of {config.target}: {config.direction} {config.objective} over "
            f"{', '.join(config.space)}; {config.n_trials} trials, {config.parallel} at once, "
            f"{config.sampler} sampler, pruning {config.pruner}"
        )
        results = Study(config, context).run()
        context.save_artifact("study.json", results)
        context.save_artifact("trials.csv", _trials_csv(results["trials"], list(config.space)))
        context.save_artifact("report.md", _report(config, results))
        if results["best_value"] is None:
            raise RuntimeError(
                f"no trial finished with a value of {config.objective!r} "
                f"({results['n_failed']} failed, {results['n_pruned']} pruned): "
                "see the trials' errors"
            )
        context.log(
            f"best {config.objective} {results['best_value']:.6g} "
            f"(trial {results['best_trial']}): {json.dumps(results['best_params'])}"
        )
        return results


def _trials_csv(trials: list[dict[str, Any]], names: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["number", "experiment_id", "state", "value", "epochs", *names, "error"])
    for t in trials:
        params = [json.dumps(t["params"].get(n)) for n in names]
        writer.writerow(
            [t["number"], t["experiment_id"], t["state"], t["value"], t["epochs"], *params,
             t["error"] or ""]
        )  # fmt: skip
    return out.getvalue()


def _report(config: HyperTunerConfig, results: dict[str, Any]) -> str:
    lines = [
        f"# Study of {config.target}",
        "",
        f"{config.direction.capitalize()} `{config.objective}` with the {config.sampler} "
        f"sampler (pruning: {config.pruner}), seed {config.seed}.",
        "",
        f"- trials: {results['n_trials']} ({results['n_complete']} complete, "
        f"{results['n_pruned']} pruned, {results['n_failed']} failed)",
    ]
    if results["best_value"] is not None:
        lines += [
            f"- best {config.objective}: {results['best_value']:.6g} (trial "
            f"{results['best_trial']}, experiment {results['best_experiment_id']})",
            f"- best settings: `{json.dumps(results['best_params'])}`",
        ]
    if results["importances"]:
        lines += ["", "## Parameter importances (fANOVA)", ""]
        lines += [f"- {k}: {v:.3f}" for k, v in results["importances"].items()]
    lines += [
        "",
        "The objective is a validation metric: compare the best configuration on its test "
        "split (its experiment's report) before trusting it.",
    ]
    return "\n".join(lines) + "\n"
