import { act, render, screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { MemoryRouter, Route, Routes, useLocation } from 'react-router'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { SocketFactory } from '../api/socket'
import { socketFactory } from '../test/fakeSocket'
import { fakeFetch, type FakeCall } from '../test/fixtures'
import { ExperimentsPage, FALLBACK_POLL_MS, REFETCH_DEBOUNCE_MS } from './ExperimentsPage'

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
  vi.useRealTimers()
})

const row = (id: string, status: string, pipeline = 'image_classifier', tags: string[] = []) => ({
  id,
  name: `run ${id}`,
  pipeline_id: pipeline,
  pipeline_version: '0.1.0',
  status,
  tags,
  created_at: '2026-11-27T10:00:00Z',
  updated_at: '2026-11-27T10:00:00Z',
  started_at: null,
  finished_at: null,
  attempts: 0,
  max_attempts: 1,
  error: null,
  summary: null,
  parent_id: null,
  owner: 'max',
  last_event_seq: 3,
})

const ROWS = [row('a1', 'running', 'image_classifier', ['smoke']), row('b2', 'succeeded', 'weather_forecaster'), row('c3', 'failed', 'stock_predictor')]

function answer({ url }: FakeCall) {
  if (url === '/api/v1/auth/ws-token') return { body: { token: 'ws-tok', expires_in: 60 } }
  if (url.startsWith('/api/v1/pipelines')) return { body: { items: [{ id: 'image_classifier', name: 'Image Classifier', description: '', installed: true, version: '0.1.0' }, { id: 'weather_forecaster', name: 'Weather Forecaster', description: '', installed: true, version: '0.1.0' }] } }
  if (url.startsWith('/api/v1/experiments')) {
    const params = new URL(url, 'http://x').searchParams
    const pipeline = params.get('pipeline_id')
    const statuses = params.getAll('status')
    const q = params.get('q')
    const items = ROWS.filter((r) => (!pipeline || r.pipeline_id === pipeline) && (!statuses.length || statuses.includes(r.status)) && (!q || r.name.includes(q)))
    return { body: { items, next_cursor: null, total: items.length, limit: 50 } }
  }
  return undefined
}

function Where() {
  const loc = useLocation()
  return <div data-testid="location">{loc.pathname + loc.search}</div>
}

function renderPage(url = '/experiments', factory: SocketFactory = socketFactory().factory) {
  return render(
    <MemoryRouter initialEntries={[url]}>
      <Routes>
        <Route path="/experiments" element={<ExperimentsPage socketFactory={factory} />} />
        <Route path="/compare" element={<div data-testid="compare-page">compare</div>} />
      </Routes>
      <Where />
    </MemoryRouter>,
  )
}

