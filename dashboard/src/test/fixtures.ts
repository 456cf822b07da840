// JSON Schemas as pydantic v2 writes them, and a fake fetch for page tests.
import type { JsonSchema, Me } from '../api/types'

/** The shape of image_classifier's config schema (trimmed). */
export const CLASSIFIER_SCHEMA: JsonSchema = {
  additionalProperties: false,
  title: 'ImageClassifierConfig',
  type: 'object',
  properties: {
    dataset: {
      default: 'mnist_5k',
      description: 'Which images to train on.',
      enum: ['mnist_5k', 'digits_8x8', 'image_folder'],
      title: 'Dataset',
      type: 'string',
    },
    data_path: {
      anyOf: [{ type: 'string' }, { type: 'null' }],
      default: null,
      description: 'The folder with one subfolder of images per class.',
      title: 'Data folder',
    },
    max_samples: {
      anyOf: [{ maximum: 1000000, minimum: 30, type: 'integer' }, { type: 'null' }],
      default: null,
      title: 'Maximum images',
    },
    epochs: { default: 15, description: 'Passes over the training set.', maximum: 200, minimum: 1, title: 'Epochs', type: 'integer' },
    learning_rate: { default: 0.003, exclusiveMinimum: 0, maximum: 1.0, title: 'Learning rate', type: 'number' },
    augment: { default: true, title: 'Augmentation', type: 'boolean' },
    conv_channels: { items: { type: 'integer' }, maxItems: 4, minItems: 1, title: 'Convolution channels', type: 'array' },
  },
}

/** stock_predictor's data fields (trimmed), each with the `x-applies-when` its dataset gives it. */
export const STOCK_SCHEMA: JsonSchema = {
  additionalProperties: false,
  title: 'StockConfig',
  type: 'object',
  properties: {
    csv_path: {
      anyOf: [{ format: 'data-path', type: 'string' }, { type: 'null' }],
      default: null,
      title: 'CSV file',
      'x-applies-when': { dataset: ['csv'] },
    },
    window: { default: 20, maximum: 365, minimum: 1, title: 'Window', type: 'integer' },
    dataset: { default: 'sp500', enum: ['sp500', 'nasdaq', 'msft', 'yfinance', 'csv'], title: 'Price series', type: 'string' },
    ticker: { default: 'MSFT', pattern: '^[A-Za-z0-9.^=\\-]{1,15}$', title: 'Ticker (yfinance)', type: 'string', 'x-applies-when': { dataset: ['yfinance'] } },
    start_date: { default: '2010-01-01', format: 'date', title: 'First day (yfinance)', type: 'string', 'x-applies-when': { dataset: ['yfinance'] } },
    end_date: {
      anyOf: [{ format: 'date', type: 'string' }, { type: 'null' }],
      default: null,
      title: 'Last day (yfinance)',
      'x-applies-when': { dataset: ['yfinance'] },
    },
  },
}

export const STOCK_DEFAULTS = { csv_path: null, window: 20, dataset: 'sp500', ticker: 'MSFT', start_date: '2010-01-01', end_date: null }

/** Nested models and enums through $defs/$ref/allOf, as pydantic emits them. */
export const NESTED_SCHEMA: JsonSchema = {
  $defs: {
    Activation: { enum: ['relu', 'tanh'], title: 'Activation', type: 'string' },
    Optimizer: {
      properties: {
        name: { default: 'adam', enum: ['adam', 'sgd'], title: 'Name', type: 'string' },
        lr: { default: 0.001, exclusiveMinimum: 0, title: 'Lr', type: 'number' },
      },
      required: ['lr'],
      title: 'Optimizer',
      type: 'object',
    },
  },
  properties: {
    optimizer: { $ref: '#/$defs/Optimizer', description: 'How weights move.' },
    activation: { allOf: [{ $ref: '#/$defs/Activation' }], default: 'relu', description: 'Non-linearity.' },
    head: { anyOf: [{ $ref: '#/$defs/Activation' }, { type: 'null' }], default: null, title: 'Head activation' },
    mode: { anyOf: [{ const: 'fast' }, { const: 'slow' }], default: 'fast' },
    seed: { type: 'integer', title: 'Seed' },
  },
  required: ['seed'],
  title: 'Config',
  type: 'object',
}

export interface FakeCall {
  method: string
  url: string
  body: unknown
}

type Handler = (call: FakeCall) => { status?: number; body: unknown; headers?: Record<string, string> } | undefined

/** Installs a fetch that answers from `handler` and records every call. */
export function fakeFetch(handler: Handler): FakeCall[] {
  const calls: FakeCall[] = []
  const impl = async (input: RequestInfo | URL, init?: RequestInit) => {
    if (init?.signal?.aborted) throw new DOMException('aborted', 'AbortError')
    const url = String(input)
    const method = init?.method ?? 'GET'
    const body = typeof init?.body === 'string' ? JSON.parse(init.body) : init?.body
    const call = { method, url, body }
    calls.push(call)
    const answer = handler(call)
    if (!answer) return new Response(JSON.stringify({ error: { code: 'not_found', message: `no fake for ${method} ${url}`, fields: [] } }), { status: 404 })
    if (answer.status === 204) return new Response(null, { status: 204 })
    return new Response(JSON.stringify(answer.body), {
      status: answer.status ?? 200,
      headers: { 'content-type': 'application/json', ...answer.headers },
    })
  }
  globalThis.fetch = impl as typeof fetch
  return calls
}

/** Signed-in users of each role, as GET /auth/me answers. */
export const ME: Record<'admin' | 'member' | 'viewer', Me> = {
  admin: { id: 1, username: 'ada', role: 'admin', disabled: false, created_at: '2026-11-01T09:00:00Z', last_login_at: null, auth: 'session' },
  member: { id: 2, username: 'max', role: 'member', disabled: false, created_at: '2026-11-01T09:00:00Z', last_login_at: null, auth: 'session' },
  viewer: { id: 3, username: 'vic', role: 'viewer', disabled: false, created_at: '2026-11-01T09:00:00Z', last_login_at: null, auth: 'session' },
}

/** The answer to a request without a valid session. */
export const UNAUTHENTICATED = { status: 401, body: { error: { code: 'unauthenticated', message: 'sign in first' } } }
