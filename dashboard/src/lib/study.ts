// A hyperparameter study as the study page shows it, built from the study's `trial` events
// (the backlog from seq 0, then live) and, once it has finished, its summary. Pure functions:
// the page's hook (useLiveStudy) feeds them.
import type { EventMessage, Experiment } from '../api/types'
import type { Aligned } from './series'

/** The pipeline that runs studies. */
export const STUDY_PIPELINE = 'hyper_tuner'

/** The tag of a study's trial experiments (pruned ones are tagged `pruned` too). */
export const TRIAL_TAG = 'trial'

export type TrialState = 'running' | 'complete' | 'pruned' | 'failed'

export interface Trial {
  number: number
  /** The trial's experiment; "" when the target refused the sampled point before it ran. */
  experiment_id: string
  params: Record<string, unknown>
  state: TrialState
  value: number | null
  error: string | null
  epochs: number
  /** Its run's own time, start to end (null while it runs). */
  duration_s: number | null
  /** How long it waited for a free worker before it started. */
  queued_s: number | null
}

export type Direction = 'minimize' | 'maximize'

export interface StudyView {
  /** By trial number, ascending. */
  trials: Trial[]
  /** The best complete trial as the study reported it. */
  bestNumber: number | null
  bestValue: number | null
  /** Highest event seq applied (events at or below it are replays). */
  lastSeq: number
}

export const EMPTY_STUDY: StudyView = { trials: [], bestNumber: null, bestValue: null, lastSeq: 0 }

const STATES: ReadonlySet<string> = new Set(['running', 'complete', 'pruned', 'failed'])

const finite = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)

/** One trial from an event payload or a summary entry; null when it is not one. */
export function parseTrial(raw: unknown): Trial | null {
  if (raw === null || typeof raw !== 'object') return null
  const r = raw as Record<string, unknown>
  const number = finite(r.number)
  if (number === null || !Number.isInteger(number)) return null
  const state = typeof r.state === 'string' && STATES.has(r.state) ? (r.state as TrialState) : null
  if (state === null) return null
  return {
    number,
    experiment_id: typeof r.experiment_id === 'string' ? r.experiment_id : '',
    params: r.params !== null && typeof r.params === 'object' && !Array.isArray(r.params) ? (r.params as Record<string, unknown>) : {},
    state,
    value: finite(r.value),
    error: typeof r.error === 'string' ? r.error : null,
    epochs: finite(r.epochs) ?? 0,
    duration_s: finite(r.duration_s),
    queued_s: finite(r.queued_s),
  }
}

function withTrial(trials: Trial[], trial: Trial): Trial[] {
  const i = trials.findIndex((t) => t.number === trial.number)
  if (i >= 0) return trials.map((t, k) => (k === i ? trial : t))
  return [...trials, trial].sort((a, b) => a.number - b.number)
}

/**
 * The view after one event: a `trial` event adds or replaces its trial (a trial's later
 * event, e.g. complete after running, replaces the earlier one) and carries the study's best
 * so far. Other events and replays (seq already applied) return the same object.
 */
export function applyStudyEvent(view: StudyView, event: EventMessage): StudyView {
  if (event.seq <= view.lastSeq) return view
  if (event.type !== 'trial') return { ...view, lastSeq: event.seq }
  const trial = parseTrial(event.payload)
  if (!trial) return { ...view, lastSeq: event.seq }
  const p = event.payload
  const hasBest = 'best_number' in p
  return {
    trials: withTrial(view.trials, trial),
    bestNumber: hasBest ? finite(p.best_number) : view.bestNumber,
    bestValue: hasBest ? finite(p.best_value) : view.bestValue,
    lastSeq: event.seq,
  }
}

/** A finished study's view from its summary (the final word on every trial); null without one. */
export function studyFromSummary(summary: Record<string, unknown> | null | undefined, lastSeq = 0): StudyView | null {
  if (!summary || !Array.isArray(summary.trials)) return null
  const trials = summary.trials.map(parseTrial).filter((t): t is Trial => t !== null)
  trials.sort((a, b) => a.number - b.number)
  return { trials, bestNumber: finite(summary.best_trial), bestValue: finite(summary.best_value), lastSeq }
}

