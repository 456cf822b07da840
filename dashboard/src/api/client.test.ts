import { afterEach, describe, expect, it } from 'vitest'
import { fakeFetch, UNAUTHENTICATED } from '../test/fixtures'
import { api, ApiError, experimentQueryParams, normaliseFieldPath, normaliseMetrics, parseErrorBody, parseRetryAfter } from './client'
import { isLoginRequired, loginSucceeded, resetSession } from './session'

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
  resetSession()
})

describe('errors', () => {
  it("reads the API's error shape with field paths relative to the config", () => {
    const err = parseErrorBody(
      422,
      {
        error: {
          code: 'invalid_config',
          message: "invalid config for pipeline 'image_classifier': epochs: too small",
          fields: [
            { path: 'config.epochs', message: 'Input should be greater than or equal to 1' },
            { path: 'config', message: 'Value error, data_path is required' },
            { path: 'name', message: 'String should have at least 1 character' },
          ],
        },
      },
      'fallback',
    )
    expect(err.status).toBe(422)
    expect(err.message).toBe("invalid config for pipeline 'image_classifier': epochs: too small")
    expect(err.fieldErrors).toEqual([
      { path: 'epochs', message: 'Input should be greater than or equal to 1' },
      { path: '', message: 'Value error, data_path is required' },
      { path: 'name', message: 'String should have at least 1 character' },
    ])
  })

  it("reads FastAPI's default shape too", () => {
    const err = parseErrorBody(422, { detail: [{ loc: ['body', 'config', 'lr'], msg: 'bad' }] }, 'fallback')
    expect(err.fieldErrors).toEqual([{ path: 'lr', message: 'bad' }])
    expect(err.message).toBe('lr: bad')
    expect(normaliseFieldPath('body.config.optimizer.lr')).toBe('optimizer.lr')
    expect(normaliseFieldPath(['query', 'limit'])).toBe('limit')
  })

  it('says the API is unreachable when fetch fails', async () => {
    globalThis.fetch = (async () => {
      throw new TypeError('Failed to fetch')
    }) as typeof fetch
    const err = await api.pipelines().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect((err as ApiError).unreachable).toBe(true)
    expect((err as ApiError).message).toBe('Cannot reach the AzuraForge API. Is the server running (`azuraforge up`)?')
  })
})

describe('responses', () => {
  it('turns the metrics answer into sorted series', () => {
    expect(
      normaliseMetrics({
        experiment_id: 'e',
        max_points: 1000,
        series: [
          { name: 'loss', steps: [1, 2, 3], values: [3, null, 1], epochs: [1, 2, 3], total_points: 3, downsampled: false },
          { name: 'acc', steps: [2, 1], values: [0.9, 0.5], epochs: [2, 1], total_points: 2, downsampled: false },
        ],
      }),
    ).toEqual([
      { name: 'loss', steps: [1, 2, 3], values: [3, null, 1], xKind: 'epoch' },
      { name: 'acc', steps: [1, 2], values: [0.5, 0.9], xKind: 'epoch' },
    ])
    expect(normaliseMetrics({ metrics: { loss: [{ step: 1, value: 2 }] } })).toEqual([{ name: 'loss', steps: [1], values: [2] }])
  })

  it('builds the list query the API reads', () => {
    expect(
      experimentQueryParams({ pipeline: 'image_classifier', status: ['running', 'queued'], tags: ['a'], search: ' digits ', sort: 'name', descending: false, limit: 50, offset: 100 }),
    ).toEqual({ pipeline_id: 'image_classifier', status: ['running', 'queued'], tag: ['a'], q: 'digits', sort: 'name', order: 'asc', limit: 50, offset: 100, estimate_total: true })
  })

  it('sends the list request with repeated parameters', async () => {
    const calls = fakeFetch(() => ({ body: { items: [], next_cursor: null, total: 0, limit: 50 } }))
    const page = await api.experiments({ status: ['running', 'queued'], tags: ['x y'], limit: 50, offset: 0 })
    expect(calls[0].url).toBe('/api/v1/experiments?status=running&status=queued&tag=x+y&limit=50&offset=0&estimate_total=true')
    expect(page).toEqual({ items: [], total: 0, total_exact: true, next_cursor: null, prev_cursor: null, offset: 0, limit: 50 })
  })

  it('pages by keyset cursor, with the estimated total', async () => {
    const calls = fakeFetch(() => ({ body: { items: [], next_cursor: 'n3', prev_cursor: 'p1', estimated_total: 120_000, estimate_exact: false, total: null, limit: 50 } }))
    const page = await api.experiments({ limit: 50, cursor: 'c2' })
    expect(calls[0].url).toBe('/api/v1/experiments?limit=50&cursor=c2&estimate_total=true')
    expect(page).toMatchObject({ total: 120_000, total_exact: false, next_cursor: 'n3', prev_cursor: 'p1' })
  })

  it('re-runs with only the changes the rerun route accepts', async () => {
    const calls = fakeFetch(() => ({ status: 201, body: { id: 'new', name: 'n', pipeline_id: 'p', status: 'queued', tags: [], config: {}, created_at: 'x' } }))
    const created = await api.rerun('old', { pipeline_id: 'p', config: { epochs: 2 }, name: 'n', tags: ['t'] })
    expect(calls[0]).toEqual({ method: 'POST', url: '/api/v1/experiments/old/rerun', body: { config: { epochs: 2 }, name: 'n', tags: ['t'] } })
    expect(created.id).toBe('new')
  })
})

