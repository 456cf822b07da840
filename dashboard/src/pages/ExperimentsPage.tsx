import { useCallback, useEffect, useMemo, useRef, useState } from 'react'
import { Link, useNavigate, useSearchParams } from 'react-router'
import { api } from '../api/client'
import type { SocketFactory } from '../api/socket'
import type { StatusChange } from '../api/statusSocket'
import { STATUSES, type ExperimentPage } from '../api/types'
import { ErrorBanner, StatusBadge } from '../components/common'
import { usePermissions } from '../lib/auth'
import { formatDate } from '../lib/format'
import {
  describeTotal,
  filtersFromParams,
  filtersToParams,
  PAGE_SIZES,
  pageCount,
  parseTags,
  refilter,
  toggleSort,
  toQuery,
  type ExperimentFilters,
  type SortField,
} from '../lib/filters'
import { useAsync, useInterval } from '../lib/hooks'
import { needsRefetch, useStatusStream, withChanges } from '../lib/liveTable'

/** While the status stream is down, the page is refetched this often instead. */
export const FALLBACK_POLL_MS = 30_000
/** A burst of changes that add or remove rows costs one refetch, this long after the first. */
export const REFETCH_DEBOUNCE_MS = 1000
/** Pushed changes remembered (newest kept) to lay over pages fetched meanwhile. */
const REMEMBERED_CHANGES = 2000

