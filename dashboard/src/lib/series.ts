// Chart data: metric histories from the API merged with live `metrics` events, keyed by
// (metric name, step) so a point that arrives twice (history and live, or a replay after a
// reconnect) is stored once; events at or below the last applied seq are ignored.
import type { EventMessage, MetricSeries } from '../api/types'

export interface MetricStore {
  series: Map<string, MetricSeries>
  /** Highest event seq applied; later events only. */
  lastSeq: number
  /** Bumped on each change so React can tell a new state from an old one cheaply. */
  version: number
}

export function emptyStore(lastSeq = 0): MetricStore {
  return { series: new Map(), lastSeq, version: 0 }
}

/** A store holding the history the API returned; `lastSeq` is the seq it reflects. */
export function storeFromHistory(history: MetricSeries[], lastSeq = 0): MetricStore {
  const store = emptyStore(lastSeq)
  for (const s of history) {
    store.series.set(s.name, { ...s, steps: [...s.steps], values: [...s.values] })
  }
  store.version = 1
  return store
}

/** Insert or replace the value at `step`; appending at the end is O(1). */
export function upsertPoint(s: MetricSeries, step: number, value: number | null): void {
  const n = s.steps.length
  if (n === 0 || step > s.steps[n - 1]) {
    s.steps.push(step)
    s.values.push(value)
    return
  }
  // binary search for the first index with steps[i] >= step
  let lo = 0
  let hi = n
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (s.steps[mid] < step) lo = mid + 1
    else hi = mid
  }
  if (lo < n && s.steps[lo] === step) s.values[lo] = value
  else {
    s.steps.splice(lo, 0, step)
    s.values.splice(lo, 0, value)
  }
}

function finiteOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null
}

/**
 * Apply one live event. Returns true when the store changed (a new `metrics` event).
 * The store is mutated in place (charts redraw from it) and its version bumped.
 */
export function applyEvent(store: MetricStore, event: EventMessage): boolean {
  if (event.seq <= store.lastSeq) return false
  store.lastSeq = event.seq
  if (event.type !== 'metrics') return false
  const p = event.payload
  const x = finiteOrNull(p.step) ?? finiteOrNull(p.epoch)
  const values = p.values
  if (x === null || values === null || typeof values !== 'object') return false
  for (const [name, raw] of Object.entries(values as Record<string, unknown>)) {
    let s = store.series.get(name)
    if (!s) {
      s = { name, steps: [], values: [], xKind: finiteOrNull(p.step) === null ? 'epoch' : 'step' }
      store.series.set(name, s)
    }
    upsertPoint(s, x, finiteOrNull(raw))
  }
  store.version += 1
  return true
}

/** Apply many events (a backlog) in seq order; returns how many changed the store. */
export function applyEvents(store: MetricStore, events: EventMessage[]): number {
  const sorted = [...events].sort((a, b) => a.seq - b.seq)
  let changed = 0
  for (const e of sorted) if (applyEvent(store, e)) changed += 1
  return changed
}

/** uPlot's aligned data: one shared x array, one y array per series (null where missing). */
export type Aligned = [number[], ...(number | null)[][]]

/** Align several series on the union of their x values. */
export function alignSeries(list: MetricSeries[]): Aligned {
  if (list.length === 0) return [[]]
  const first = list[0].steps
  const same = list.every(
    (s) => s.steps.length === first.length && s.steps.every((x, i) => x === first[i]),
  )
  if (same) return [[...first], ...list.map((s) => [...s.values])]
  const xs = Array.from(new Set(list.flatMap((s) => s.steps))).sort((a, b) => a - b)
  const index = new Map(xs.map((x, i) => [x, i]))
  const ys = list.map((s) => {
    const col: (number | null)[] = new Array(xs.length).fill(null)
    s.steps.forEach((x, i) => {
      col[index.get(x) as number] = s.values[i]
    })
    return col
  })
  return [xs, ...ys]
}

/** The metric names to draw on the loss chart: loss-like names, train before validation. */
export function lossNames(names: Iterable<string>): string[] {
  const all = [...names]
  const losses = all.filter((n) => /loss$/i.test(n) && !/^test_/i.test(n))
  const rank = (n: string) => (n === 'loss' ? 0 : n === 'val_loss' ? 1 : 2)
  return losses.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
}

/** Metrics worth their own chart: more than one point, not a loss, not a one-off test score. */
export function otherChartNames(store: MetricStore): string[] {
  const losses = new Set(lossNames(store.series.keys()))
  return [...store.series.values()]
    .filter((s) => !losses.has(s.name) && s.steps.length > 1)
    .map((s) => s.name)
    .sort()
}

/** The last finite value of a series, or null. */
export function lastValue(s: MetricSeries | undefined): number | null {
  if (!s) return null
  for (let i = s.values.length - 1; i >= 0; i -= 1) {
    const v = s.values[i]
    if (v !== null && Number.isFinite(v)) return v
  }
  return null
}

/** Whether smaller is better for a metric, judged by its name. */
export function lowerIsBetter(name: string): boolean {
  return /loss|error|mae|mse|rmse|mape|smape|ratio|seconds|time/i.test(name)
}

// Settings and counts reported next to metrics, and p-values (a forecast's Diebold-Mariano
// test against a baseline, e.g. test_naive_dm_p): no value of them is "better".
const NEUTRAL = /^(lr|learning_rate|seed|epochs?|best_epoch|epochs_trained|num_.*|.*_size|.*_count|rows|samples|(.*_)?dm_p|(.*_)?p_value|significance_level)$/i

/** 'min' or 'max' when one value of this metric is better than another, else null. */
export function metricGoal(name: string): 'min' | 'max' | null {
  if (NEUTRAL.test(name)) return null
  return lowerIsBetter(name) ? 'min' : 'max'
}

/** The x-axis label for these series: "epoch" when every one counts epochs. */
export function xLabelFor(list: (MetricSeries | undefined)[]): string {
  const kinds = list.filter(Boolean).map((s) => s!.xKind)
  return kinds.length > 0 && kinds.every((k) => k === 'epoch') ? 'epoch' : 'step'
}
