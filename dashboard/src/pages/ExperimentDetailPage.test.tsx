import { act, render, screen, waitFor } from '@testing-library/react'
import { MemoryRouter, Route, Routes } from 'react-router'
import { afterEach, describe, expect, it } from 'vitest'
import type { SocketLike } from '../api/socket'
import { fakeFetch, type FakeCall } from '../test/fixtures'
import { ExperimentDetailPage } from './ExperimentDetailPage'

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
})

class FakeSocket implements SocketLike {
  onopen: ((ev: Event) => unknown) | null = null
  onmessage: ((ev: MessageEvent) => unknown) | null = null
  onclose: ((ev: CloseEvent) => unknown) | null = null
  onerror: ((ev: Event) => unknown) | null = null
  constructor(
    readonly url: string,
    readonly protocols?: string[],
  ) {}
  send(obj: unknown) {
    act(() => {
      this.onmessage?.({ data: JSON.stringify(obj) } as MessageEvent)
    })
  }
  close() {}
}

const base = {
  id: 'e1',
  name: 'digits quick',
  pipeline_id: 'image_classifier',
  pipeline_version: '0.1.0',
  tags: ['smoke'],
  created_at: '2026-11-27T10:00:00Z',
  updated_at: '2026-11-27T10:00:00Z',
  started_at: new Date(Date.now() - 10_000).toISOString(),
  finished_at: null,
  attempts: 1,
  max_attempts: 1,
  error: null,
  summary: null,
  parent_id: null,
  config: { epochs: 4, dataset: 'digits_8x8' },
  heartbeat_at: null,
  worker: 'w',
  traceback: null,
  owner: 'max',
}