describe('experiments table', () => {
  it('lists experiments with their status', async () => {
    fakeFetch(answer)
    renderPage()
    expect(await screen.findByTestId('status-a1')).toHaveTextContent(/^running$/)
    expect(screen.getByTestId('status-b2')).toHaveTextContent(/^succeeded$/)
    expect(screen.getByTestId('result-count')).toHaveTextContent(/^3 experiments$/)
    expect(screen.getByTestId('prev-page')).toBeDisabled()
    expect(screen.getByTestId('next-page')).toBeDisabled()
    expect(screen.getByTestId('page-info')).toHaveTextContent(/^Page 1 of 1$/)
  })

  it('filters by pipeline and status through the API and keeps them in the URL', async () => {
    const calls = fakeFetch(answer)
    const user = userEvent.setup()
    renderPage()
    await screen.findByTestId('row-c3')
    await screen.findByRole('option', { name: 'Weather Forecaster' })
    await user.selectOptions(screen.getByTestId('filter-pipeline'), 'weather_forecaster')
    await waitFor(() => expect(screen.queryByTestId('row-a1')).toBeNull())
    expect(screen.getByTestId('row-b2')).toBeInTheDocument()
    expect(screen.getByTestId('location')).toHaveTextContent(/^\/experiments\?pipeline=weather_forecaster$/)
    await user.selectOptions(screen.getByTestId('filter-status'), 'failed')
    await waitFor(() => expect(screen.getByTestId('empty')).toBeInTheDocument())
    const last = calls.filter((c) => c.url.startsWith('/api/v1/experiments')).at(-1)!
    expect(last.url).toBe('/api/v1/experiments?pipeline_id=weather_forecaster&status=failed&sort=created_at&order=desc&limit=50&estimate_total=true')
  })

  it('searches after typing stops, and sorts by a column', async () => {
    const calls = fakeFetch(answer)
    const user = userEvent.setup()
    renderPage()
    await screen.findByTestId('row-a1')
    await user.type(screen.getByTestId('filter-search'), 'b2')
    await waitFor(() => expect(screen.queryByTestId('row-a1')).toBeNull())
    expect(screen.getByTestId('location')).toHaveTextContent(/^\/experiments\?q=b2$/)
    await user.click(screen.getByTestId('sort-name'))
    await waitFor(() => expect(calls.filter((c) => c.url.startsWith('/api/v1/experiments')).at(-1)!.url).toContain('sort=name&order=asc'))
  })

  it('reads filters from the URL', async () => {
    const calls = fakeFetch(answer)
    renderPage('/experiments?status=running&tag=smoke&page=2&size=25')
    await waitFor(() => expect(calls.some((c) => c.url.startsWith('/api/v1/experiments'))).toBe(true))
    expect(calls.find((c) => c.url.startsWith('/api/v1/experiments'))!.url).toBe('/api/v1/experiments?status=running&tag=smoke&sort=created_at&order=desc&limit=25&offset=25&estimate_total=true')
    expect(screen.getByTestId('filter-status')).toHaveValue('running')
    expect(screen.getByTestId('filter-tags')).toHaveValue('smoke')
  })

  it('selects rows to compare', async () => {
    fakeFetch(answer)
    const user = userEvent.setup()
    renderPage()
    await screen.findByTestId('row-a1')
    expect(screen.getByTestId('compare-selected')).toBeDisabled()
    await user.click(screen.getByTestId('select-a1'))
    await user.click(screen.getByTestId('select-c3'))
    expect(screen.getByTestId('compare-selected')).toHaveTextContent(/^Compare \(2\)$/)
    await user.click(screen.getByTestId('compare-selected'))
    await screen.findByTestId('compare-page')
    expect(screen.getByTestId('location')).toHaveTextContent(/^\/compare\?ids=a1,c3$/)
  })
})

const listCalls = (calls: FakeCall[]) => calls.filter((c) => c.url.startsWith('/api/v1/experiments'))
const status = (id: string, value: string, seq: number) => ({ type: 'status', id, status: value, seq, time: '2026-11-27T10:05:00Z', payload: { status: value } })

describe('experiments table, live', () => {
  it('changes a row in place when its status is pushed, without fetching the page', async () => {
    const calls = fakeFetch(answer)
    const { sockets, factory } = socketFactory()
    renderPage('/experiments', factory)
    await screen.findByTestId('row-a1')
    await waitFor(() => expect(sockets).toHaveLength(1))
    expect(sockets[0].url).toMatch(/\/api\/v1\/events\/status$/)
    expect(sockets[0].protocols).toEqual(['azuraforge.v1', 'azuraforge.token.ws-tok'])
    expect(screen.getByTestId('table-connection')).toHaveTextContent('○ every 30 s')
    act(() => sockets[0].send({ type: 'subscribed' }))
    expect(screen.getByTestId('table-connection')).toHaveTextContent('● live')
    // subscribed: the page is fetched once more, for what changed before the subscription
    await waitFor(() => expect(listCalls(calls)).toHaveLength(2))
    await waitFor(() => expect(screen.getByTestId('status-a1')).toHaveTextContent(/^running$/))
    act(() => sockets[0].send(status('a1', 'succeeded', 4)))
    expect(screen.getByTestId('status-a1')).toHaveTextContent(/^succeeded$/)
    act(() => sockets[0].send(status('b2', 'running', 2))) // older than the row: dropped
    expect(screen.getByTestId('status-b2')).toHaveTextContent(/^succeeded$/)
    act(() => sockets[0].send(status('zz', 'succeeded', 9))) // elsewhere, and cannot come here
    await new Promise((r) => setTimeout(r, REFETCH_DEBOUNCE_MS + 300))
    expect(listCalls(calls)).toHaveLength(2)
  })

  it('refetches once, debounced, when new runs appear', async () => {
    const rows = [...ROWS]
    const calls = fakeFetch((call) => {
      if (call.url.startsWith('/api/v1/experiments?')) return { body: { items: rows, next_cursor: null, total: rows.length, limit: 50 } }
      return answer(call)
    })
    const { sockets, factory } = socketFactory()
    renderPage('/experiments', factory)
    await screen.findByTestId('row-a1')
    await waitFor(() => expect(sockets).toHaveLength(1))
    act(() => sockets[0].send({ type: 'subscribed' }))
    await waitFor(() => expect(listCalls(calls)).toHaveLength(2))
    rows.unshift(row('n1', 'queued'), row('n2', 'queued'))
    act(() => {
      sockets[0].send(status('n1', 'queued', 1))
      sockets[0].send(status('n2', 'queued', 1))
    })
    expect(screen.queryByTestId('row-n1')).toBeNull()
    expect(await screen.findByTestId('row-n1', {}, { timeout: REFETCH_DEBOUNCE_MS + 2000 })).toBeInTheDocument()
    expect(screen.getByTestId('row-n2')).toBeInTheDocument()
    expect(screen.getByTestId('result-count')).toHaveTextContent(/^5 experiments$/)
    expect(listCalls(calls)).toHaveLength(3)
  })

  it('polls slowly while the stream is down', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true })
    const calls = fakeFetch(answer)
    const { sockets, factory } = socketFactory()
    renderPage('/experiments', factory)
    await screen.findByTestId('row-a1')
    await waitFor(() => expect(sockets).toHaveLength(1))
    act(() => sockets[0].drop(1006))
    const before = listCalls(calls).length
    await act(async () => {
      await vi.advanceTimersByTimeAsync(FALLBACK_POLL_MS)
    })
    await waitFor(() => expect(listCalls(calls).length).toBe(before + 1))
  })
})

