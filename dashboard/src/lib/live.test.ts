import { describe, expect, it } from 'vitest'
import { parsePredictions, predictionsFromCsv } from './live'

describe('prediction events', () => {
  it('reads a forecaster payload with dates as time', () => {
    const p = parsePredictions({ epoch: 3, split: 'validation', target: 'temp_max', dates: ['2015-01-01', '2015-01-02'], actual: [1, 2], predicted: [1.5, null], naive: [0, 1] })!
    expect(p.time).toBe(true)
    expect(p.x).toEqual([1420070400, 1420156800])
    expect(p.predicted).toEqual([1.5, null])
    expect(p).toMatchObject({ epoch: 3, split: 'validation', target: 'temp_max' })
  })

  it('falls back to sample indexes', () => {
    expect(parsePredictions({ actual: [1, 2, 3], predicted: [1, 2] })!.x).toEqual([0, 1])
    expect(parsePredictions({ actual: [1] })).toBe(null)
  })

  it('reads the test split of predictions.csv', () => {
    const csv = 'date,split,actual,predicted,naive\n2015-01-01,val,1,1,1\n2015-01-02,test,2,2.5,1\n2015-01-03,test,3,2.9,2\n'
    const p = predictionsFromCsv(csv)!
    expect(p.actual).toEqual([2, 3])
    expect(p.predicted).toEqual([2.5, 2.9])
    expect(p.naive).toEqual([1, 2])
    expect(p.split).toBe('test')
  })
})