describe('experiment detail', () => {
  it('shows history, then grows live over the socket, then the final results', async () => {
    let finished = false
    const calls = fakeFetch(({ url }: FakeCall) => {
      if (url === '/api/v1/experiments/e1')
        return {
          body: finished
            ? { ...base, status: 'succeeded', last_event_seq: 30, summary: { accuracy: 0.91, baselines: { majority_class: 0.1, logistic_regression: 0.95 } } }
            : { ...base, status: 'running', last_event_seq: 20 },
        }
      if (url.startsWith('/api/v1/experiments/e1/metrics'))
        return {
          body: {
            series: finished
              ? [{ name: 'loss', steps: [1, 2, 3, 4], values: [2, 1.5, 1, 0.8] }, { name: 'val_loss', steps: [1, 2, 3, 4], values: [2.2, 1.7, 1.2, 1] }]
              : [{ name: 'loss', steps: [1, 2], values: [2, 1.5] }, { name: 'val_loss', steps: [1, 2], values: [2.2, 1.7] }],
          },
        }
      if (url.startsWith('/api/v1/experiments/e1/logs')) return { body: { items: [{ id: 1, time: 't', level: 'info', message: 'epoch 2/4: loss 1.5' }], next_after_id: 1 } }
      if (url.startsWith('/api/v1/experiments/e1/artifacts')) return { body: { items: [] } }
      if (url === '/api/v1/auth/ws-token') return { body: { token: 'wst-1', expires_in: 60 } }
      return undefined
    })
    const sockets: FakeSocket[] = []
    const factory = (url: string, protocols?: string[]) => {
      const s = new FakeSocket(url, protocols)
      sockets.push(s)
      return s
    }
    render(
      <MemoryRouter initialEntries={['/experiments/e1']}>
        <Routes>
          <Route path="/experiments/:experimentId" element={<ExperimentDetailPage socketFactory={factory} />} />
        </Routes>
      </MemoryRouter>,
    )
    expect(await screen.findByTestId('experiment-status')).toHaveTextContent(/^running$/)
    await waitFor(() => expect(screen.getByTestId('loss-chart')).toHaveAttribute('data-points', '2'))
    expect(screen.getByTestId('loss-chart')).toHaveAttribute('data-series', '2')
    await waitFor(() => expect(sockets).toHaveLength(1))
    expect(sockets[0].url).toBe('ws://localhost:3000/api/v1/experiments/e1/events?after=20')
    // signed in with a fresh socket token, offered as a subprotocol
    expect(sockets[0].protocols).toEqual(['azuraforge.v1', 'azuraforge.token.wst-1'])
    expect(calls.filter((c) => c.url === '/api/v1/auth/ws-token').map((c) => c.method)).toEqual(['POST'])

    const ws = sockets[0]
    ws.send({ seq: 21, type: 'progress', payload: { epoch: 3, total_epochs: 4, step: 5, total_steps: 10 } })
    expect(screen.getByTestId('progress-text')).toHaveTextContent(/^62\.5%$/)
    expect(screen.getByTestId('progress-bar')).toHaveAttribute('data-value', '62.5')
    expect(screen.getByTestId('eta')).toHaveTextContent(/^ETA \ds$/)
    ws.send({ seq: 22, type: 'metrics', payload: { step: null, epoch: 3, values: { loss: 1, val_loss: 1.2 } } })
    await waitFor(() => expect(screen.getByTestId('loss-chart')).toHaveAttribute('data-points', '3'))
    ws.send({ seq: 22, type: 'metrics', payload: { step: null, epoch: 9, values: { loss: 9 } } }) // duplicate seq
    ws.send({ seq: 23, type: 'log', payload: { level: 'info', message: 'epoch 3/4: loss 1.0' } })
    expect(screen.getByTestId('logs')).toHaveTextContent(/epoch 2\/4: loss 1\.5.*epoch 3\/4: loss 1\.0$/)
    ws.send({ seq: 24, type: 'confusion_matrix', payload: { labels: ['a', 'b'], matrix: [[3, 1], [0, 4]] } })
    expect(screen.getByTestId('confusion-accuracy')).toHaveTextContent(/^87\.5%$/)
    ws.send({ seq: 25, type: 'metrics', payload: { step: null, epoch: 4, values: { loss: 0.8, val_loss: 1 } } })
    await waitFor(() => expect(screen.getByTestId('loss-chart')).toHaveAttribute('data-points', '4'))

    finished = true
    ws.send({ seq: 30, type: 'status', payload: { status: 'succeeded', error: null } })
    await waitFor(() => expect(screen.getByTestId('summary-accuracy')).toHaveTextContent(/^accuracy0\.91$/))
    expect(screen.getByTestId('experiment-status')).toHaveTextContent(/^succeeded$/)
    expect(screen.getByTestId('baselines-table')).toHaveTextContent(/model0\.91.*logistic_regression0\.95/)
    expect(screen.getByTestId('loss-chart')).toHaveAttribute('data-points', '4')
    expect(calls.filter((c) => c.url === '/api/v1/experiments/e1')).toHaveLength(2)
  })

  it("puts a forecast's DM p-values next to its baselines, never marked best", async () => {
    // the summary of a weather_forecaster run, as the API returns it (trimmed)
    const summary = {
      verdict: 'The model is no better than the naive forecast: MAE 2.085 vs 2.253 (7.5% lower, not significant: DM p = 0.058). The model beats the seasonal forecast: MAE 2.085 vs 3.013, 30.8% lower (DM p < 0.001).',
      test: {
        model: { mae: 2.085, rmse: 2.655 },
        naive: { mae: 2.253, rmse: 2.929, dm_p: 0.0577 },
        seasonal: { mae: 3.013, rmse: 3.776, dm_p: 3.5e-10 },
      },
      test_naive_dm_p: 0.0577,
      beats_naive: false,
    }
    fakeFetch(({ url }: FakeCall) => {
      if (url === '/api/v1/experiments/e2') return { body: { ...base, id: 'e2', pipeline_id: 'weather_forecaster', status: 'succeeded', last_event_seq: 5, summary } }
      if (url.startsWith('/api/v1/experiments/e2/metrics')) return { body: { series: [] } }
      if (url.startsWith('/api/v1/experiments/e2/logs')) return { body: { items: [], next_after_id: null } }
      if (url.startsWith('/api/v1/experiments/e2/artifacts')) return { body: { items: [] } }
      if (url === '/api/v1/auth/ws-token') return { body: { token: 'wst-2', expires_in: 60 } }
      return undefined
    })
    render(
      <MemoryRouter initialEntries={['/experiments/e2']}>
        <Routes>
          <Route path="/experiments/:experimentId" element={<ExperimentDetailPage socketFactory={(url, protocols) => new FakeSocket(url, protocols)} />} />
        </Routes>
      </MemoryRouter>,
    )
    const table = await screen.findByTestId('baselines-table')
    expect(screen.getByText(/no better than the naive forecast.*DM p = 0\.058/)).toHaveClass('verdict')
    const header = [...table.querySelectorAll('thead th')].map((th) => th.textContent)
    expect(header).toEqual(['', 'mae', 'rmse', 'dm_p'])
    const rows = [...table.querySelectorAll('tbody tr')].map((tr) => [...tr.children].map((c) => c.textContent))
    expect(rows).toEqual([
      ['model', '2.085', '2.655', '—'],
      ['naive', '2.253', '2.929', '0.0577'],
      ['seasonal', '3.013', '3.776', '3.50e-10'],
    ])
    // the model's MAE is best; a p-value column has no "best"
    const best = [...table.querySelectorAll('td.best')].map((td) => td.textContent)
    expect(best).toEqual(['2.085', '2.655'])
    expect(screen.getByTestId('summary-test_naive_dm_p')).toHaveTextContent(/^test_naive_dm_p0\.0577$/)
  })
})
