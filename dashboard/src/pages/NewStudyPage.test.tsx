import { render, screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { MemoryRouter, Route, Routes } from 'react-router'
import { afterEach, describe, expect, it } from 'vitest'
import type { JsonSchema } from '../api/types'
import { AsUser } from '../test/auth'
import { CLASSIFIER_SCHEMA, fakeFetch, ME, STOCK_DEFAULTS, STOCK_SCHEMA, type FakeCall } from '../test/fixtures'
import { NewStudyPage } from './NewStudyPage'

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
})

/** hyper_tuner's config schema, trimmed to what the form reads. */
const TUNER_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    target: { default: 'image_classifier', title: 'Pipeline to tune', type: 'string' },
    objective: { default: 'val_accuracy', title: 'Objective metric', type: 'string' },
    direction: { default: 'maximize', enum: ['minimize', 'maximize'], title: 'Direction', type: 'string' },
    space: { additionalProperties: { type: 'object' }, title: 'Search space', type: 'object' },
    base_config: { additionalProperties: true, title: 'Fixed settings', type: 'object' },
    sampler: { default: 'tpe', enum: ['tpe', 'random', 'grid'], title: 'Sampler', type: 'string' },
    n_trials: { default: 20, maximum: 1000, minimum: 1, title: 'Trials', type: 'integer' },
    parallel: { default: 2, maximum: 64, minimum: 1, title: 'Parallel trials', type: 'integer' },
    seed: { anyOf: [{ maximum: 2147483647, minimum: 0, type: 'integer' }, { type: 'null' }], default: 0, title: 'Seed' },
    startup_trials: { default: 5, minimum: 0, title: 'Startup trials', type: 'integer', 'x-applies-when': { sampler: ['tpe'] } },
  },
}
const TUNER_DEFAULTS = { target: 'image_classifier', objective: 'val_accuracy', direction: 'maximize', space: {}, base_config: {}, sampler: 'tpe', n_trials: 20, parallel: 2, seed: 0, startup_trials: 5 }
const CLASSIFIER_DEFAULTS = { dataset: 'mnist_5k', data_path: null, max_samples: null, epochs: 15, learning_rate: 0.003, augment: true, conv_channels: [16, 32] }

const summary = (id: string, name: string) => ({ id, name, description: '', version: '0.1.0', installed: true, package: null, category: 'x', official: true })

function serve(extra: (call: FakeCall) => { status?: number; body: unknown } | undefined = () => undefined) {
  return fakeFetch((call) => {
    const { url } = call
    if (url === '/api/v1/pipelines')
      return { body: { items: [summary('hyper_tuner', 'Hyper Tuner'), summary('image_classifier', 'Image Classifier'), summary('stock_predictor', 'Stock Predictor')] } }
    if (url === '/api/v1/pipelines/hyper_tuner') return { body: { ...summary('hyper_tuner', 'Hyper Tuner'), config_schema: TUNER_SCHEMA, default_config: TUNER_DEFAULTS } }
    if (url === '/api/v1/pipelines/image_classifier') return { body: { ...summary('image_classifier', 'Image Classifier'), config_schema: CLASSIFIER_SCHEMA, default_config: CLASSIFIER_DEFAULTS } }
    if (url === '/api/v1/pipelines/stock_predictor') return { body: { ...summary('stock_predictor', 'Stock Predictor'), config_schema: STOCK_SCHEMA, default_config: STOCK_DEFAULTS } }
    const answer = extra(call)
    if (answer) return answer
    if (url.startsWith('/api/v1/experiments?')) return { body: { items: [], next_cursor: null, total: 0, limit: 1 } }
    return undefined
  })
}

function renderPage(me = ME.member, path = '/studies/new') {
  return render(
    <AsUser me={me}>
      <MemoryRouter initialEntries={[path]}>
        <Routes>
          <Route path="/studies/new" element={<NewStudyPage />} />
          <Route path="/studies/:id" element={<div data-testid="study-page">study</div>} />
        </Routes>
      </MemoryRouter>
    </AsUser>,
  )
}

