import { render, screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { MemoryRouter, Route, Routes } from 'react-router'
import { afterEach, describe, expect, it } from 'vitest'
import type { PipelineDetail } from '../api/types'
import { AsUser } from '../test/auth'
import { CLASSIFIER_SCHEMA, fakeFetch, ME, STOCK_DEFAULTS, STOCK_SCHEMA } from '../test/fixtures'
import { LaunchForm, LaunchPage } from './LaunchPage'

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
})

const pipeline: PipelineDetail = {
  id: 'image_classifier',
  name: 'Image Classifier',
  description: 'Trains a CNN.',
  version: '0.1.0',
  installed: true,
  config_schema: CLASSIFIER_SCHEMA,
  default_config: { dataset: 'mnist_5k', data_path: null, max_samples: null, epochs: 15, learning_rate: 0.003, augment: true, conv_channels: [16, 32] },
}

const stock: PipelineDetail = {
  id: 'stock_predictor',
  name: 'Stock Predictor',
  description: 'Forecasts closing prices.',
  version: '0.1.0',
  installed: true,
  config_schema: STOCK_SCHEMA,
  default_config: STOCK_DEFAULTS,
}

function renderForm(me = ME.member, detail = pipeline) {
  return render(
    <AsUser me={me}>
      <MemoryRouter initialEntries={[`/pipelines/${detail.id}`]}>
        <Routes>
          <Route path="/pipelines/:pipelineId" element={<LaunchForm pipeline={detail} source={null} />} />
          <Route path="/experiments/:id" element={<div data-testid="detail-page">detail</div>} />
        </Routes>
      </MemoryRouter>
    </AsUser>,
  )
}

describe('launch form', () => {
  it('generates the right input per field with defaults and help', () => {
    renderForm()
    const epochs = screen.getByTestId('field-epochs') as HTMLInputElement
    expect(epochs.type).toBe('number')
    expect(epochs.value).toBe('15')
    expect(epochs.min).toBe('1')
    expect(epochs.max).toBe('200')
    expect(epochs.step).toBe('1')
    expect((screen.getByTestId('field-learning_rate') as HTMLInputElement).step).toBe('any')
    const dataset = screen.getByTestId('field-dataset') as HTMLSelectElement
    expect([...dataset.options].map((o) => o.text)).toEqual(['mnist_5k', 'digits_8x8', 'image_folder'])
    expect(dataset.selectedOptions[0].text).toBe('mnist_5k')
    expect((screen.getByTestId('field-augment') as HTMLInputElement).checked).toBe(true)
    expect((screen.getByTestId('field-conv_channels') as HTMLInputElement).value).toBe('16, 32')
    expect(screen.getByTestId('field-max_samples')).toHaveValue(null)
    expect(screen.getByText('Passes over the training set.')).toHaveTextContent('Passes over the training set. (1 – 200)')
    expect(screen.getByRole('button', { name: 'Upload a file for Data folder' })).toBeInTheDocument()
  })

  it('sends the edited config and opens the new experiment', async () => {
    const calls = fakeFetch(({ method, url }) =>
      method === 'POST' && url === '/api/v1/experiments'
        ? { status: 201, body: { id: 'abc', name: 'n', pipeline_id: 'image_classifier', status: 'queued', tags: [], config: {}, created_at: 'x', owner: 'max' } }
        : undefined,
    )
    const user = userEvent.setup()
    renderForm()
    await user.clear(screen.getByTestId('field-epochs'))
    await user.type(screen.getByTestId('field-epochs'), '2')
    await user.selectOptions(screen.getByTestId('field-dataset'), 'digits_8x8')
    await user.click(screen.getByTestId('field-augment'))
    await user.type(screen.getByTestId('exp-name'), 'quick digits')
    await user.type(screen.getByTestId('exp-tags'), 'smoke, e2e')
    await user.click(screen.getByTestId('submit'))
    await screen.findByTestId('detail-page')
    expect(calls[0].body).toEqual({
      pipeline_id: 'image_classifier',
      name: 'quick digits',
      tags: ['smoke', 'e2e'],
      config: { dataset: 'digits_8x8', data_path: null, max_samples: null, epochs: 2, learning_rate: 0.003, augment: false, conv_channels: [16, 32] },
    })
  })

  it("shows the API's field errors next to the fields", async () => {
    fakeFetch(() => ({
      status: 422,
      body: {
        error: {
          code: 'invalid_config',
          message: 'invalid config',
          fields: [
            { path: 'config.epochs', message: 'Input should be greater than or equal to 1' },
            { path: 'config', message: "Value error, data_path is required for dataset 'image_folder'" },
          ],
        },
      },
    }))
    const user = userEvent.setup()
    renderForm()
    await user.clear(screen.getByTestId('field-epochs'))
    await user.type(screen.getByTestId('field-epochs'), '0')
    await user.click(screen.getByTestId('submit'))
    expect(await screen.findByTestId('error-epochs')).toHaveTextContent(/^Input should be greater than or equal to 1$/)
    expect(screen.getByTestId('error-data_path')).toHaveTextContent(/^data_path is required for dataset 'image_folder'$/)
    expect(screen.getByTestId('field-epochs')).toHaveAttribute('aria-invalid', 'true')
    expect(screen.getByTestId('error-summary')).toHaveTextContent(/^2 fields need attention$/)
    // fixing the value and submitting again clears the errors once the API accepts it
    fakeFetch(() => ({ status: 201, body: { id: 'ok', name: 'n', pipeline_id: 'p', status: 'queued', tags: [], config: {}, created_at: 'x' } }))
    await user.clear(screen.getByTestId('field-epochs'))
    await user.type(screen.getByTestId('field-epochs'), '3')
    await user.click(screen.getByTestId('submit'))
    await screen.findByTestId('detail-page')
  })

  it('catches text that is not a number before calling the API', async () => {
    const calls = fakeFetch(() => undefined)
    const user = userEvent.setup()
    renderForm()
    await user.clear(screen.getByTestId('field-conv_channels'))
    await user.type(screen.getByTestId('field-conv_channels'), '16, abc')
    await user.click(screen.getByTestId('submit'))
    expect(await screen.findByTestId('error-conv_channels')).toHaveTextContent(/^"abc": enter a number$/)
    expect(calls).toHaveLength(0)
  })

  it('says so when the API cannot be reached', async () => {
    globalThis.fetch = (async () => {
      throw new TypeError('Failed to fetch')
    }) as typeof fetch
    const user = userEvent.setup()
    renderForm()
    await user.click(screen.getByTestId('submit'))
    await waitFor(() => expect(screen.getByTestId('submit-error-message')).toHaveTextContent(/^Cannot reach the AzuraForge API/))
  })
})

