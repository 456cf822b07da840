// The experiments table's filter state, kept in the URL so a view can be shared and the
// back button works. Pages are keyset pages: `cursor` (from the API's next_cursor or
// prev_cursor) says where a page starts, `page` only numbers it for the reader.
import type { ExperimentQuery } from '../api/client'
import { STATUSES } from '../api/types'

export const SORT_FIELDS = ['created_at', 'name', 'pipeline_id', 'status'] as const
export type SortField = (typeof SORT_FIELDS)[number]

export const PAGE_SIZES = [25, 50, 100, 200] as const

export interface ExperimentFilters {
  pipeline: string
  status: string[]
  tags: string[]
  search: string
  sort: SortField
  descending: boolean
  page: number
  pageSize: number
  /** Where this page starts (a keyset cursor); '' on the first page. */
  cursor: string
}

export const DEFAULT_FILTERS: ExperimentFilters = {
  pipeline: '',
  status: [],
  tags: [],
  search: '',
  sort: 'created_at',
  descending: true,
  page: 1,
  pageSize: 50,
  cursor: '',
}

/** "a, b  c" -> ["a", "b", "c"] (tags are single words or dashed names). */
export function parseTags(text: string): string[] {
  return Array.from(new Set(text.split(/[,\s]+/).map((t) => t.trim()).filter(Boolean)))
}

export function filtersFromParams(params: URLSearchParams): ExperimentFilters {
  const sort = params.get('sort')
  const page = Number(params.get('page'))
  const size = Number(params.get('size'))
  return {
    pipeline: params.get('pipeline') ?? '',
    status: params.getAll('status').filter((s) => (STATUSES as string[]).includes(s)),
    tags: params.getAll('tag').filter(Boolean),
    search: params.get('q') ?? '',
    sort: (SORT_FIELDS as readonly string[]).includes(sort ?? '') ? (sort as SortField) : 'created_at',
    descending: params.get('order') !== 'asc',
    page: Number.isInteger(page) && page >= 1 ? page : 1,
    pageSize: (PAGE_SIZES as readonly number[]).includes(size) ? size : DEFAULT_FILTERS.pageSize,
    cursor: params.get('cursor') ?? '',
  }
}

/** Only what differs from the defaults goes into the URL. */
export function filtersToParams(f: ExperimentFilters): URLSearchParams {
  const p = new URLSearchParams()
  if (f.pipeline) p.set('pipeline', f.pipeline)
  f.status.forEach((s) => p.append('status', s))
  f.tags.forEach((t) => p.append('tag', t))
  if (f.search.trim()) p.set('q', f.search.trim())
  if (f.sort !== DEFAULT_FILTERS.sort) p.set('sort', f.sort)
  if (!f.descending) p.set('order', 'asc')
  if (f.page > 1) p.set('page', String(f.page))
  if (f.pageSize !== DEFAULT_FILTERS.pageSize) p.set('size', String(f.pageSize))
  if (f.page > 1 && f.cursor) p.set('cursor', f.cursor)
  return p
}

export function toQuery(f: ExperimentFilters): ExperimentQuery {
  return {
    pipeline: f.pipeline || undefined,
    status: f.status,
    tags: f.tags,
    search: f.search,
    sort: f.sort,
    descending: f.descending,
    limit: f.pageSize,
    // a page number without a cursor (an old link) still finds its page, by offset
    cursor: f.page > 1 && f.cursor ? f.cursor : undefined,
    offset: f.page > 1 && !f.cursor ? (f.page - 1) * f.pageSize : undefined,
  }
}

/** Clicking a column header: same column flips the order, another column sorts by it. */
export function toggleSort(f: ExperimentFilters, field: SortField): ExperimentFilters {
  if (f.sort === field) return { ...f, descending: !f.descending, page: 1, cursor: '' }
  return { ...f, sort: field, descending: field === 'created_at', page: 1, cursor: '' }
}

/** Other filters: back to the first page (a cursor belongs to one filter and sort). */
export function refilter(f: ExperimentFilters, changes: Partial<ExperimentFilters>): ExperimentFilters {
  return { ...f, ...changes, page: 1, cursor: '' }
}

export function pageCount(total: number | null, pageSize: number): number | null {
  if (total === null) return null
  return Math.max(1, Math.ceil(total / pageSize))
}

/** "1,234 experiments", or "about 120,000 experiments" for an estimate. */
export function describeTotal(total: number, exact: boolean): string {
  const noun = total === 1 && exact ? 'experiment' : 'experiments'
  return `${exact ? '' : 'about '}${total.toLocaleString('en-US')} ${noun}`
}