/** The view with a summary's trials and best laid over what the events built. */
export function mergeSummary(view: StudyView, summary: Record<string, unknown> | null | undefined): StudyView {
  const final = studyFromSummary(summary, view.lastSeq)
  if (!final) return view
  let trials = view.trials
  for (const t of final.trials) trials = withTrial(trials, t)
  return { trials, bestNumber: final.bestNumber ?? view.bestNumber, bestValue: final.bestValue ?? view.bestValue, lastSeq: view.lastSeq }
}

/** The best complete trial of these (ties: the earliest), for a view without a reported best. */
export function bestTrial(trials: Trial[], direction: Direction): Trial | null {
  let best: Trial | null = null
  for (const t of trials) {
    if (t.state !== 'complete' || t.value === null) continue
    if (best === null || (direction === 'minimize' ? t.value < best.value! : t.value > best.value!)) best = t
  }
  return best
}

/** The best trial: the one the study reported, else the best complete one. */
export function currentBest(view: StudyView, direction: Direction): Trial | null {
  if (view.bestNumber !== null) {
    const reported = view.trials.find((t) => t.number === view.bestNumber)
    if (reported) return reported
  }
  return bestTrial(view.trials, direction)
}

export interface StudyCounts {
  running: number
  complete: number
  pruned: number
  failed: number
  finished: number
}

export function countTrials(trials: Trial[]): StudyCounts {
  const c: StudyCounts = { running: 0, complete: 0, pruned: 0, failed: 0, finished: 0 }
  for (const t of trials) {
    c[t.state] += 1
    if (t.state !== 'running') c.finished += 1
  }
  return c
}

/**
 * The optimization-history chart: one x per finished trial (its number), the trial's value
 * (null when it was pruned or failed) and the best value so far among complete trials of
 * lower or equal number. It grows as trials finish.
 */
export function historyData(trials: Trial[], direction: Direction): Aligned {
  const finished = trials.filter((t) => t.state !== 'running').sort((a, b) => a.number - b.number)
  const xs: number[] = []
  const values: (number | null)[] = []
  const best: (number | null)[] = []
  let sofar: number | null = null
  for (const t of finished) {
    if (t.state === 'complete' && t.value !== null) {
      if (sofar === null || (direction === 'minimize' ? t.value < sofar : t.value > sofar)) sofar = t.value
    }
    xs.push(t.number)
    values.push(t.state === 'complete' ? t.value : null)
    best.push(sofar)
  }
  return [xs, values, best]
}

/** The tuned parameters' names: the study config's space, else those the trials carry. */
export function paramNames(config: Record<string, unknown>, trials: Trial[]): string[] {
  const space = config.space
  if (space !== null && typeof space === 'object' && !Array.isArray(space)) return Object.keys(space)
  return Array.from(new Set(trials.flatMap((t) => Object.keys(t.params))))
}

/** Parameter importances (share of the objective's variance), largest first. */
export function importanceList(summary: Record<string, unknown> | null | undefined): [string, number][] {
  const raw = summary?.importances
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return []
  return Object.entries(raw as Record<string, unknown>)
    .filter((e): e is [string, number] => finite(e[1]) !== null)
    .sort((a, b) => b[1] - a[1])
}

/**
 * The configuration the best trial ran: the summary's `best_config` once the study is done,
 * else the study's fixed settings with the best trial's parameters over them (what the tuner
 * itself sends).
 */
export function bestConfig(study: Experiment, best: Trial | null): Record<string, unknown> | null {
  const summary = study.summary
  if (summary && summary.best_config && typeof summary.best_config === 'object') return summary.best_config as Record<string, unknown>
  if (!best) return null
  const base = study.config.base_config
  return { ...(base && typeof base === 'object' ? (base as Record<string, unknown>) : {}), ...best.params }
}

/** The study's settings as its config states them (with hyper_tuner's defaults where absent). */
export function studySettings(config: Record<string, unknown>): { target: string; objective: string; direction: Direction; nTrials: number | null } {
  return {
    target: typeof config.target === 'string' ? config.target : '',
    objective: typeof config.objective === 'string' ? config.objective : 'objective',
    direction: config.direction === 'minimize' ? 'minimize' : 'maximize',
    nTrials: finite(config.n_trials),
  }
}