describe('experiments table, keyset pages', () => {
  function pagedAnswer(call: FakeCall) {
    if (!call.url.startsWith('/api/v1/experiments?')) return answer(call)
    const cursor = new URL(call.url, 'http://x').searchParams.get('cursor')
    const base = { estimated_total: 120_000, estimate_exact: false, total: null, limit: 50 }
    if (cursor === 'next-2') return { body: { ...base, items: [ROWS[1]], next_cursor: 'next-3', prev_cursor: 'prev-1' } }
    if (cursor === 'next-3') return { body: { ...base, items: [ROWS[2]], next_cursor: null, prev_cursor: 'prev-2' } }
    if (cursor === 'prev-2') return { body: { ...base, items: [ROWS[1]], next_cursor: 'next-3', prev_cursor: 'prev-1' } }
    return { body: { ...base, items: [ROWS[0]], next_cursor: 'next-2', prev_cursor: null } }
  }

  it('goes next and previous by cursor, showing an estimated total', async () => {
    const calls = fakeFetch(pagedAnswer)
    const user = userEvent.setup()
    renderPage()
    await screen.findByTestId('row-a1')
    expect(screen.getByTestId('result-count')).toHaveTextContent(/^about 120,000 experiments$/)
    expect(screen.getByTestId('page-info')).toHaveTextContent(/^Page 1 of about 2,400$/)
    expect(screen.getByTestId('prev-page')).toBeDisabled()
    await user.click(screen.getByTestId('next-page'))
    await screen.findByTestId('row-b2')
    expect(screen.getByTestId('location')).toHaveTextContent(/^\/experiments\?page=2&cursor=next-2$/)
    expect(listCalls(calls).at(-1)!.url).toBe('/api/v1/experiments?sort=created_at&order=desc&limit=50&cursor=next-2&estimate_total=true')
    await user.click(screen.getByTestId('next-page'))
    await screen.findByTestId('row-c3')
    expect(screen.getByTestId('page-info')).toHaveTextContent(/^Page 3 of about 2,400$/)
    expect(screen.getByTestId('next-page')).toBeDisabled()
    await user.click(screen.getByTestId('prev-page'))
    await screen.findByTestId('row-b2')
    expect(screen.getByTestId('location')).toHaveTextContent(/^\/experiments\?page=2&cursor=prev-2$/)
    // back to page 1: the first page itself, no cursor
    await user.click(screen.getByTestId('prev-page'))
    await screen.findByTestId('row-a1')
    expect(screen.getByTestId('location')).toHaveTextContent(/^\/experiments$/)
    expect(listCalls(calls).at(-1)!.url).toBe('/api/v1/experiments?sort=created_at&order=desc&limit=50&estimate_total=true')
  })

  it('starts over at page 1 when a filter changes', async () => {
    fakeFetch(pagedAnswer)
    const user = userEvent.setup()
    renderPage('/experiments?page=2&cursor=next-2')
    await screen.findByTestId('row-b2')
    await screen.findByRole('option', { name: 'Weather Forecaster' })
    await user.selectOptions(screen.getByTestId('filter-pipeline'), 'weather_forecaster')
    await waitFor(() => expect(screen.getByTestId('location')).toHaveTextContent(/^\/experiments\?pipeline=weather_forecaster$/))
  })
})
