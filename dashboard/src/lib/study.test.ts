import { describe, expect, it } from 'vitest'
import type { EventMessage, Experiment } from '../api/types'
import {
  applyStudyEvent,
  bestConfig,
  countTrials,
  currentBest,
  EMPTY_STUDY,
  historyData,
  importanceList,
  mergeSummary,
  paramNames,
  studyFromSummary,
  type StudyView,
} from './study'

let seq = 0
function trialEvent(number: number, state: string, value: number | null, best: [number | null, number | null], extra: Record<string, unknown> = {}): EventMessage {
  seq += 1
  return {
    seq,
    type: 'trial',
    payload: { number, experiment_id: `exp${number}`, params: { lr: 0.01 * (number + 1) }, state, value, error: null, epochs: state === 'running' ? 0 : 2, duration_s: state === 'running' ? null : 3.5, best_number: best[0], best_value: best[1], ...extra },
  }
}
const other = (type: string): EventMessage => ({ seq: (seq += 1), type, payload: { values: { value: 1 }, step: 0 } })

function replay(events: EventMessage[], from: StudyView = EMPTY_STUDY): StudyView {
  return events.reduce(applyStudyEvent, from)
}

describe('the study view from trial events', () => {
  const events = [
    trialEvent(0, 'running', null, [null, null]),
    trialEvent(1, 'running', null, [null, null]),
    other('log'),
    trialEvent(1, 'complete', 0.9, [1, 0.9]),
    other('metrics'),
    trialEvent(0, 'pruned', null, [1, 0.9], { error: 'pruned after epoch 1' }),
    trialEvent(2, 'running', null, [1, 0.9]),
    trialEvent(2, 'complete', 0.95, [2, 0.95]),
    trialEvent(3, 'running', null, [2, 0.95]),
  ]
  const view = replay(events)

  it('keeps one row per trial, in number order, with its latest state', () => {
    expect(view.trials.map((t) => `${t.number}:${t.state}:${t.value}`)).toEqual(['0:pruned:null', '1:complete:0.9', '2:complete:0.95', '3:running:null'])
    expect(view.trials[0]).toMatchObject({ experiment_id: 'exp0', error: 'pruned after epoch 1', epochs: 2, duration_s: 3.5 })
    expect(view.lastSeq).toBe(events[events.length - 1].seq)
  })

  it("tracks the study's reported best", () => {
    expect([view.bestNumber, view.bestValue]).toEqual([2, 0.95])
    expect(currentBest(view, 'maximize')?.experiment_id).toBe('exp2')
  })

  it('ignores replays (a reconnect that sends events again) and returns the same object', () => {
    expect(replay(events, view)).toBe(view)
  })

  it('the backlog applied in two parts (a reconnect mid-way) ends in the same view', () => {
    const half = replay(events.slice(0, 4))
    expect(half.trials.map((t) => t.state)).toEqual(['running', 'complete'])
    expect(replay(events.slice(4), half)).toEqual(view)
  })

  it('skips malformed trial payloads but advances the seq', () => {
    const bad: EventMessage = { seq: 10_000, type: 'trial', payload: { number: 'x', state: 'complete' } }
    const next = applyStudyEvent(view, bad)
    expect(next.trials).toBe(view.trials)
    expect(next.lastSeq).toBe(10_000)
  })

  it('counts the states', () => {
    expect(countTrials(view.trials)).toEqual({ running: 1, complete: 2, pruned: 1, failed: 0, finished: 3 })
  })
})

describe('the optimization history', () => {
  it('has one point per finished trial, its value, and the best so far', () => {
    const view = replay([
      trialEvent(0, 'complete', 0.5, [0, 0.5]),
      trialEvent(2, 'complete', 0.3, [2, 0.3]),
      trialEvent(1, 'failed', null, [2, 0.3]),
      trialEvent(3, 'running', null, [2, 0.3]),
      trialEvent(4, 'complete', 0.4, [2, 0.3]),
    ])
    expect(historyData(view.trials, 'minimize')).toEqual([
      [0, 1, 2, 4],
      [0.5, null, 0.3, 0.4],
      [0.5, 0.5, 0.3, 0.3],
    ])
    expect(historyData(view.trials, 'maximize')[2]).toEqual([0.5, 0.5, 0.5, 0.5])
  })

  it('is empty before any trial finishes', () => {
    expect(historyData(replay([trialEvent(0, 'running', null, [null, null])]).trials, 'maximize')).toEqual([[], [], []])
  })
})

describe('a finished study', () => {
  const summary = {
    best_trial: 1,
    best_value: 0.2,
    best_config: { epochs: 2, lr: 0.02 },
    importances: { lr: 0.25, epochs: 0.75, junk: 'x' },
    trials: [
      { number: 1, experiment_id: 'b', params: { lr: 0.02 }, state: 'complete', value: 0.2, error: null, epochs: 2, duration_s: 4 },
      { number: 0, experiment_id: 'a', params: { lr: 0.01 }, state: 'complete', value: 0.3, error: null, epochs: 2, duration_s: 5 },
    ],
  }

  it('reads its view from the summary', () => {
    const view = studyFromSummary(summary)!
    expect(view.trials.map((t) => t.number)).toEqual([0, 1])
    expect([view.bestNumber, view.bestValue]).toEqual([1, 0.2])
    expect(studyFromSummary(null)).toBe(null)
    expect(studyFromSummary({ best_value: 1 })).toBe(null)
  })

  it('lays the summary over what the events built', () => {
    const live = replay([trialEvent(0, 'running', null, [null, null]), trialEvent(1, 'running', null, [null, null])])
    const merged = mergeSummary(live, summary)
    expect(merged.trials.map((t) => t.state)).toEqual(['complete', 'complete'])
    expect(merged.bestNumber).toBe(1)
    expect(merged.lastSeq).toBe(live.lastSeq)
  })

  it('lists importances largest first, numbers only', () => {
    expect(importanceList(summary)).toEqual([
      ['epochs', 0.75],
      ['lr', 0.25],
    ])
    expect(importanceList({})).toEqual([])
  })
})

describe('the best configuration', () => {
  const study = (summary: Record<string, unknown> | null): Experiment => ({
    id: 's',
    name: 'study',
    pipeline_id: 'hyper_tuner',
    status: 'running',
    created_at: '',
    tags: [],
    summary,
    config: { target: 'image_classifier', space: { lr: {}, epochs: {} }, base_config: { dataset: 'digits_8x8', epochs: 2 } },
  })

  it("is the summary's once the study is done", () => {
    expect(bestConfig(study({ best_config: { a: 1 } }), null)).toEqual({ a: 1 })
  })

  it("is the fixed settings with the best trial's parameters while it runs", () => {
    const view = replay([trialEvent(0, 'complete', 0.5, [0, 0.5])])
    expect(bestConfig(study(null), currentBest(view, 'maximize'))).toEqual({ dataset: 'digits_8x8', epochs: 2, lr: 0.01 })
    expect(bestConfig(study(null), null)).toBe(null)
  })

  it('names the tuned parameters from the space', () => {
    expect(paramNames(study(null).config, [])).toEqual(['lr', 'epochs'])
    expect(paramNames({}, replay([trialEvent(0, 'running', null, [null, null])]).trials)).toEqual(['lr'])
  })
})
