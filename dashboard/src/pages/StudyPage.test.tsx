import { act, render, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { MemoryRouter, Route, Routes } from 'react-router'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { SocketLike } from '../api/socket'
import { AsUser } from '../test/auth'
import { fakeFetch, ME } from '../test/fixtures'
import { StudyPage } from './StudyPage'

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
  vi.restoreAllMocks()
})

class FakeSocket implements SocketLike {
  onopen: ((ev: Event) => unknown) | null = null
  onmessage: ((ev: MessageEvent) => unknown) | null = null
  onclose: ((ev: CloseEvent) => unknown) | null = null
  onerror: ((ev: Event) => unknown) | null = null
  constructor(readonly url: string) {}
  send(obj: unknown) {
    act(() => {
      this.onmessage?.({ data: JSON.stringify(obj) } as MessageEvent)
    })
  }
  close() {}
}

const config = {
  target: 'image_classifier',
  objective: 'val_accuracy',
  direction: 'maximize',
  space: { learning_rate: { type: 'float', low: 0.001, high: 0.1, log: true }, hidden_units: { type: 'int', low: 16, high: 64 } },
  base_config: { dataset: 'digits_8x8', epochs: 2 },
  n_trials: 3,
  parallel: 2,
}

const study = {
  id: 's1',
  name: 'tune digits',
  pipeline_id: 'hyper_tuner',
  tags: ['study'],
  created_at: '2026-11-27T10:00:00Z',
  updated_at: '2026-11-27T10:00:00Z',
  started_at: '2026-11-27T10:00:01Z',
  finished_at: null,
  attempts: 1,
  max_attempts: 1,
  error: null,
  summary: null,
  parent_id: null,
  config,
  owner: 'max',
}

const trials = [
  { number: 0, experiment_id: 't0', params: { learning_rate: 0.01, hidden_units: 32 }, state: 'complete', value: 0.8, error: null, epochs: 2, duration_s: 12 },
  { number: 1, experiment_id: 't1', params: { learning_rate: 0.002, hidden_units: 48 }, state: 'complete', value: 0.9, error: null, epochs: 2, duration_s: 20 },
  { number: 2, experiment_id: 't2', params: { learning_rate: 0.05, hidden_units: 16 }, state: 'pruned', value: null, error: 'pruned after epoch 1', epochs: 1, duration_s: 8 },
]
const summary = {
  target: 'image_classifier',
  objective: 'val_accuracy',
  direction: 'maximize',
  best_value: 0.9,
  best_params: trials[1].params,
  best_trial: 1,
  best_experiment_id: 't1',
  best_config: { dataset: 'digits_8x8', epochs: 2, ...trials[1].params },
  importances: { learning_rate: 0.7, hidden_units: 0.3 },
  trials,
  n_complete: 2,
  n_pruned: 1,
  n_failed: 0,
}

const trialEvent = (seq: number, t: (typeof trials)[number] | Record<string, unknown>, best: [number | null, number | null]) => ({
  seq,
  type: 'trial',
  payload: { ...t, best_number: best[0], best_value: best[1] },
})

function renderPage(factory?: (url: string) => SocketLike, me = ME.member) {
  return render(
    <AsUser me={me}>
      <MemoryRouter initialEntries={['/studies/s1']}>
        <Routes>
          <Route path="/studies/:studyId" element={<StudyPage socketFactory={factory} />} />
          <Route path="/experiments/:id" element={<div data-testid="experiment-page">experiment</div>} />
        </Routes>
      </MemoryRouter>
    </AsUser>,
  )
}

