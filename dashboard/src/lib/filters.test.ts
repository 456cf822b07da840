import { describe, expect, it } from 'vitest'
import { DEFAULT_FILTERS, filtersFromParams, filtersToParams, pageCount, parseTags, toggleSort, toQuery } from './filters'

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

  it('pages with offsets', () => {
    expect(toQuery({ ...DEFAULT_FILTERS, page: 4, pageSize: 25 })).toMatchObject({ limit: 25, offset: 75 })
    expect(pageCount(10_000, 50)).toBe(200)
    expect(pageCount(0, 50)).toBe(1)
    expect(pageCount(null, 50)).toBe(null)
  })

  it('sorts by a column, then flips it, and goes back to page 1', () => {
    const byName = toggleSort({ ...DEFAULT_FILTERS, page: 5 }, 'name')
    expect(byName).toMatchObject({ sort: 'name', descending: false, page: 1 })
    expect(toggleSort(byName, 'name')).toMatchObject({ sort: 'name', descending: true })
  })

  it('parses tags', () => {
    expect(parseTags(' a, b  c,,a ')).toEqual(['a', 'b', 'c'])
  })
})
