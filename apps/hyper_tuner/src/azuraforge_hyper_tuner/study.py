"""One study, driven with Optuna's ask-and-tell interface: trials are child runs of the
study's experiment, asked for while slots are free, watched, pruned from their per-epoch
objective, and told to the sampler the moment they end, however they end (a trial that
failed, was cancelled or was lost is told at once, so the study never waits on a dead one).

The study keeps no state of its own: on a restart (its worker died, it was re-queued) it
rebuilds the sampler from its finished trials and adopts the ones still running.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import product
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from azuraforge_pipeline import ChildRun, ChildRunError, ChildState, RunContext

from .config import HyperTunerConfig
from .space import ParamSpec, distributions, grid, params_of

__all__ = ["Study", "TrialRecord", "objective_value"]

PRUNED_TAG = "pruned"
TRIAL_TAG = "trial"
optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective_value(
    state: ChildState, history: list[tuple[int, float]], objective: str, maximize: bool
) -> float | None:
    """A finished trial's objective: its summary's value when it reports one (the model it
    keeps), else the best per-epoch value (what early stopping restores)."""
    value = (state.summary or {}).get(objective)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    finite = [v for _, v in history if math.isfinite(v)]
    if not finite:
        return None
    return max(finite) if maximize else min(finite)


def _point(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True)


@dataclass
class TrialRecord:
    """A trial as the study reports it (events, artifacts, summary)."""

    number: int
    experiment_id: str
    params: dict[str, Any]
    state: str = "running"  # running | complete | pruned | failed
    value: float | None = None
    error: str | None = None
    epochs: int = 0
    started: float = field(default_factory=time.time)
    finished: float | None = None
    run_s: float | None = None  # the child's own start to end, as the store saw them
    queued_s: float | None = None  # submitted until a worker started it

    def timed(self, state: ChildState) -> None:
        """Takes the trial's times from its child run: its duration is the run's, not the
        wait for a free worker before it."""
        if state.started_at is not None and state.finished_at is not None:
            self.run_s = max(0.0, (state.finished_at - state.started_at).total_seconds())
        if state.started_at is not None and state.created_at is not None:
            self.queued_s = max(0.0, (state.started_at - state.created_at).total_seconds())

    def public(self) -> dict[str, Any]:
        if self.finished is None:
            duration = None
        else:
            duration = self.run_s if self.run_s is not None else self.finished - self.started
        return {
            "number": self.number,
            "experiment_id": self.experiment_id,
            "params": self.params,
            "state": self.state,
            "value": self.value,
            "error": self.error,
            "epochs": self.epochs,
            "duration_s": None if duration is None else round(duration, 2),
            "queued_s": None if self.queued_s is None else round(self.queued_s, 2),
        }


@dataclass
class _Running:
    trial: optuna.Trial
    child: ChildRun
    record: TrialRecord
    reported: int = -1  # the last epoch reported to the pruner


class Study:
    def __init__(
        self,
        config: HyperTunerConfig,
        context: RunContext,
        *,
        poll_seconds: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.context = context
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.space: dict[str, ParamSpec] = dict(config.space)
        self.distributions = distributions(self.space)
        self.maximize = config.direction == "maximize"
        self.optuna = optuna.create_study(
            direction=config.direction, sampler=self._sampler(), pruner=self._pruner()
        )
        self.trials: dict[int, TrialRecord] = {}
        self.running: dict[int, _Running] = {}
        self.best: TrialRecord | None = None
        self.grid_size: int | None = None

    def _enqueue_grid(self) -> None:
        """Every grid point once, in a seeded order, minus those already tried. (Optuna's
        GridSampler stops its study from inside `tell`, which only works under `optimize`.)"""
        points = grid(self.space)
        names = list(points)
        combos = [dict(zip(names, values, strict=True)) for values in product(*points.values())]
        random.Random(self.config.seed).shuffle(combos)
        tried = {_point(t.params) for t in self.optuna.trials}
        self.grid_size = len(combos)
        for combo in combos:
            if _point(combo) not in tried:
                self.optuna.enqueue_trial(combo)

    # -- the search algorithms (Optuna's) -----------------------------------------------
    def _sampler(self) -> optuna.samplers.BaseSampler:
        cfg = self.config
        if cfg.sampler in ("grid", "random"):  # a grid is enqueued point by point (`_grid`)
            return optuna.samplers.RandomSampler(seed=cfg.seed)
        # constant_liar: running trials count as bad guesses, so parallel asks differ
        return optuna.samplers.TPESampler(
            seed=cfg.seed, constant_liar=True, n_startup_trials=cfg.startup_trials
        )

    def _pruner(self) -> optuna.pruners.BasePruner:
        if self.config.pruner == "median":
            return optuna.pruners.MedianPruner(
                n_startup_trials=max(self.config.startup_trials, 1), n_warmup_steps=1
            )
        if self.config.pruner == "successive_halving":
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
        return optuna.pruners.NopPruner()

    # -- resume -------------------------------------------------------------------------
    def adopt(self) -> None:
        """Rebuild from the trials an earlier attempt of this study started."""
        for child in self.context.children():
            state = child.state()
            if TRIAL_TAG not in state.tags:
                continue
            params = params_of(self.space, state.config)
            if params is None:
                continue  # not a trial of this space
            record = TrialRecord(len(self.trials), child.id, self._config_params(params))
            if state.done:
                frozen = self._frozen(state, child, params, record)
                self.optuna.add_trial(frozen)
                record.number = frozen.number = len(self.optuna.trials) - 1
                self._note(record)
            else:  # still running (or re-queued): ask for exactly its params, and watch it
                self.optuna.enqueue_trial(params)
                trial = self.optuna.ask(self.distributions)
                record.number = trial.number
                self.trials[trial.number] = record
                self.running[trial.number] = _Running(trial, child, record)
        if self.trials:
            self.context.log(
                f"resumed: {sum(r.state != 'running' for r in self.trials.values())} finished "
                f"and {len(self.running)} running trials adopted"
            )

    def _frozen(
        self, state: ChildState, child: ChildRun, params: dict[str, Any], record: TrialRecord
    ) -> FrozenTrial:
        history = child.metric_history(self.config.objective)
        value = objective_value(state, history, self.config.objective, self.maximize)
        record.epochs = len(history)
        record.finished = time.time()
        record.timed(state)
        if PRUNED_TAG in state.tags:
            record.state = "pruned"
        elif state.status == "succeeded" and value is not None:
            record.state, record.value = "complete", value
        else:
            record.state, record.error = "failed", state.error or "no objective value"
        trial_state = {
            "complete": TrialState.COMPLETE,
            "pruned": TrialState.PRUNED,
            "failed": TrialState.FAIL,
        }[record.state]
        return optuna.trial.create_trial(
            params=params,
            distributions=self.distributions,
            value=record.value if record.state == "complete" else None,
            state=trial_state,
            intermediate_values={int(s): v for s, v in history if math.isfinite(v)},
        )

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        cfg = self.config
        self.adopt()
        if cfg.sampler == "grid":
            self._enqueue_grid()
        started = self.clock()
        budget = cfg.timeout_minutes * 60 if cfg.timeout_minutes is not None else math.inf
        self._progress()
        try:
            while True:
                self.context.check_cancelled()
                for number in list(self.running):  # first: a finished trial frees its slot now
                    self._watch(self.running[number])
                out_of_time = self.clock() - started >= budget
                while (
                    not out_of_time
                    and len(self.running) < cfg.parallel
                    and len(self.trials) < cfg.n_trials
                    and not self._grid_done()
                ):
                    self._launch()
                if not self.running and (
                    out_of_time or len(self.trials) >= cfg.n_trials or self._grid_done()
                ):
                    break
                time.sleep(self.poll_seconds)
        except BaseException:
            for running in list(self.running.values()):  # a stopped study leaves no trial
                running.child.cancel(reason="its study stopped")
            raise
        if out_of_time and len(self.trials) < cfg.n_trials:
            self.context.log(f"the time budget ran out after {len(self.trials)} trials")
        return self.results()

    def _grid_done(self) -> bool:
        return self.grid_size is not None and len(self.trials) >= self.grid_size

    def _config_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {name: self.space[name].value(v) for name, v in params.items()}

    def _launch(self) -> None:
        trial = self.optuna.ask(self.distributions)
        values = self._config_params(trial.params)
        config = {**self.config.base_config, **values}
        try:
            child = self.context.submit(
                self.config.target,
                config,
                name=f"trial {trial.number} of {self.context.experiment_id or 'study'}"[:200],
                tags=[TRIAL_TAG],
            )
        except ChildRunError as exc:  # a sampled point the target refuses: a failed trial
            self.optuna.tell(trial, state=TrialState.FAIL)
            record = TrialRecord(trial.number, "", values, state="failed", error=str(exc))
            record.finished = time.time()
            self._note(record)
            return
        record = TrialRecord(trial.number, child.id, values)
        self.trials[trial.number] = record
        self.running[trial.number] = _Running(trial, child, record)
        self._event(record)

    def _watch(self, running: _Running) -> None:
        state = running.child.state()
        history = running.child.metric_history(self.config.objective)
        running.record.epochs = len(history)
        if not state.done and self.config.pruner != "none":
            for step, value in history:
                if step <= running.reported or not math.isfinite(value):
                    continue
                running.trial.report(value, step)
                running.reported = step
            if running.reported >= 0 and running.trial.should_prune():
                running.child.cancel(reason=PRUNED_TAG)
                if state.started_at is not None:  # it ends about now
                    state = replace(state, finished_at=datetime.now(UTC))
                running.record.timed(state)
                self._tell(running, "pruned", None, f"pruned after epoch {running.reported}")
                return
        if not state.done:
            return
        running.record.timed(state)
        final = objective_value(state, history, self.config.objective, self.maximize)
        if state.status == "succeeded" and final is not None:
            self._tell(running, "complete", final, None)
        elif state.status == "succeeded":
            self._tell(
                running, "failed", None, f"the trial reported no metric {self.config.objective!r}"
            )
        else:
            self._tell(running, "failed", None, state.error or state.status)

    def _tell(
        self, running: _Running, outcome: str, value: float | None, error: str | None
    ) -> None:
        state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED}.get(
            outcome, TrialState.FAIL
        )
        self.optuna.tell(running.trial, value if outcome == "complete" else None, state=state)
        record = running.record
        record.state, record.value, record.error = outcome, value, error
        record.finished = time.time()
        del self.running[record.number]
        self._note(record)

    # -- reporting ------------------------------------------------------------------------
    def _note(self, record: TrialRecord) -> None:
        self.trials[record.number] = record
        if record.state == "complete" and record.value is not None:
            better = self.best is None or (
                record.value > self.best.value if self.maximize else record.value < self.best.value  # type: ignore[operator]
            )
            if better:
                self.best = record
        self._event(record)
        if record.state != "running":
            shown = f"{record.value:.6g}" if record.value is not None else record.error
            self.context.log(f"trial {record.number} {record.state}: {shown}")
            points: dict[str, float] = {"trials_finished": float(self._finished())}
            if record.value is not None:
                points["value"] = record.value
            if self.best is not None and self.best.value is not None:
                points["best_value"] = self.best.value
            self.context.log_metrics(points, step=record.number)
        self._progress()

    def _finished(self) -> int:
        return sum(r.state != "running" for r in self.trials.values())

    def _progress(self) -> None:
        self.context.progress(step=self._finished(), total_steps=self.config.n_trials)

    def _event(self, record: TrialRecord) -> None:
        best = self.best
        self.context.emit(
            "trial",
            {
                **record.public(),
                "best_number": None if best is None else best.number,
                "best_value": None if best is None else best.value,
            },
        )

    def importances(self) -> dict[str, float]:
        complete = [t for t in self.optuna.trials if t.state is TrialState.COMPLETE]
        if len(complete) < 2 or len(self.space) < 2:
            return {name: 1.0 for name in self.space} if complete and len(self.space) == 1 else {}
        try:
            found = optuna.importance.get_param_importances(
                self.optuna,
                params=list(self.space),
                evaluator=optuna.importance.FanovaImportanceEvaluator(seed=self.config.seed),
            )
        except (RuntimeError, ValueError):  # e.g. every trial drew the same values
            return {}
        return {name: float(v) for name, v in found.items()}

    def results(self) -> dict[str, Any]:
        trials = [self.trials[n].public() for n in sorted(self.trials)]
        counts = {s: sum(t["state"] == s for t in trials) for s in ("complete", "pruned", "failed")}
        best = self.best
        return {
            "target": self.config.target,
            "objective": self.config.objective,
            "direction": self.config.direction,
            "sampler": self.config.sampler,
            "pruner": self.config.pruner,
            "n_trials": len(trials),
            **{f"n_{state}": count for state, count in counts.items()},
            "best_value": None if best is None else best.value,
            "best_params": None if best is None else best.params,
            "best_trial": None if best is None else best.number,
            "best_experiment_id": None if best is None else best.experiment_id,
            "best_config": None if best is None else {**self.config.base_config, **best.params},
            "importances": self.importances(),
            "trials": trials,
        }
