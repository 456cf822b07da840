// Where the rest of the dashboard leads to the study pages: the hyper_tuner card, and the
// experiment page of a study or of one of its trials.
import { render, screen } from '@testing-library/react'
import { MemoryRouter, Route, Routes } from 'react-router'
import { afterEach, describe, expect, it } from 'vitest'
import { AsUser } from '../test/auth'
import { fakeFetch, ME } from '../test/fixtures'
import { ExperimentDetailPage } from './ExperimentDetailPage'
import { LaunchForm } from './LaunchPage'
import { PipelinesPage } from './PipelinesPage'

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
})

const record = {
  name: 'x',
  tags: [] as string[],
  created_at: '2026-11-27T10:00:00Z',
  status: 'succeeded',
  summary: null,
  parent_id: null as string | null,
  config: {},
  last_event_seq: 3,
  owner: 'max',
}

function serveExperiment(id: string, fields: Record<string, unknown>) {
  fakeFetch(({ url }) => {
    if (url === `/api/v1/experiments/${id}`) return { body: { ...record, id, ...fields } }
    if (url.startsWith(`/api/v1/experiments/${id}/metrics`)) return { body: { series: [] } }
    if (url.startsWith(`/api/v1/experiments/${id}/`)) return { body: { items: [] } }
    return undefined
  })
}

function renderDetail(id: string) {
  render(
    <AsUser me={ME.member}>
      <MemoryRouter initialEntries={[`/experiments/${id}`]}>
        <Routes>
          <Route path="/experiments/:experimentId" element={<ExperimentDetailPage />} />
        </Routes>
      </MemoryRouter>
    </AsUser>,
  )
}

describe('links to the study pages', () => {
  it("the hyper_tuner card opens the study form, other cards their launch form", async () => {
    const card = (id: string) => ({ id, name: id, description: '', version: '0.1.0', installed: true, package: null, category: 'x', official: true })
    fakeFetch(({ url }) => (url === '/api/v1/pipelines' ? { body: { items: [card('hyper_tuner'), card('image_classifier')] } } : undefined))
    render(
      <AsUser me={ME.member}>
        <MemoryRouter>
          <PipelinesPage />
        </MemoryRouter>
      </AsUser>,
    )
    expect(await screen.findByTestId('launch-hyper_tuner')).toHaveAttribute('href', '/studies/new')
    expect(screen.getByTestId('launch-hyper_tuner')).toHaveTextContent('New study')
    expect(screen.getByTestId('launch-image_classifier')).toHaveAttribute('href', '/pipelines/image_classifier')
  })

  it('a launch form offers to tune its pipeline', () => {
    const detail = { id: 'image_classifier', name: 'Image Classifier', description: '', version: '0.1.0', installed: true, config_schema: { properties: {} }, default_config: {} }
    render(
      <AsUser me={ME.member}>
        <MemoryRouter>
          <LaunchForm pipeline={detail} source={null} />
        </MemoryRouter>
      </AsUser>,
    )
    expect(screen.getByTestId('tune-pipeline')).toHaveAttribute('href', '/studies/new?target=image_classifier')
  })

  it("a study's experiment page points to its study view", async () => {
    serveExperiment('s1', { pipeline_id: 'hyper_tuner' })
    renderDetail('s1')
    expect(await screen.findByTestId('open-study')).toHaveAttribute('href', '/studies/s1')
  })

  it("a trial's experiment page points to its study", async () => {
    serveExperiment('t1', { pipeline_id: 'image_classifier', parent_id: 's1', tags: ['trial'] })
    renderDetail('t1')
    expect(await screen.findByTestId('open-parent-study')).toHaveAttribute('href', '/studies/s1')
    expect(screen.queryByTestId('open-study')).toBeNull()
  })

  it('a plain re-run (a child without the trial tag) has no study link', async () => {
    serveExperiment('r1', { pipeline_id: 'image_classifier', parent_id: 'e0' })
    renderDetail('r1')
    await screen.findByTestId('experiment-status')
    expect(screen.queryByTestId('open-parent-study')).toBeNull()
  })
})