describe('authentication', () => {
  it('sends same-origin credentials (the HttpOnly session cookie)', async () => {
    const inits: RequestInit[] = []
    globalThis.fetch = (async (_: RequestInfo | URL, init?: RequestInit) => {
      inits.push(init ?? {})
      return new Response('{"items": []}', { status: 200 })
    }) as typeof fetch
    await api.pipelines()
    expect(inits[0].credentials).toBe('same-origin')
  })

  it('on a 401 asks for a login and sends the request again once signed in', async () => {
    let signedIn = false
    const calls = fakeFetch(({ url }) => (signedIn ? { body: { items: [{ id: 'p' }] } } : url === '/api/v1/pipelines' ? UNAUTHENTICATED : undefined))
    const result = api.pipelines()
    await new Promise((r) => setTimeout(r, 0))
    expect(isLoginRequired()).toBe(true)
    signedIn = true
    loginSucceeded()
    expect(await result).toEqual([{ id: 'p' }])
    expect(isLoginRequired()).toBe(false)
    expect(calls.map((c) => c.url)).toEqual(['/api/v1/pipelines', '/api/v1/pipelines'])
  })

  it('a request waiting for the login gives up when its page goes away', async () => {
    fakeFetch(() => UNAUTHENTICATED)
    const ctrl = new AbortController()
    const result = api.pipelines(ctrl.signal).catch((e: unknown) => e)
    await new Promise((r) => setTimeout(r, 0))
    ctrl.abort()
    expect(((await result) as DOMException).name).toBe('AbortError')
  })

  it("a failed login is the login's own answer, with the wait of a 429", async () => {
    fakeFetch(() => ({ status: 401, body: { error: { code: 'invalid_credentials', message: 'invalid username or password' } } }))
    const bad = (await api.login('ada', 'nope').catch((e: unknown) => e)) as ApiError
    expect(bad.status).toBe(401)
    expect(bad.code).toBe('invalid_credentials')
    expect(isLoginRequired()).toBe(false)
    fakeFetch(() => ({ status: 429, body: { error: { code: 'rate_limited', message: 'too many attempts' } }, headers: { 'Retry-After': '42' } }))
    const limited = (await api.login('ada', 'nope').catch((e: unknown) => e)) as ApiError
    expect(limited.retryAfter).toBe(42)
    expect(limited.code).toBe('rate_limited')
  })

  it('reads Retry-After as seconds or as a date', () => {
    expect(parseRetryAfter('30')).toBe(30)
    expect(parseRetryAfter('Wed, 21 Oct 2026 07:28:30 GMT', Date.parse('Wed, 21 Oct 2026 07:28:00 GMT'))).toBe(30)
    expect(parseRetryAfter(null)).toBeNull()
    expect(parseRetryAfter('soon')).toBeNull()
  })
})
