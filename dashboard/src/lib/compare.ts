// Comparing experiments: config differences, final metrics and the best value per metric.
import type { Experiment, MetricSeries } from '../api/types'
import { flatten } from './format'
import { lastValue, metricGoal } from './series'

export interface CompareItem {
  experiment: Experiment
  metrics: MetricSeries[]
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

/** Config keys (dotted) whose values are not all equal, and all keys. */
export function configDiff(items: CompareItem[]): { keys: string[]; differing: Set<string>; flat: Record<string, unknown>[] } {
  const flat = items.map((i) => flatten(i.experiment.config))
  const keys = Array.from(new Set(flat.flatMap((f) => Object.keys(f)))).sort()
  const differing = new Set(keys.filter((k) => flat.some((f) => !same(f[k], flat[0][k]))))
  return { keys, differing, flat }
}

/** name -> final value per item: last metric point, else the summary's number. */
export function finalMetrics(items: CompareItem[]): Map<string, (number | null)[]> {
  const out = new Map<string, (number | null)[]>()
  items.forEach((item, i) => {
    const put = (name: string, v: number | null) => {
      if (!out.has(name)) out.set(name, new Array(items.length).fill(null))
      const row = out.get(name)!
      if (row[i] === null) row[i] = v
    }
    for (const s of item.metrics) put(s.name, lastValue(s))
    for (const [k, v] of Object.entries(item.experiment.summary ?? {})) {
      if (typeof v === 'number' && Number.isFinite(v)) put(k, v)
    }
  })
  return new Map([...out.entries()].sort((a, b) => a[0].localeCompare(b[0])))
}

/**
 * Index of the single best value (lowest for losses/errors, else highest); null when fewer
 * than two values exist, when the best is tied, or when the name is a setting or a count.
 */
export function bestIndex(name: string, values: (number | null)[]): number | null {
  const goal = metricGoal(name)
  const present = values.filter((v): v is number => v !== null)
  if (goal === null || present.length < 2) return null
  const target = goal === 'min' ? Math.min(...present) : Math.max(...present)
  const winners = values.flatMap((v, i) => (v === target ? [i] : []))
  return winners.length === 1 ? winners[0] : null
}

/** Metric names with a curve (2+ points) in at least one experiment. */
export function curveNames(items: CompareItem[]): string[] {
  const names = new Set<string>()
  for (const i of items) for (const s of i.metrics) if (s.steps.length > 1) names.add(s.name)
  const rank = (n: string) => (n === 'loss' ? 0 : n === 'val_loss' ? 1 : /loss/.test(n) ? 2 : 3)
  return [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
}
