// What each role is offered: viewers change nothing; members cancel and delete only what they
// own; admins everything. (The server enforces the same; the UI must not offer what it refuses.)
import { render, screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { MemoryRouter, Route, Routes } from 'react-router'
import { afterEach, describe, expect, it } from 'vitest'
import type { SocketLike } from '../api/socket'
import type { Me } from '../api/types'
import { AsUser } from '../test/auth'
import { fakeFetch, ME } from '../test/fixtures'
import { ExperimentDetailPage } from './ExperimentDetailPage'
import { ExperimentsPage } from './ExperimentsPage'
import { ModelsPage } from './ModelsPage'
import { PipelinesPage } from './PipelinesPage'

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
})

const exp = (id: string, owner: string | null, status = 'running') => ({
  id,
  name: `run ${id}`,
  pipeline_id: 'image_classifier',
  status,
  tags: [],
  config: {},
  created_at: '2026-11-27T10:00:00Z',
  started_at: '2026-11-27T10:00:00Z',
  owner,
  last_event_seq: 0,
})

const EXPERIMENTS = [exp('mine', 'max'), exp('theirs', 'ada', 'succeeded'), exp('old', null, 'succeeded')]

function api() {
  return fakeFetch(({ url }) => {
    const one = EXPERIMENTS.find((e) => url === `/api/v1/experiments/${e.id}`)
    if (one) return { body: one }
    if (url.startsWith('/api/v1/experiments?')) return { body: { items: EXPERIMENTS, total: 3, next_cursor: null, limit: 50 } }
    if (/^\/api\/v1\/experiments\/\w+\//.test(url)) return { body: { items: [], series: [] } }
    if (url === '/api/v1/auth/ws-token') return { body: { token: 't', expires_in: 60 } }
    if (url.startsWith('/api/v1/pipelines')) return { body: { items: [{ id: 'image_classifier', name: 'Image Classifier', description: '', installed: true, version: '0.1.0' }] } }
    if (url.startsWith('/api/v1/models'))
      return { body: { items: [{ name: 'max-model', owner: 'max', experiment_id: 'mine', pipeline_id: 'image_classifier' }, { name: 'ada-model', owner: 'ada', experiment_id: 'theirs', pipeline_id: 'image_classifier' }] } }
    return undefined
  })
}

class QuietSocket implements SocketLike {
  onopen = null
  onmessage = null
  onclose = null
  onerror = null
  close() {}
}
const quiet = () => new QuietSocket()

function renderAs(me: Me, url: string) {
  return render(
    <AsUser me={me}>
      <MemoryRouter initialEntries={[url]}>
        <Routes>
          <Route path="/experiments" element={<ExperimentsPage />} />
          <Route path="/experiments/:experimentId" element={<ExperimentDetailPage socketFactory={quiet} />} />
          <Route path="/pipelines" element={<PipelinesPage />} />
          <Route path="/models" element={<ModelsPage />} />
        </Routes>
      </MemoryRouter>
    </AsUser>,
  )
}

describe('experiment page by role', () => {
  it('viewer: no cancel, re-run, register or delete; the owner is shown', async () => {
    api()
    renderAs(ME.viewer, '/experiments/mine')
    expect(await screen.findByTestId('experiment-owner')).toHaveTextContent(/^max$/)
    for (const id of ['cancel', 'rerun', 'delete', 'register-model']) expect(screen.queryByTestId(id)).toBeNull()
    expect(screen.getByTestId('read-only')).toHaveTextContent(/^Viewers have read-only access\.$/)
  })

  it("member on someone else's: re-run yes, delete disabled with the reason", async () => {
    api()
    renderAs(ME.member, '/experiments/theirs')
    expect(await screen.findByTestId('rerun')).toBeEnabled()
    expect(screen.getByTestId('register-model')).toBeEnabled()
    expect(screen.getByTestId('delete')).toBeDisabled()
    expect(screen.getByTestId('manage-reason')).toHaveTextContent(/^Only its owner \(ada\) or an admin can cancel or delete this experiment\.$/)
  })

  it('member on their own: cancel and delete', async () => {
    api()
    renderAs(ME.member, '/experiments/mine')
    expect(await screen.findByTestId('cancel')).toBeEnabled()
    expect(screen.getByTestId('delete')).toBeEnabled()
    expect(screen.queryByTestId('manage-reason')).toBeNull()
  })

  it('member on one without an owner: only an admin may delete it', async () => {
    api()
    renderAs(ME.member, '/experiments/old')
    expect(await screen.findByTestId('delete')).toBeDisabled()
    expect(screen.getByTestId('manage-reason')).toHaveTextContent(/^Only an admin can cancel or delete this experiment \(it has no owner\)\.$/)
  })

  it("admin: everything, on anyone's", async () => {
    api()
    renderAs(ME.admin, '/experiments/mine')
    expect(await screen.findByTestId('cancel')).toBeEnabled()
    expect(screen.getByTestId('delete')).toBeEnabled()
    expect(screen.getByTestId('rerun')).toBeEnabled()
  })
})

describe('experiments table by role', () => {
  it('shows the owner; viewers get no launch and no delete', async () => {
    api()
    renderAs(ME.viewer, '/experiments')
    expect(await screen.findByTestId('owner-mine')).toHaveTextContent(/^max$/)
    expect(screen.getByTestId('owner-old')).toHaveTextContent(/^—$/)
    expect(screen.queryByTestId('new-experiment')).toBeNull()
    expect(screen.queryByTestId('delete-selected')).toBeNull()
    expect(screen.getByTestId('compare-selected')).toBeInTheDocument()
  })

  it('members may delete a selection only when all of it is theirs', async () => {
    api()
    const user = userEvent.setup()
    renderAs(ME.member, '/experiments')
    expect(screen.getByTestId('new-experiment')).toBeInTheDocument()
    await user.click(await screen.findByTestId('select-mine'))
    expect(screen.getByTestId('delete-selected')).toBeEnabled()
    await user.click(screen.getByTestId('select-theirs'))
    expect(screen.getByTestId('delete-selected')).toBeDisabled()
    expect(screen.getByTestId('delete-reason')).toHaveTextContent(/^You can delete only your own experiments; 1 of the selected is not yours\.$/)
  })

  it('admins may delete any selection', async () => {
    api()
    const user = userEvent.setup()
    renderAs(ME.admin, '/experiments')
    await user.click(await screen.findByTestId('select-theirs'))
    await user.click(screen.getByTestId('select-old'))
    expect(screen.getByTestId('delete-selected')).toBeEnabled()
  })
})

describe('pipelines and models by role', () => {
  it('viewers cannot launch or predict', async () => {
    api()
    renderAs(ME.viewer, '/pipelines')
    expect(await screen.findByTestId('settings-image_classifier')).toBeInTheDocument()
    expect(screen.queryByTestId('launch-image_classifier')).toBeNull()
  })

  it('viewers see models without predict or delete', async () => {
    api()
    renderAs(ME.viewer, '/models')
    await screen.findByTestId('model-max-model')
    expect(screen.queryByTestId('predict-max-model')).toBeNull()
    expect(screen.queryByTestId('delete-model-max-model')).toBeNull()
  })

  it('members predict with any model and delete only their own', async () => {
    api()
    renderAs(ME.member, '/models')
    await waitFor(() => expect(screen.getByTestId('predict-ada-model')).toBeEnabled())
    expect(screen.getByTestId('delete-model-max-model')).toBeEnabled()
    expect(screen.getByTestId('delete-model-ada-model')).toBeDisabled()
    expect(screen.getByTestId('delete-model-ada-model')).toHaveAttribute('title', 'Only its owner (ada) or an admin can delete this model.')
  })
})