describe('study page', () => {
  it('builds the trials from the event backlog (after=0), grows live, then shows the final results', async () => {
    let finished = false
    const calls = fakeFetch(({ method, url }) => {
      if (url === '/api/v1/experiments/s1') return { body: finished ? { ...study, status: 'succeeded', summary, last_event_seq: 9 } : { ...study, status: 'running', last_event_seq: 4 } }
      if (url.startsWith('/api/v1/experiments?'))
        return { body: { items: [{ ...study, id: 't0', status: 'succeeded' }, { ...study, id: 't1', status: 'running' }], next_cursor: null, total: null, limit: 1000 } }
      if (url === '/api/v1/auth/ws-token') return { body: { token: 'wst', expires_in: 60 } }
      if (method === 'POST' && url === '/api/v1/experiments/s1/cancel') return { body: { ...study, status: 'cancelling' } }
      return undefined
    })
    const sockets: FakeSocket[] = []
    renderPage((url) => {
      const s = new FakeSocket(url)
      sockets.push(s)
      return s
    })
    await waitFor(() => expect(sockets).toHaveLength(1))
    // the whole backlog, not only what came after the record was read
    expect(sockets[0].url).toMatch(/\/api\/v1\/experiments\/s1\/events\?after=0$/)
    expect(calls.some((c) => c.url.includes('parent_id=s1') && c.url.includes('tag=trial'))).toBe(true)
    expect(screen.getByTestId('study-goal')).toHaveTextContent('maximize val_accuracy of image_classifier')
    expect(screen.getByTestId('no-trials')).toBeInTheDocument()

    sockets[0].send(trialEvent(1, { ...trials[0], state: 'running', value: null, duration_s: null }, [null, null]))
    sockets[0].send(trialEvent(2, { ...trials[1], state: 'running', value: null, duration_s: null }, [null, null]))
    expect(screen.getByTestId('trial-state-0')).toHaveTextContent('running')
    // a running trial's link says whether a worker has taken its experiment yet
    await waitFor(() => expect(screen.getByTestId('trial-link-1')).toHaveTextContent('running'))
    expect(screen.getByTestId('history-chart')).toHaveAttribute('data-points', '0')
    expect(screen.getByTestId('best-value-number')).toHaveTextContent('—')

    sockets[0].send(trialEvent(3, trials[0], [0, 0.8]))
    expect(screen.getByTestId('trial-state-0')).toHaveTextContent('complete')
    expect(screen.getByTestId('trial-value-0')).toHaveTextContent('0.8')
    expect(screen.getByTestId('history-chart')).toHaveAttribute('data-points', '1')
    expect(screen.getByTestId('best-value-number')).toHaveTextContent('0.8')
    // while it runs, the best configuration is the fixed settings with the best trial's parameters
    expect(screen.getByTestId('best-config-hidden_units')).toHaveTextContent('32')
    expect(screen.getByTestId('best-config-dataset')).toHaveTextContent('digits_8x8')
    expect(screen.getByTestId('no-importances')).toHaveTextContent('Computed (fANOVA) when the study finishes.')
    // a replayed event (reconnect) changes nothing
    sockets[0].send(trialEvent(2, { ...trials[1], state: 'running', value: null }, [null, null]))
    expect(screen.getAllByTestId(/^trial-row-/)).toHaveLength(2)

    sockets[0].send(trialEvent(5, trials[1], [1, 0.9]))
    sockets[0].send(trialEvent(6, trials[2], [1, 0.9]))
    expect(screen.getByTestId('best-trial')).toHaveTextContent('#1')
    expect(screen.getByTestId('count-pruned')).toHaveTextContent('1')
    expect(screen.getByTestId('history-chart')).toHaveAttribute('data-points', '3')
    expect(screen.getByTestId('trial-state-2')).toHaveAttribute('title', 'pruned after epoch 1')
    expect(screen.getByTestId('trial-link-1')).toHaveAttribute('href', '/experiments/t1')
    expect(screen.getByTestId('trial-link-1')).toHaveTextContent('open')
    expect(screen.getByTestId('parallel-coords')).toBeInTheDocument()
    expect(screen.getByTestId('pc-line-trial-1')).toHaveAttribute('stroke-width', '4')

    await userEvent.setup().click(screen.getByTestId('cancel-study'))
    expect(calls.some((c) => c.method === 'POST' && c.url === '/api/v1/experiments/s1/cancel')).toBe(true)
    await waitFor(() => expect(screen.getByTestId('study-status')).toHaveTextContent('cancelling'))

    finished = true
    sockets[0].send({ seq: 9, type: 'status', payload: { status: 'succeeded' } })
    await waitFor(() => expect(screen.getByTestId('importances')).toBeInTheDocument())
    expect(screen.getByTestId('study-status')).toHaveTextContent('succeeded')
    expect(within(screen.getByTestId('importance-learning_rate')).getByText('70.0%')).toBeInTheDocument()
    expect(screen.queryByTestId('cancel-study')).toBeNull()
  })

  it('reads a finished study from its summary, without a socket', async () => {
    fakeFetch(({ url }) => {
      if (url === '/api/v1/experiments/s1') return { body: { ...study, status: 'succeeded', summary, last_event_seq: 9 } }
      if (url.startsWith('/api/v1/experiments?')) return { body: { items: [], next_cursor: null, total: null, limit: 1000 } }
      return undefined
    })
    const factory = vi.fn()
    renderPage(factory)
    await waitFor(() => expect(screen.getAllByTestId(/^trial-row-/)).toHaveLength(3))
    expect(factory).not.toHaveBeenCalled()
    expect(screen.getByTestId('best-value-number')).toHaveTextContent('0.9')
    expect(screen.getByTestId('history-chart')).toHaveAttribute('data-points', '3')
    // the tuned settings come first in the best configuration
    const rows = within(screen.getByTestId('best-config')).getAllByRole('row')
    expect(rows.map((r) => r.getAttribute('data-testid'))).toEqual(['best-config-learning_rate', 'best-config-hidden_units', 'best-config-dataset', 'best-config-epochs'])
  })

  it("registers the best trial's model and re-runs the best configuration", async () => {
    const calls = fakeFetch(({ method, url }) => {
      if (url === '/api/v1/experiments/s1') return { body: { ...study, status: 'succeeded', summary, last_event_seq: 9 } }
      if (url.startsWith('/api/v1/experiments?')) return { body: { items: [], next_cursor: null, total: null, limit: 1000 } }
      if (method === 'POST' && url === '/api/v1/models') return { status: 201, body: { name: 'digits-tuned', version: 1 } }
      if (method === 'POST' && url === '/api/v1/experiments/t1/rerun') return { status: 201, body: { ...study, id: 'r1', pipeline_id: 'image_classifier', status: 'queued' } }
      return undefined
    })
    vi.spyOn(window, 'prompt').mockReturnValue('digits-tuned')
    const user = userEvent.setup()
    renderPage(vi.fn())
    await user.click(await screen.findByTestId('register-best'))
    expect(calls.find((c) => c.url === '/api/v1/models')?.body).toEqual({ experiment_id: 't1', name: 'digits-tuned' })
    expect(await screen.findByTestId('registered')).toHaveTextContent('Registered as digits-tuned')

    await user.click(screen.getByTestId('rerun-best'))
    await screen.findByTestId('experiment-page')
    expect(calls.find((c) => c.url === '/api/v1/experiments/t1/rerun')?.body).toEqual({
      config: summary.best_config,
      name: 'tune digits: best (trial 1)',
      tags: ['study-best'],
    })
  })

  it('offers viewers no actions', async () => {
    fakeFetch(({ url }) => {
      if (url === '/api/v1/experiments/s1') return { body: { ...study, status: 'succeeded', summary, last_event_seq: 9 } }
      if (url.startsWith('/api/v1/experiments?')) return { body: { items: [], next_cursor: null, total: null, limit: 1000 } }
      return undefined
    })
    renderPage(vi.fn(), ME.viewer)
    await waitFor(() => expect(screen.getAllByTestId(/^trial-row-/)).toHaveLength(3))
    expect(screen.queryByTestId('rerun-best')).toBeNull()
    expect(screen.queryByTestId('register-best')).toBeNull()
  })
})
