import { describe, expect, it } from 'vitest'
import type { StatusChange } from '../api/statusSocket'
import type { Experiment, ExperimentPage } from '../api/types'
import { DEFAULT_FILTERS } from './filters'
import { applyChange, needsRefetch, withChanges } from './liveTable'

const row = (id: string, status: Experiment['status'], seq: number): Experiment => ({
  id,
  name: id,
  pipeline_id: 'p',
  config: {},
  status,
  tags: [],
  created_at: '2026-11-27T10:00:00Z',
  started_at: null,
  finished_at: null,
  error: null,
  last_event_seq: seq,
})
const change = (id: string, status: Experiment['status'], seq: number, payload: Record<string, unknown> = {}): StatusChange => ({
  id,
  status,
  seq,
  time: '2026-11-27T10:05:00Z',
  payload: { status, ...payload },
})

describe('live table rows', () => {
  it('applies a newer change and ignores one the row already has', () => {
    const running = applyChange(row('a', 'queued', 1), change('a', 'running', 2))
    expect(running).toMatchObject({ status: 'running', last_event_seq: 2, started_at: '2026-11-27T10:05:00Z', finished_at: null })
    const failed = applyChange(running, change('a', 'failed', 9, { error: 'out of memory' }))
    expect(failed).toMatchObject({ status: 'failed', error: 'out of memory', finished_at: '2026-11-27T10:05:00Z' })
    const stale = row('b', 'succeeded', 40)
    expect(applyChange(stale, change('b', 'running', 2))).toBe(stale)
    expect(applyChange(stale, change('b', 'running', 40))).toBe(stale)
  })

  it('lays pushed changes over a page fetched before them', () => {
    const page: ExperimentPage = { items: [row('a', 'queued', 1), row('b', 'running', 5)], total: 2, total_exact: true, next_cursor: null, prev_cursor: null, offset: null, limit: 50 }
    const latest = new Map([
      ['a', change('a', 'running', 2)],
      ['b', change('b', 'queued', 3)], // older than the fetched row: the fetch wins
      ['z', change('z', 'failed', 7)], // not on this page
    ])
    const merged = withChanges(page, latest)
    expect(merged.items.map((e) => [e.id, e.status])).toEqual([
      ['a', 'running'],
      ['b', 'running'],
    ])
    expect(merged.items[1]).toBe(page.items[1])
    expect(withChanges(page, new Map())).toBe(page)
  })
})

describe('when a change needs the page again', () => {
  const newest = DEFAULT_FILTERS
  it('a row on the page changes in place, unless the page filters or sorts by status', () => {
    expect(needsRefetch(change('a', 'running', 2), true, newest, true)).toBe(false)
    expect(needsRefetch(change('a', 'running', 2), true, { ...newest, status: ['queued'] }, true)).toBe(true)
    expect(needsRefetch(change('a', 'running', 2), true, { ...newest, sort: 'status' }, false)).toBe(true)
  })

  it('a new run comes in at the top of the first page, or anywhere in other orders', () => {
    expect(needsRefetch(change('n', 'queued', 1), false, newest, true)).toBe(true)
    expect(needsRefetch(change('n', 'queued', 1), false, newest, false)).toBe(false)
    expect(needsRefetch(change('n', 'queued', 1), false, { ...newest, sort: 'name', descending: false }, false)).toBe(true)
    // a run elsewhere finishing: not on this page, and it cannot come onto it
    expect(needsRefetch(change('x', 'succeeded', 9), false, newest, true)).toBe(false)
  })

  it('a status the table filters for may bring a row in', () => {
    const runningOnly = { ...newest, status: ['running'] }
    expect(needsRefetch(change('x', 'running', 2), false, runningOnly, false)).toBe(true)
    expect(needsRefetch(change('x', 'queued', 1), false, runningOnly, true)).toBe(false)
  })
})