export function ExperimentsPage({ socketFactory }: { socketFactory?: SocketFactory } = {}) {
  const [params, setParams] = useSearchParams()
  const navigate = useNavigate()
  const filters = useMemo(() => filtersFromParams(params), [params])
  const setFilters = (f: ExperimentFilters) => setParams(filtersToParams(f), { replace: true })
  const key = params.toString()
  const [page, setPage] = useState<ExperimentPage | null>(null)
  const [selected, setSelected] = useState<Set<string>>(new Set())
  const [searchText, setSearchText] = useState(filters.search)
  const [tagText, setTagText] = useState(filters.tags.join(', '))
  const [actionError, setActionError] = useState<unknown>(null)
  const pipelines = useAsync((signal) => api.pipelines(signal), [])
  const list = useAsync((signal) => api.experiments(toQuery(filters), signal), [key])
  const perms = usePermissions()
  // owners of every row seen, so a selection across pages knows what it may delete
  const owners = useRef(new Map<string, string | null | undefined>())

  useEffect(() => {
    document.title = 'Experiments · AzuraForge'
  }, [])
  // Live status, pushed: rows change in place; a change that may add or remove rows (a new
  // run, a status the table filters by) refetches the page, debounced. Each (re)subscription
  // refetches too (changes before it were not pushed), and while the stream is down the page
  // is polled slowly instead.
  const latest = useRef(new Map<string, StatusChange>())
  const { reload } = list
  const refetchTimer = useRef<ReturnType<typeof setTimeout> | null>(null)
  const scheduleRefetch = useCallback(() => {
    if (refetchTimer.current !== null) return // the refetch already planned comes after this change
    refetchTimer.current = setTimeout(() => {
      refetchTimer.current = null
      reload()
    }, REFETCH_DEBOUNCE_MS)
  }, [reload])
  useEffect(
    () => () => {
      if (refetchTimer.current !== null) clearTimeout(refetchTimer.current)
    },
    [],
  )
  useEffect(() => {
    if (!list.data) return
    setPage(withChanges(list.data, latest.current))
    for (const e of list.data.items) owners.current.set(e.id, e.owner)
  }, [list.data])
  const current = useRef({ page, filters })
  current.current = { page, filters }
  const connection = useStatusStream(
    {
      onChange: (change) => {
        const known = latest.current.get(change.id)
        if (known && known.seq >= change.seq) return
        latest.current.delete(change.id) // re-inserted last: the map forgets the oldest first
        latest.current.set(change.id, change)
        if (latest.current.size > REMEMBERED_CHANGES) latest.current.delete(latest.current.keys().next().value!)
        const shown = current.current.page?.items.some((e) => e.id === change.id) ?? false
        if (shown) setPage((old) => old && withChanges(old, new Map([[change.id, change]])))
        if (needsRefetch(change, shown, current.current.filters, !current.current.page?.prev_cursor)) scheduleRefetch()
      },
      onSubscribed: reload,
    },
    socketFactory,
  )
  useInterval(reload, FALLBACK_POLL_MS, connection !== 'open')

  // Debounce the search box into the URL.
  useEffect(() => {
    if (searchText === filters.search) return
    const id = setTimeout(() => setFilters(refilter(filters, { search: searchText })), 300)
    return () => clearTimeout(id)
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [searchText])

  const items = page?.items ?? []
  const pages = pageCount(page?.total ?? null, filters.pageSize)
  const pageNumber = page && !page.prev_cursor ? 1 : filters.page
  const goTo = (cursor: string | null, number: number) =>
    setFilters(number <= 1 || !cursor ? { ...filters, page: 1, cursor: '' } : { ...filters, page: number, cursor })
  const toggle = (id: string) =>
    setSelected((old) => {
      const next = new Set(old)
      if (next.has(id)) next.delete(id)
      else next.add(id)
      return next
    })
  const notMine = [...selected].filter((id) => !perms.canManage(owners.current.get(id)))
  const deleteReason = notMine.length
    ? `You can delete only your own experiments; ${notMine.length} of the selected ${notMine.length === 1 ? 'is' : 'are'} not yours.`
    : null
  const allOnPage = items.length > 0 && items.every((e) => selected.has(e.id))
  const sortHeader = (field: SortField, label: string) => {
    const activeSort = filters.sort === field
    return (
      <th scope="col" aria-sort={activeSort ? (filters.descending ? 'descending' : 'ascending') : 'none'}>
        <button type="button" className="th-sort" onClick={() => setFilters(toggleSort(filters, field))} data-testid={`sort-${field}`}>
          {label}
          <span aria-hidden="true">{activeSort ? (filters.descending ? ' ▼' : ' ▲') : ''}</span>
        </button>
      </th>
    )
  }

  async function deleteSelected() {
    const ids = [...selected]
    if (!ids.length || !window.confirm(`Delete ${ids.length} experiment(s) and their artifacts?`)) return
    setActionError(null)
    for (const id of ids) {
      try {
        await api.deleteExperiment(id)
      } catch (err) {
        setActionError(err)
      }
    }
    setSelected(new Set())
    list.reload()
  }

  return (
    <div className="page">
      <div className="page-head">
        <h1>Experiments</h1>
        {perms.canRun && (
          <Link className="btn btn-primary" to="/pipelines" data-testid="new-experiment">
            New experiment
          </Link>
        )}
      </div>
      <div className="card filters" role="search">
        <div className="field">
          <label htmlFor="f-search">Search</label>
          <input id="f-search" type="search" data-testid="filter-search" placeholder="name or id" value={searchText} onChange={(e) => setSearchText(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="f-pipeline">Pipeline</label>
          <select id="f-pipeline" data-testid="filter-pipeline" value={filters.pipeline} onChange={(e) => setFilters(refilter(filters, { pipeline: e.target.value }))}>
            <option value="">all</option>
            {(pipelines.data ?? []).map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="f-status">Status</label>
          <select id="f-status" data-testid="filter-status" value={filters.status[0] ?? ''} onChange={(e) => setFilters(refilter(filters, { status: e.target.value ? [e.target.value] : [] }))}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="f-tags">Tags</label>
          <input
            id="f-tags"
            type="text"
            data-testid="filter-tags"
            placeholder="all of: a, b"
            value={tagText}
            onChange={(e) => setTagText(e.target.value)}
            onBlur={() => setFilters(refilter(filters, { tags: parseTags(tagText) }))}
            onKeyDown={(e) => {
              if (e.key === 'Enter') setFilters(refilter(filters, { tags: parseTags(tagText) }))
            }}
          />
        </div>
      </div>

      <div className="toolbar">
        <span className="muted" data-testid="result-count">
          {page?.total != null ? describeTotal(page.total, page.total_exact) : `${items.length} shown`}
        </span>
        <span
          className={`conn conn-${connection}`}
          data-testid="table-connection"
          title={connection === 'open' ? 'status changes arrive as they happen' : 'the live stream is down: refreshed every 30 s'}
        >
          {connection === 'open' ? '● live' : '○ every 30 s'}
        </span>
        <span className="muted">{selected.size ? `${selected.size} selected` : ''}</span>
        <button
          type="button"
          className="btn"
          data-testid="compare-selected"
          disabled={selected.size < 2 || selected.size > 8}
          title="select 2 to 8 experiments"
          onClick={() => navigate(`/compare?ids=${[...selected].map(encodeURIComponent).join(',')}`)}
        >
          Compare ({selected.size})
        </button>
        {perms.canRun && (
          <button
            type="button"
            className="btn btn-danger"
            data-testid="delete-selected"
            disabled={!selected.size || notMine.length > 0}
            title={deleteReason ?? undefined}
            aria-describedby={deleteReason ? 'delete-reason' : undefined}
            onClick={deleteSelected}
          >
            Delete
          </button>
        )}
        {selected.size > 0 && (
          <button type="button" className="btn btn-link" onClick={() => setSelected(new Set())}>
            Clear selection
          </button>
        )}
      </div>
      {deleteReason && selected.size > 0 && perms.canRun && (
        <p className="reason" id="delete-reason" data-testid="delete-reason">
          {deleteReason}
        </p>
      )}
      <ErrorBanner error={list.error ?? actionError} onRetry={list.reload} />

      <div className="table-scroll card">
        <table className="table" data-testid="experiments-table">
          <thead>
            <tr>
              <th scope="col" className="col-check">
                <input
                  type="checkbox"
                  aria-label="select all on this page"
                  checked={allOnPage}
                  onChange={() =>
                    setSelected((old) => {
                      const next = new Set(old)
                      items.forEach((e) => (allOnPage ? next.delete(e.id) : next.add(e.id)))
                      return next
                    })
                  }
                />
              </th>
              {sortHeader('name', 'Name')}
              {sortHeader('pipeline_id', 'Pipeline')}
              {sortHeader('status', 'Status')}
              <th scope="col">Tags</th>
              <th scope="col">Owner</th>
              {sortHeader('created_at', 'Created')}
            </tr>
          </thead>
          <tbody>
            {items.map((e) => (
              <tr key={e.id} data-testid={`row-${e.id}`} className={selected.has(e.id) ? 'selected' : ''}>
                <td className="col-check">
                  <input type="checkbox" aria-label={`select ${e.name}`} checked={selected.has(e.id)} onChange={() => toggle(e.id)} data-testid={`select-${e.id}`} />
                </td>
                <td>
                  <Link to={`/experiments/${encodeURIComponent(e.id)}`} data-testid={`link-${e.id}`}>
                    {e.name}
                  </Link>
                  <div className="muted small mono">{e.id}</div>
                </td>
                <td>{e.pipeline_id}</td>
                <td>
                  <StatusBadge status={e.status} testId={`status-${e.id}`} />
                </td>
                <td>
                  {e.tags.map((t) => (
                    <button key={t} type="button" className="chip chip-button" onClick={() => { setTagText(t); setFilters(refilter(filters, { tags: [t] })) }}>
                      {t}
                    </button>
                  ))}
                </td>
                <td data-testid={`owner-${e.id}`}>{e.owner ?? <span className="muted">—</span>}</td>
                <td className="nowrap">{formatDate(e.created_at)}</td>
              </tr>
            ))}
            {page && items.length === 0 && (
              <tr>
                <td colSpan={7} className="empty" data-testid="empty">
                  No experiments match.{' '}
                  {perms.canRun && (
                    <>
                      <Link to="/pipelines">Launch one</Link>.
                    </>
                  )}
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>

      <div className="pager" aria-label="pagination">
        <button type="button" className="btn" disabled={!page?.prev_cursor} onClick={() => goTo(page?.prev_cursor ?? null, pageNumber - 1)} data-testid="prev-page">
          ← Previous
        </button>
        <span data-testid="page-info">
          Page {pageNumber.toLocaleString('en-US')}
          {pages ? ` of ${page?.total_exact ? '' : 'about '}${Math.max(pages, pageNumber).toLocaleString('en-US')}` : ''}
        </span>
        <button type="button" className="btn" disabled={!page?.next_cursor} onClick={() => goTo(page?.next_cursor ?? null, pageNumber + 1)} data-testid="next-page">
          Next →
        </button>
        <label className="muted small">
          Rows{' '}
          <select value={filters.pageSize} onChange={(e) => setFilters(refilter(filters, { pageSize: Number(e.target.value) }))}>
            {PAGE_SIZES.map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        </label>
      </div>
    </div>
  )
}
