import { describe, expect, it } from 'vitest'
import { etaSeconds, formatDuration, progressFraction } from './progress'

describe('progress', () => {
  it('combines epochs and steps within an epoch', () => {
    expect(progressFraction({ epoch: 1, total_epochs: 4, step: 5, total_steps: 10 })).toBe(0.125)
    expect(progressFraction({ epoch: 2, total_epochs: 4, step: null, total_steps: null })).toBe(0.5)
    expect(progressFraction({ epoch: 4, total_epochs: 4, step: 10, total_steps: 10 })).toBe(1)
    expect(progressFraction({ step: 30, total_steps: 120 })).toBe(0.25)
    expect(progressFraction({ epoch: 3 })).toBe(null)
    expect(progressFraction(null)).toBe(null)
  })

  it('extrapolates the time left', () => {
    expect(etaSeconds(0.25, 0, 10_000)).toBe(30)
    expect(etaSeconds(0, 0, 10_000)).toBe(null)
    expect(etaSeconds(1, 0, 10_000)).toBe(null)
    expect(etaSeconds(0.5, null, 10_000)).toBe(null)
  })

  it('formats durations', () => {
    expect([5, 65, 3725, null].map(formatDuration)).toEqual(['5s', '1m 05s', '1h 02m', '—'])
  })
})
