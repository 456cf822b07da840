import { render, screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { MemoryRouter, Route, Routes, useLocation } from 'react-router'
import { afterEach, describe, expect, it } from 'vitest'
import { fakeFetch, type FakeCall } from '../test/fixtures'
import { ExperimentsPage } from './ExperimentsPage'

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
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
})

const ROWS = [row('a1', 'running', 'image_classifier', ['smoke']), row('b2', 'succeeded', 'weather_forecaster'), row('c3', 'failed', 'stock_predictor')]

function answer({ url }: FakeCall) {
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

function renderPage(url = '/experiments') {
  return render(
    <MemoryRouter initialEntries={[url]}>
      <Routes>
        <Route path="/experiments" element={<ExperimentsPage />} />
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
    expect(last.url).toBe('/api/v1/experiments?pipeline_id=weather_forecaster&status=failed&sort=created_at&order=desc&limit=50&offset=0&with_total=true')
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
    await waitFor(() => expect(calls.at(-1)!.url).toContain('sort=name&order=asc'))
  })

  it('reads filters from the URL', async () => {
    const calls = fakeFetch(answer)
    renderPage('/experiments?status=running&tag=smoke&page=2&size=25')
    await waitFor(() => expect(calls.some((c) => c.url.startsWith('/api/v1/experiments'))).toBe(true))
    expect(calls.find((c) => c.url.startsWith('/api/v1/experiments'))!.url).toBe('/api/v1/experiments?status=running&tag=smoke&sort=created_at&order=desc&limit=25&offset=25&with_total=true')
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