describe('launch page', () => {
  it('uploads a data file and puts the path it answers (uploads/<id>) in the field', async () => {
    const calls = fakeFetch(({ method, url }) =>
      method === 'POST' && url === '/api/v1/uploads'
        ? { status: 201, body: { id: 'u1.csv', path: 'uploads/u1.csv', filename: 'rows.csv', size: 12, sha256: 'x', kind: 'table' } }
        : undefined,
    )
    const user = userEvent.setup()
    renderForm()
    await user.upload(screen.getByTestId('upload-data_path'), new File(['date,temp\n'], 'rows.csv', { type: 'text/csv' }))
    await waitFor(() => expect(screen.getByTestId('field-data_path')).toHaveValue('uploads/u1.csv'))
    expect(calls[0].method).toBe('POST')
    expect(calls[0].body).toBeInstanceOf(FormData)
    expect(((calls[0].body as FormData).get('file') as File).name).toBe('rows.csv')
  })

  it('re-runs an experiment from its config with edits', async () => {
    const calls = fakeFetch(({ method, url }) => {
      if (url === '/api/v1/experiments/old1')
        return { body: { id: 'old1', name: 'first', pipeline_id: 'image_classifier', status: 'succeeded', tags: ['a'], created_at: 'x', owner: 'ada', config: { ...pipeline.default_config, epochs: 3, dataset: 'digits_8x8' } } }
      if (url === '/api/v1/pipelines/image_classifier') return { body: pipeline }
      if (method === 'POST' && url === '/api/v1/experiments/old1/rerun')
        return { status: 201, body: { id: 'new1', name: 'first (re-run)', pipeline_id: 'image_classifier', status: 'queued', tags: ['a'], created_at: 'x', config: {} } }
      return undefined
    })
    const user = userEvent.setup()
    render(
      <AsUser me={ME.member}>
        <MemoryRouter initialEntries={['/pipelines/image_classifier?from=old1']}>
          <Routes>
            <Route path="/pipelines/:pipelineId" element={<LaunchPage />} />
            <Route path="/experiments/:id" element={<div data-testid="detail-page">detail</div>} />
          </Routes>
        </MemoryRouter>
      </AsUser>,
    )
    expect(await screen.findByTestId('field-epochs')).toHaveValue(3)
    expect(screen.getByTestId('exp-name')).toHaveValue('first (re-run)')
    await user.clear(screen.getByTestId('field-epochs'))
    await user.type(screen.getByTestId('field-epochs'), '5')
    await user.click(screen.getByTestId('submit'))
    await screen.findByTestId('detail-page')
    const post = calls.find((c) => c.method === 'POST')!
    expect(post.url).toBe('/api/v1/experiments/old1/rerun')
    expect(post.body).toMatchObject({ name: 'first (re-run)', tags: ['a'], config: { epochs: 5, dataset: 'digits_8x8' } })
  })
})

