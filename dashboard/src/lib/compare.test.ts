import { describe, expect, it } from 'vitest'
import type { Experiment } from '../api/types'
import { bestIndex, configDiff, curveNames, finalMetrics } from './compare'

const exp = (id: string, config: Record<string, unknown>, summary: Record<string, unknown> | null = null): Experiment => ({
  id,
  name: id,
  pipeline_id: 'p',
  config,
  status: 'succeeded',
  created_at: '2026-01-01T00:00:00Z',
  tags: [],
  summary,
})

describe('compare', () => {
  const items = [
    { experiment: exp('a', { lr: 0.1, opt: { name: 'adam' }, epochs: 2 }, { accuracy: 0.9, dataset: 'x' }), metrics: [{ name: 'loss', steps: [1, 2], values: [2, 1] }] },
    { experiment: exp('b', { lr: 0.01, opt: { name: 'sgd' }, epochs: 2 }, { accuracy: 0.95 }), metrics: [{ name: 'loss', steps: [1, 2], values: [2, 0.5] }, { name: 'test_loss', steps: [2], values: [0.7] }] },
  ]

  it('lists the config keys that differ', () => {
    const d = configDiff(items)
    expect(d.keys).toEqual(['epochs', 'lr', 'opt.name'])
    expect([...d.differing]).toEqual(['lr', 'opt.name'])
  })

  it('collects final values and picks the best per metric', () => {
    const f = finalMetrics(items)
    expect([...f.entries()]).toEqual([
      ['accuracy', [0.9, 0.95]],
      ['loss', [1, 0.5]],
      ['test_loss', [null, 0.7]],
    ])
    expect(bestIndex('loss', [1, 0.5])).toBe(1)
    expect(bestIndex('accuracy', [0.9, 0.95, null])).toBe(1)
    expect(bestIndex('test_loss', [null, 0.7])).toBe(null)
    expect(bestIndex('accuracy', [0.9, 0.9])).toBe(null) // a tie has no winner
    expect(bestIndex('lr', [0.1, 0.01])).toBe(null) // a setting, not a score
    expect(bestIndex('test_size', [10, 12])).toBe(null)
    // a forecast's DM p-values against its baselines test a difference; they score nothing
    expect(bestIndex('dm_p', [0.058, 3.5e-10])).toBe(null)
    expect(bestIndex('test_naive_dm_p', [0.87, 0.01])).toBe(null)
    expect(bestIndex('test_naive_mae', [13.09, 2.25])).toBe(1)
    expect(curveNames(items)).toEqual(['loss'])
  })
})
