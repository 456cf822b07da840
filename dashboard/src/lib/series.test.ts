import { describe, expect, it } from 'vitest'
import type { EventMessage } from '../api/types'
import { alignSeries, applyEvent, applyEvents, lossNames, storeFromHistory, upsertPoint, xLabelFor } from './series'

const metrics = (seq: number, epoch: number, values: Record<string, number | null>): EventMessage => ({
  seq,
  type: 'metrics',
  payload: { step: null, epoch, values },
})

describe('live metric store', () => {
  it('appends live points in order, one per step', () => {
    const store = storeFromHistory([], 0)
    applyEvent(store, metrics(1, 1, { loss: 2.0, val_loss: 2.5 }))
    applyEvent(store, { seq: 2, type: 'progress', payload: { epoch: 1 } })
    applyEvent(store, metrics(3, 2, { loss: 1.5, val_loss: 2.0 }))
    expect(store.series.get('loss')).toEqual({ name: 'loss', steps: [1, 2], values: [2.0, 1.5], xKind: 'epoch' })
    expect(store.series.get('val_loss')?.values).toEqual([2.5, 2.0])
    expect(store.lastSeq).toBe(3)
    expect(store.version).toBe(3)
  })

  it('merges history and live events without duplicates by seq or step', () => {
    // history read when the experiment's last seq was 10: epochs 1-3 are in it
    const store = storeFromHistory([{ name: 'loss', steps: [1, 2, 3], values: [3, 2, 1] }], 10)
    // the socket replays an event the history already holds (seq <= 10): ignored
    expect(applyEvent(store, metrics(9, 3, { loss: 99 }))).toBe(false)
    // a point written between the history read and the socket's backlog: same step, replaced once
    expect(applyEvent(store, metrics(11, 3, { loss: 1 }))).toBe(true)
    expect(applyEvent(store, metrics(12, 4, { loss: 0.5 }))).toBe(true)
    // the same event again after a reconnect: ignored
    expect(applyEvent(store, metrics(12, 4, { loss: 0.5 }))).toBe(false)
    expect(store.series.get('loss')).toEqual({ name: 'loss', steps: [1, 2, 3, 4], values: [3, 2, 1, 0.5] })
  })

  it('applies an out-of-order backlog by seq and keeps NaN as a gap', () => {
    const store = storeFromHistory([], 0)
    const changed = applyEvents(store, [metrics(3, 3, { loss: 1 }), metrics(1, 1, { loss: 3 }), metrics(2, 2, { loss: null })])
    expect(changed).toBe(3)
    expect(store.series.get('loss')).toEqual({ name: 'loss', steps: [1, 2, 3], values: [3, null, 1], xKind: 'epoch' })
  })

  it('uses step before epoch for the x position', () => {
    const store = storeFromHistory([], 0)
    applyEvent(store, { seq: 1, type: 'metrics', payload: { step: 500, epoch: 2, values: { loss: 1 } } })
    expect(store.series.get('loss')?.steps).toEqual([500])
    expect(xLabelFor([store.series.get('loss')])).toBe('step')
  })

  it('upserts into the middle', () => {
    const s = { name: 'x', steps: [1, 3, 5], values: [1, 3, 5] as (number | null)[] }
    upsertPoint(s, 4, 4)
    upsertPoint(s, 3, 30)
    upsertPoint(s, 0, 0)
    expect(s).toEqual({ name: 'x', steps: [0, 1, 3, 4, 5], values: [0, 1, 30, 4, 5] })
  })
})

describe('alignSeries', () => {
  it('shares x when the series agree', () => {
    expect(alignSeries([
      { name: 'loss', steps: [1, 2], values: [2, 1] },
      { name: 'val_loss', steps: [1, 2], values: [3, 2] },
    ])).toEqual([[1, 2], [2, 1], [3, 2]])
  })

  it('fills gaps with null on the union of x values', () => {
    expect(alignSeries([
      { name: 'a', steps: [1, 3], values: [10, 30] },
      { name: 'b', steps: [2, 3, 4], values: [20, 31, 40] },
    ])).toEqual([[1, 2, 3, 4], [10, null, 30, null], [null, 20, 31, 40]])
  })

  it('orders loss names train first', () => {
    expect(lossNames(['val_loss', 'accuracy', 'test_loss', 'loss', 'aux_loss'])).toEqual(['loss', 'val_loss', 'aux_loss'])
  })
})