describe('fields that apply only to some datasets (x-applies-when)', () => {
  const created = { status: 201, body: { id: 'new', name: 'n', pipeline_id: 'stock_predictor', status: 'queued', tags: [], config: {}, created_at: 'x', owner: 'max' } }

  it('shows the ticker and dates only for the online dataset, the CSV file only for csv', async () => {
    const user = userEvent.setup()
    renderForm(ME.member, stock)
    // the S&P 500 by default: no MSFT ticker, no dates, no CSV file beside it
    for (const hidden of ['ticker', 'start_date', 'end_date', 'csv_path']) expect(screen.queryByTestId(`field-${hidden}`)).toBeNull()
    expect(screen.queryByRole('button', { name: 'Upload a file for CSV file' })).toBeNull()
    await user.selectOptions(screen.getByTestId('field-dataset'), 'yfinance')
    expect(screen.getByTestId('field-ticker')).toHaveValue('MSFT')
    expect(screen.getByTestId('field-start_date')).toHaveValue('2010-01-01')
    expect(screen.getByTestId('field-end_date')).toBeInTheDocument()
    expect(screen.queryByTestId('field-csv_path')).toBeNull()
    await user.selectOptions(screen.getByTestId('field-dataset'), 'csv')
    expect(screen.getByTestId('field-csv_path')).toBeInTheDocument()
    expect(screen.getByRole('button', { name: 'Upload a file for CSV file' })).toBeInTheDocument()
    expect(screen.queryByTestId('field-ticker')).toBeNull()
  })

  it('submits a hidden field never, a shown one with what the user typed', async () => {
    const calls = fakeFetch(({ method }) => (method === 'POST' ? created : undefined))
    const user = userEvent.setup()
    renderForm(ME.member, stock)
    await user.selectOptions(screen.getByTestId('field-dataset'), 'yfinance')
    await user.clear(screen.getByTestId('field-ticker'))
    await user.type(screen.getByTestId('field-ticker'), 'AAPL')
    // back to the index: the typed ticker stays in the form, hidden, and is not sent
    await user.selectOptions(screen.getByTestId('field-dataset'), 'sp500')
    await user.click(screen.getByTestId('submit'))
    await screen.findByTestId('detail-page')
    expect((calls[0].body as { config: unknown }).config).toEqual({ window: 20, dataset: 'sp500' })
  })

  it('sends the ticker the user chose for the online dataset', async () => {
    const calls = fakeFetch(({ method }) => (method === 'POST' ? created : undefined))
    const user = userEvent.setup()
    renderForm(ME.member, stock)
    await user.selectOptions(screen.getByTestId('field-dataset'), 'yfinance')
    await user.clear(screen.getByTestId('field-ticker'))
    await user.type(screen.getByTestId('field-ticker'), 'AAPL')
    await user.click(screen.getByTestId('submit'))
    await screen.findByTestId('detail-page')
    expect((calls[0].body as { config: unknown }).config).toEqual({ window: 20, dataset: 'yfinance', ticker: 'AAPL', start_date: '2010-01-01', end_date: null })
  })

  it('shows an API error about a hidden field in the form banner, not under an invisible input', async () => {
    fakeFetch(() => ({
      status: 422,
      body: { error: { code: 'invalid_config', message: 'invalid config', fields: [{ path: 'config.ticker', message: 'String should match pattern' }] } },
    }))
    const user = userEvent.setup()
    renderForm(ME.member, stock)
    await user.click(screen.getByTestId('submit'))
    expect(await screen.findByTestId('form-errors')).toHaveTextContent(/^ticker: String should match pattern$/)
    expect(screen.getByTestId('error-summary')).toHaveTextContent(/^1 field needs attention$/)
  })
})

describe('launch form for a viewer', () => {
  it('shows the settings but offers no start and no upload', async () => {
    const calls = fakeFetch(() => undefined)
    const user = userEvent.setup()
    renderForm(ME.viewer)
    expect(screen.getByTestId('read-only')).toHaveTextContent(/^Viewers have read-only access\./)
    expect(screen.getByTestId('submit')).toBeDisabled()
    expect(screen.queryByRole('button', { name: 'Upload a file for Data folder' })).toBeNull()
    await user.click(screen.getByTestId('submit'))
    expect(calls).toHaveLength(0)
  })
})