describe('new study form', () => {
  it('edits a search space from the target schema and sends the study config', async () => {
    const calls = serve(({ method, url }) =>
      method === 'POST' && url === '/api/v1/experiments' ? { status: 201, body: { id: 'st1', name: 'n', pipeline_id: 'hyper_tuner', status: 'queued', tags: [], config: {}, created_at: 'x' } } : undefined,
    )
    const user = userEvent.setup()
    renderPage()
    // only pipelines to tune are offered, hyper_tuner itself is not
    const target = (await screen.findByTestId('study-target')) as HTMLSelectElement
    expect([...target.options].map((o) => o.value)).toEqual(['image_classifier', 'stock_predictor'])
    expect(await screen.findByTestId('space-empty')).toBeInTheDocument()
    // the study's own settings come from hyper_tuner's schema, the fixed ones from the target's
    expect(screen.getByTestId('field-n_trials')).toHaveValue(20)
    expect(screen.getByTestId('base-field-epochs')).toHaveValue(15)

    await user.selectOptions(screen.getByTestId('add-param'), 'learning_rate')
    expect(screen.getByTestId('low-learning_rate')).toHaveValue(0.0003)
    expect(screen.getByTestId('log-learning_rate')).toBeChecked()
    await user.clear(screen.getByTestId('low-learning_rate'))
    await user.type(screen.getByTestId('low-learning_rate'), '0.001')
    await user.selectOptions(screen.getByTestId('add-param'), 'epochs')
    await user.selectOptions(screen.getByTestId('kind-epochs'), 'choice')
    await user.clear(screen.getByTestId('choices-epochs'))
    await user.type(screen.getByTestId('choices-epochs'), '2, 4')
    await user.selectOptions(screen.getByTestId('add-param'), 'dataset')
    await user.click(screen.getByTestId('choice-dataset-2'))
    // a tuned setting leaves the fixed-settings form and the add list
    expect(screen.queryByTestId('base-field-epochs')).toBeNull()
    expect([...(screen.getByTestId('add-param') as HTMLSelectElement).options].map((o) => o.value)).not.toContain('epochs')
    await user.click(screen.getByTestId('remove-dataset'))
    expect(screen.getByTestId('base-field-dataset')).toBeInTheDocument()
    await user.selectOptions(screen.getByTestId('base-field-dataset'), 'digits_8x8')
    await user.clear(screen.getByTestId('field-n_trials'))
    await user.type(screen.getByTestId('field-n_trials'), '3')
    await user.type(screen.getByTestId('study-name-input'), 'lr search')
    await user.click(screen.getByTestId('submit-study'))

    await screen.findByTestId('study-page')
    const post = calls.find((c) => c.method === 'POST')!
    expect(post.body).toEqual({
      pipeline_id: 'hyper_tuner',
      name: 'lr search',
      tags: ['study'],
      config: {
        target: 'image_classifier',
        objective: 'val_accuracy',
        direction: 'maximize',
        space: { learning_rate: { type: 'float', low: 0.001, high: 1, log: true }, epochs: { type: 'choice', choices: [2, 4] } },
        base_config: { dataset: 'digits_8x8', data_path: null, max_samples: null, augment: true, conv_channels: [16, 32] },
        sampler: 'tpe',
        n_trials: 3,
        parallel: 2,
        seed: 0,
        startup_trials: 5,
      },
    })
  })

  it("shows the API's errors beside the parameter, the fixed setting and the study setting they name", async () => {
    const calls = serve(({ method, url }) =>
      method === 'POST' && url === '/api/v1/experiments'
        ? {
            status: 422,
            body: {
              error: {
                code: 'invalid_config',
                message: 'invalid config',
                fields: [
                  { path: 'config.space.learning_rate', message: '2.0 is not a valid learning_rate: Input should be less than or equal to 1' },
                  { path: 'config.base_config.max_samples', message: 'Input should be greater than or equal to 30' },
                  { path: 'config.n_trials', message: 'Input should be less than or equal to 1000' },
                  { path: 'config.objective', message: 'tune on a validation metric (val_...), never on the test split' },
                ],
              },
            },
          }
        : undefined,
    )
    const user = userEvent.setup()
    renderPage()
    await user.selectOptions(await screen.findByTestId('add-param'), 'learning_rate')
    await user.click(screen.getByTestId('submit-study'))
    expect(await screen.findByTestId('error-space-learning_rate')).toHaveTextContent('2.0 is not a valid learning_rate: Input should be less than or equal to 1')
    expect(screen.getByTestId('param-learning_rate')).toHaveClass('field-invalid')
    expect(screen.getByTestId('base-error-max_samples')).toHaveTextContent('Input should be greater than or equal to 30')
    expect(screen.getByTestId('error-n_trials')).toHaveTextContent('Input should be less than or equal to 1000')
    expect(screen.getByTestId('error-objective')).toHaveTextContent('never on the test split')
    expect(screen.getByTestId('error-summary')).toHaveTextContent('4 fields need attention')
    expect(screen.queryByTestId('study-page')).toBeNull()
    // editing the parameter clears its stale error
    await user.type(screen.getByTestId('high-learning_rate'), '0')
    expect(screen.queryByTestId('error-space-learning_rate')).toBeNull()
    expect(calls.filter((c) => c.method === 'POST')).toHaveLength(1)
  })

  it('refuses an empty search space or unreadable values before asking the API', async () => {
    const calls = serve()
    const user = userEvent.setup()
    renderPage()
    await screen.findByTestId('space-empty')
    await user.click(screen.getByTestId('submit-study'))
    expect(await screen.findByTestId('form-errors')).toHaveTextContent('add at least one setting to tune')
    await user.selectOptions(screen.getByTestId('add-param'), 'epochs')
    await user.clear(screen.getByTestId('low-epochs'))
    await user.type(screen.getByTestId('low-epochs'), '1.5')
    await user.click(screen.getByTestId('submit-study'))
    expect(await screen.findByTestId('error-space-epochs')).toHaveTextContent('low: enter a whole number')
    expect(calls.filter((c) => c.method === 'POST')).toHaveLength(0)
  })

  it('follows the objective with the direction, and the target with its runs’ metrics', async () => {
    serve(({ url }) => {
      if (url.startsWith('/api/v1/experiments?') && url.includes('pipeline_id=stock_predictor'))
        return { body: { items: [{ id: 'run1', name: 'r', pipeline_id: 'stock_predictor', status: 'succeeded', tags: [], created_at: 'x' }], next_cursor: null, total: 1, limit: 1 } }
      if (url.startsWith('/api/v1/experiments/run1/metrics'))
        return { body: { series: [{ name: 'loss', steps: [1], values: [1] }, { name: 'val_loss', steps: [1], values: [1] }, { name: 'val_mae', steps: [1], values: [1] }] } }
      return undefined
    })
    const user = userEvent.setup()
    renderPage()
    const objective = await screen.findByTestId('study-objective')
    await user.selectOptions(screen.getByTestId('study-target'), 'stock_predictor')
    // stock_predictor's last run reports val_loss and val_mae (no val_accuracy): the objective follows
    await waitFor(() => expect(objective).toHaveValue('val_mae'))
    expect(screen.getByTestId('study-direction')).toHaveValue('minimize')
    expect(await screen.findByTestId('base-field-window')).toBeInTheDocument()
    await user.clear(objective)
    await user.type(objective, 'val_r2')
    expect(screen.getByTestId('study-direction')).toHaveValue('maximize')
    await user.selectOptions(screen.getByTestId('study-direction'), 'minimize')
    await user.clear(objective)
    await user.type(objective, 'val_accuracy')
    expect(screen.getByTestId('study-direction')).toHaveValue('minimize') // chosen by hand: kept
  })

  it('starts again from an earlier study, with its space and settings', async () => {
    const earlier = {
      id: 'old',
      name: 'first try',
      pipeline_id: 'hyper_tuner',
      status: 'succeeded',
      tags: ['study', 'digits'],
      created_at: 'x',
      config: {
        ...TUNER_DEFAULTS,
        objective: 'val_loss',
        direction: 'minimize',
        n_trials: 7,
        space: { epochs: { type: 'int', low: 2, high: 8, step: 2 }, dataset: { type: 'choice', choices: ['digits_8x8'] } },
        base_config: { max_samples: 300, augment: false },
      },
    }
    serve(({ url }) => (url === '/api/v1/experiments/old' ? { body: earlier } : undefined))
    renderPage(ME.member, '/studies/new?from=old')
    expect(await screen.findByTestId('param-epochs')).toBeInTheDocument()
    expect(screen.getByTestId('step-epochs')).toHaveValue(2)
    expect(screen.getByTestId('choice-dataset-0')).not.toBeChecked()
    expect(screen.getByTestId('choice-dataset-1')).toBeChecked()
    expect(screen.getByTestId('base-field-max_samples')).toHaveValue(300)
    expect(screen.getByTestId('base-field-augment')).not.toBeChecked()
    expect(screen.getByTestId('study-objective')).toHaveValue('val_loss')
    expect(screen.getByTestId('study-direction')).toHaveValue('minimize')
    expect(screen.getByTestId('field-n_trials')).toHaveValue(7)
    expect(screen.getByTestId('study-name-input')).toHaveValue('first try (again)')
  })

  it('starts on the pipeline a launch form sent it from', async () => {
    serve()
    renderPage(ME.member, '/studies/new?target=stock_predictor')
    expect(await screen.findByTestId('study-target')).toHaveValue('stock_predictor')
    expect(await screen.findByTestId('base-field-window')).toBeInTheDocument()
  })

  it('lets viewers look but not start', async () => {
    serve()
    renderPage(ME.viewer)
    expect(await screen.findByTestId('read-only')).toBeInTheDocument()
    await screen.findByTestId('space-empty')
    expect(screen.getByTestId('submit-study')).toBeDisabled()
  })
})
