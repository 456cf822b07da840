import { describe, expect, it } from 'vitest'
import { DEFAULT_FILTERS, describeTotal, filtersFromParams, filtersToParams, pageCount, parseTags, refilter, toggleSort, toQuery } from './filters'

describe('experiment filters', () => {
  it('round-trips through the URL, leaving defaults out', () => {
    const f = { ...DEFAULT_FILTERS, pipeline: 'image_classifier', status: ['running', 'failed'], tags: ['a', 'b'], search: 'digits', sort: 'name' as const, descending: false, page: 3, pageSize: 100 }
    const params = filtersToParams(f)
    expect(params.toString()).toBe('pipeline=image_classifier&status=running&status=failed&tag=a&tag=b&q=digits&sort=name&order=asc&page=3&size=100')
    expect(filtersFromParams(params)).toEqual(f)
    expect(filtersToParams(DEFAULT_FILTERS).toString()).toBe('')
  })

  it('ignores values the API would refuse', () => {
    const f = filtersFromParams(new URLSearchParams('status=bogus&status=queued&sort=drop&page=-2&size=7'))
    expect(f.status).toEqual(['queued'])
    expect(f.sort).toBe('created_at')
    expect(f.page).toBe(1)
    expect(f.pageSize).toBe(50)
  })

  it('keeps a page cursor in the URL only past the first page', () => {
    const f = { ...DEFAULT_FILTERS, page: 7, cursor: 'WyJjcmVhdGVkX2F0Il0' }
    const params = filtersToParams(f)
    expect(params.toString()).toBe('page=7&cursor=WyJjcmVhdGVkX2F0Il0')
    expect(filtersFromParams(params)).toEqual(f)
    expect(filtersToParams({ ...f, page: 1 }).toString()).toBe('')
  })

  it('pages by cursor, and by offset only for a page number without one (an old link)', () => {
    expect(toQuery({ ...DEFAULT_FILTERS, page: 4, pageSize: 25, cursor: 'c4' })).toMatchObject({ limit: 25, cursor: 'c4', offset: undefined })
    expect(toQuery({ ...DEFAULT_FILTERS, page: 4, pageSize: 25 })).toMatchObject({ limit: 25, cursor: undefined, offset: 75 })
    expect(toQuery({ ...DEFAULT_FILTERS, cursor: 'stale' })).toMatchObject({ cursor: undefined, offset: undefined })
    expect(refilter({ ...DEFAULT_FILTERS, page: 4, cursor: 'c4' }, { pipeline: 'x' })).toMatchObject({ pipeline: 'x', page: 1, cursor: '' })
    expect(describeTotal(120_000, false)).toBe('about 120,000 experiments')
    expect(describeTotal(1, true)).toBe('1 experiment')
    expect(describeTotal(1_234, true)).toBe('1,234 experiments')
    expect(pageCount(10_000, 50)).toBe(200)
    expect(pageCount(0, 50)).toBe(1)
    expect(pageCount(null, 50)).toBe(null)
  })

  it('sorts by a column, then flips it, and goes back to page 1', () => {
    const byName = toggleSort({ ...DEFAULT_FILTERS, page: 5, cursor: 'c5' }, 'name')
    expect(byName).toMatchObject({ sort: 'name', descending: false, page: 1, cursor: '' })
    expect(toggleSort(byName, 'name')).toMatchObject({ sort: 'name', descending: true })
  })

  it('parses tags', () => {
    expect(parseTags(' a, b  c,,a ')).toEqual(['a', 'b', 'c'])
  })
})
