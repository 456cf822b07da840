// A small typed client for /api/v1. It normalises the few response shapes that may vary
// (lists bare or wrapped, metric histories by name or as rows) so pages see one shape.
import { requireLogin } from './session'
import type {
  ApiToken,
  Artifact,
  AuditEvent,
  AuditPage,
  CreatedToken,
  CreatedUser,
  Experiment,
  ExperimentPage,
  FieldError,
  HealthInfo,
  JsonSchema,
  LoginResult,
  LogLine,
  Me,
  MetricSeries,
  ModelInfo,
  PipelineDetail,
  PipelineSummary,
  Role,
  User,
} from './types'

export const API_PREFIX = '/api/v1'

/** An API failure with a readable message; `fieldErrors` for validation errors (422). */
export class ApiError extends Error {
  readonly status: number
  readonly fieldErrors: FieldError[]
  /** The API's error code (`invalid_credentials`, `rate_limited`, `forbidden`, ...). */
  code: string | null = null
  /** Seconds to wait before trying again (429 with Retry-After), else null. */
  retryAfter: number | null = null

  constructor(status: number, message: string, fieldErrors: FieldError[] = []) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.fieldErrors = fieldErrors
  }

  /** True when the API could not be reached at all (network down, server stopped). */
  get unreachable(): boolean {
    return this.status === 0
  }
}

type Query = Record<string, string | number | boolean | (string | number)[] | null | undefined>

function buildUrl(path: string, query?: Query): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null || value === '') continue
    if (Array.isArray(value)) value.forEach((v) => params.append(key, String(v)))
    else params.append(key, String(value))
  }
  const qs = params.toString()
  return `${API_PREFIX}${path}${qs ? `?${qs}` : ''}`
}

// Leading segments of an error location that are not part of the config's own field path.
const LOCATION_PREFIXES = new Set(['body', 'config', 'query', 'path'])

/** "body.config.epochs" / ["body", "config", "epochs"] -> "epochs". */
export function normaliseFieldPath(loc: unknown): string {
  const parts: string[] = Array.isArray(loc)
    ? loc.map((p) => String(p))
    : typeof loc === 'string'
      ? loc.split('.').filter((p) => p !== '')
      : []
  let i = 0
  while (i < parts.length - 1 && LOCATION_PREFIXES.has(parts[i])) i += 1
  if (parts.length === 1 && LOCATION_PREFIXES.has(parts[0])) return ''
  return parts.slice(i).join('.')
}

function asRecord(value: unknown): Record<string, unknown> | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null
}

function fieldErrorFrom(item: unknown): FieldError | null {
  const rec = asRecord(item)
  if (!rec) return typeof item === 'string' ? { path: '', message: item } : null
  const loc = rec.field ?? rec.path ?? rec.loc ?? rec.location ?? ''
  const message = rec.message ?? rec.msg ?? rec.detail ?? 'invalid value'
  return { path: normaliseFieldPath(loc), message: String(message) }
}

/** Reads the error body of any of the shapes an API may use into message + field errors. */
export function parseErrorBody(status: number, body: unknown, fallback: string): ApiError {
  const rec = asRecord(body)
  let message = fallback
  let fields: FieldError[] = []
  if (rec) {
    const inner = asRecord(rec.error) ?? rec
    const msg = inner.message ?? inner.msg ?? (typeof inner.detail === 'string' ? inner.detail : null)
    if (typeof msg === 'string' && msg) message = msg
    else if (typeof rec.error === 'string' && rec.error) message = rec.error
    const list =
      (Array.isArray(inner.errors) && inner.errors) ||
      (Array.isArray(inner.fields) && inner.fields) ||
      (Array.isArray(inner.field_errors) && inner.field_errors) ||
      (Array.isArray(inner.detail) && inner.detail) ||
      (Array.isArray(rec.errors) && rec.errors) ||
      []
    fields = list.map(fieldErrorFrom).filter((e): e is FieldError => e !== null)
    if (message === fallback && fields.length > 0) {
      message = fields.map((f) => (f.path ? `${f.path}: ${f.message}` : f.message)).join('; ')
    }
  } else if (typeof body === 'string' && body.trim()) {
    message = body.trim().slice(0, 300)
  }
  const err = new ApiError(status, message, fields)
  const inner = rec && (asRecord(rec.error) ?? rec)
  if (inner && typeof inner.code === 'string') err.code = inner.code
  return err
}

/** Retry-After (seconds, or an HTTP date) -> whole seconds from `now`; null when absent. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (!value) return null
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed)
  const at = Date.parse(trimmed)
  return Number.isFinite(at) ? Math.max(0, Math.ceil((at - now) / 1000)) : null
}

interface RequestOptions {
  query?: Query
  body?: unknown
  signal?: AbortSignal
  form?: FormData
  /** A 401 is this call's own answer (login, logout), not a reason to show the login page. */
  noLoginRetry?: boolean
}

async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const url = buildUrl(path, opts.query)
  const headers: Record<string, string> = { Accept: 'application/json' }
  let body: BodyInit | undefined
  if (opts.form) body = opts.form
  else if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(opts.body)
  }
  let response: Response
  for (;;) {
    try {
      // same-origin: the HttpOnly session cookie goes along; the page never sees it
      response = await fetch(url, { method, headers, body, signal: opts.signal, credentials: 'same-origin' })
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') throw err
      throw new ApiError(
        0,
        'Cannot reach the AzuraForge API. Is the server running (`azuraforge up`)?',
      )
    }
    if (response.status !== 401 || opts.noLoginRetry) break
    // Not signed in (or the session ended): show the login page, then send this again.
    await requireLogin(opts.signal)
  }
  const text = await response.text()
  let data: unknown = null
  if (text) {
    try {
      data = JSON.parse(text)
    } catch {
      data = text
    }
  }
  if (!response.ok) {
    const fallback =
      response.status >= 502 && response.status <= 504
        ? 'The AzuraForge API is not answering (the dev proxy got no response).'
        : `${method} ${path} failed with HTTP ${response.status}`
    const err = parseErrorBody(response.status, data, fallback)
    err.retryAfter = parseRetryAfter(response.headers.get('Retry-After'))
    throw err
  }
  return data as T
}

function listFrom<T>(data: unknown, ...keys: string[]): T[] {
  if (Array.isArray(data)) return data as T[]
  const rec = asRecord(data)
  if (rec) {
    for (const key of [...keys, 'items', 'data', 'results']) {
      if (Array.isArray(rec[key])) return rec[key] as T[]
    }
  }
  return []
}

function normaliseExperiment(raw: unknown): Experiment {
  const rec = (asRecord(raw) ?? {}) as Record<string, unknown>
  const tags = Array.isArray(rec.tags) ? rec.tags.map(String) : []
  return {
    ...(rec as unknown as Experiment),
    config: (asRecord(rec.config) as Record<string, unknown>) ?? {},
    tags,
  }
}

/** Metric histories in any of the shapes the API may use -> one series per name. */
export function normaliseMetrics(data: unknown): MetricSeries[] {
  const out = new Map<string, MetricSeries>()
  const series = (name: string): MetricSeries => {
    let s = out.get(name)
    if (!s) {
      s = { name, steps: [], values: [] }
      out.set(name, s)
    }
    return s
  }
  const pushPoint = (name: string, p: unknown) => {
    const rec = asRecord(p)
    if (rec) {
      const x = Number(rec.step ?? rec.x ?? rec.epoch)
      if (!Number.isFinite(x)) return
      const v = rec.value ?? rec.y
      series(name).steps.push(x)
      series(name).values.push(typeof v === 'number' ? v : null)
    } else if (Array.isArray(p) && p.length >= 2) {
      series(name).steps.push(Number(p[0]))
      series(name).values.push(typeof p[1] === 'number' ? p[1] : null)
    }
  }
  const fromNamed = (name: string, value: unknown) => {
    const rec = asRecord(value)
    if (Array.isArray(value)) value.forEach((p) => pushPoint(name, p))
    else if (rec && Array.isArray(rec.points)) rec.points.forEach((p) => pushPoint(name, p))
    else if (rec && Array.isArray(rec.steps) && Array.isArray(rec.values)) {
      const s = series(name)
      if (Array.isArray(rec.epochs)) {
        const epochs = rec.epochs as unknown[]
        s.xKind = rec.steps.every((x, i) => x === epochs[i]) ? 'epoch' : 'step'
      }
      rec.steps.forEach((x, i) => {
        s.steps.push(Number(x))
        const v = (rec.values as unknown[])[i]
        s.values.push(typeof v === 'number' ? v : null)
      })
    }
  }
  const rec = asRecord(data)
  const container = rec && (rec.metrics ?? rec.series ?? rec.items)
  const body = container !== undefined && container !== null ? container : data
  if (Array.isArray(body)) {
    for (const item of body) {
      const r = asRecord(item)
      if (!r || typeof r.name !== 'string') continue
      if ('points' in r || 'steps' in r) fromNamed(r.name, r)
      else pushPoint(r.name, r)
    }
  } else {
    const named = asRecord(body)
    if (named) for (const [name, value] of Object.entries(named)) fromNamed(name, value)
  }
  for (const s of out.values()) sortSeries(s)
  return [...out.values()]
}

function sortSeries(s: MetricSeries): void {
  for (let i = 1; i < s.steps.length; i += 1) {
    if (s.steps[i] < s.steps[i - 1]) {
      const order = s.steps.map((_, k) => k).sort((a, b) => s.steps[a] - s.steps[b])
      s.steps = order.map((k) => s.steps[k])
      s.values = order.map((k) => s.values[k])
      return
    }
  }
}

export interface ExperimentQuery {
  pipeline?: string
  status?: string[]
  tags?: string[]
  search?: string
  sort?: string
  descending?: boolean
  limit?: number
  offset?: number
  /** A keyset cursor from a page's next_cursor or prev_cursor (not with offset). */
  cursor?: string
}

/** The query string for GET /experiments (with an estimated total: fast at any size). */
export function experimentQueryParams(q: ExperimentQuery): Query {
  return {
    pipeline_id: q.pipeline || undefined,
    status: q.status && q.status.length ? q.status : undefined,
    tag: q.tags && q.tags.length ? q.tags : undefined,
    q: q.search?.trim() || undefined,
    sort: q.sort,
    order: q.descending === undefined ? undefined : q.descending ? 'desc' : 'asc',
    limit: q.limit,
    cursor: q.cursor || undefined,
    offset: q.offset,
    estimate_total: true,
  }
}

export interface CreateExperiment {
  pipeline_id: string
  config: Record<string, unknown>
  name?: string
  tags?: string[]
}

export interface NewUser {
  username: string
  role: Role
  password?: string
}

export interface UserChanges {
  role?: Role
  disabled?: boolean
  password?: string
}

export interface AuditQuery {
  limit?: number
  before?: number | string | null
  action?: string
  actor?: string
}

export const api = {
  health: (signal?: AbortSignal) => request<HealthInfo>('GET', '/health', { signal }),

  /** Who is signed in; a 401 shows the login page first and asks again after it. */
  me: (signal?: AbortSignal) => request<Me>('GET', '/auth/me', { signal }),

  login: (username: string, password: string) =>
    request<LoginResult>('POST', '/auth/login', { body: { username, password }, noLoginRetry: true }),

  logout: () => request<unknown>('POST', '/auth/logout', { noLoginRetry: true }),

  /** A short-lived token for opening one WebSocket (browsers cannot send headers there). */
  wsToken: (signal?: AbortSignal) =>
    request<{ token: string; expires_in: number }>('POST', '/auth/ws-token', { signal }),

  async tokens(signal?: AbortSignal): Promise<ApiToken[]> {
    return listFrom<ApiToken>(await request<unknown>('GET', '/tokens', { signal }), 'tokens')
  },

  createToken: (body: { name: string; expires_in_days: number }) =>
    request<CreatedToken>('POST', '/tokens', { body }),

  revokeToken: (id: number | string) =>
    request<unknown>('DELETE', `/tokens/${encodeURIComponent(String(id))}`),

  async users(signal?: AbortSignal): Promise<User[]> {
    return listFrom<User>(await request<unknown>('GET', '/users', { signal }), 'users')
  },

  createUser: (body: NewUser) => request<CreatedUser>('POST', '/users', { body }),

  updateUser: (id: number | string, changes: UserChanges) =>
    request<User>('PATCH', `/users/${encodeURIComponent(String(id))}`, { body: changes }),

  async audit(q: AuditQuery, signal?: AbortSignal): Promise<AuditPage> {
    const data = await request<unknown>('GET', '/audit', {
      query: { limit: q.limit ?? 50, before: q.before, action: q.action, actor: q.actor },
      signal,
    })
    const rec = asRecord(data) ?? {}
    const next = rec.next_before
    return {
      items: listFrom<AuditEvent>(data, 'events'),
      next_before: typeof next === 'number' || typeof next === 'string' ? next : null,
    }
  },

  async pipelines(signal?: AbortSignal): Promise<PipelineSummary[]> {
    const data = await request<unknown>('GET', '/pipelines', { signal })
    return listFrom<PipelineSummary>(data, 'pipelines', 'applications')
  },

  async pipeline(id: string, signal?: AbortSignal): Promise<PipelineDetail> {
    const data = await request<Record<string, unknown>>(
      'GET',
      `/pipelines/${encodeURIComponent(id)}`,
      { signal },
    )
    const schema = (data.config_schema ?? data.schema ?? {}) as JsonSchema
    const defaults = (data.default_config ?? data.defaults ?? {}) as Record<string, unknown>
    return { ...(data as unknown as PipelineDetail), config_schema: schema, default_config: defaults }
  },

  async experiments(q: ExperimentQuery, signal?: AbortSignal): Promise<ExperimentPage> {
    const data = await request<unknown>('GET', '/experiments', {
      query: experimentQueryParams(q),
      signal,
    })
    const rec = asRecord(data) ?? {}
    const items = listFrom<unknown>(data, 'experiments').map(normaliseExperiment)
    const estimate = typeof rec.estimated_total === 'number' ? rec.estimated_total : null
    return {
      items,
      // an exact count when the API sent one, else its estimate
      total: typeof rec.total === 'number' ? rec.total : estimate,
      total_exact: typeof rec.total === 'number' || (estimate !== null && rec.estimate_exact === true),
      next_cursor: typeof rec.next_cursor === 'string' ? rec.next_cursor : null,
      prev_cursor: typeof rec.prev_cursor === 'string' ? rec.prev_cursor : null,
      offset: typeof rec.offset === 'number' ? rec.offset : (q.offset ?? null),
      limit: typeof rec.limit === 'number' ? rec.limit : (q.limit ?? items.length),
    }
  },

  async experiment(id: string, signal?: AbortSignal): Promise<Experiment> {
    const data = await request<unknown>('GET', `/experiments/${encodeURIComponent(id)}`, {
      signal,
    })
    const rec = asRecord(data)
    return normaliseExperiment(rec && asRecord(rec.experiment) ? rec.experiment : data)
  },

  async createExperiment(body: CreateExperiment): Promise<Experiment> {
    return normaliseExperiment(await request<unknown>('POST', '/experiments', { body }))
  },

  /** Re-run with changes: the API's rerun route (keeps the parent link), else a plain create. */
  async rerun(id: string, body: CreateExperiment): Promise<Experiment> {
    try {
      const changes = { config: body.config, name: body.name, tags: body.tags }
      return normaliseExperiment(
        await request<unknown>('POST', `/experiments/${encodeURIComponent(id)}/rerun`, {
          body: changes,
        }),
      )
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405) && !err.fieldErrors.length) {
        return normaliseExperiment(await request<unknown>('POST', '/experiments', { body }))
      }
      throw err
    }
  },

  async cancel(id: string): Promise<Experiment> {
    return normaliseExperiment(
      await request<unknown>('POST', `/experiments/${encodeURIComponent(id)}/cancel`),
    )
  },

  /** The runs an experiment started (a study's trials), oldest first; `tag` narrows them. */
  async childExperiments(parentId: string, tag?: string, signal?: AbortSignal): Promise<Experiment[]> {
    const data = await request<unknown>('GET', '/experiments', {
      query: { parent_id: parentId, tag, sort: 'created_at', order: 'asc', limit: 1000 },
      signal,
    })
    return listFrom<unknown>(data, 'experiments').map(normaliseExperiment)
  },

  deleteExperiment: (id: string) =>
    request<unknown>('DELETE', `/experiments/${encodeURIComponent(id)}`),

  async metrics(id: string, maxPoints = 2000, signal?: AbortSignal): Promise<MetricSeries[]> {
    const data = await request<unknown>('GET', `/experiments/${encodeURIComponent(id)}/metrics`, {
      query: { max_points: maxPoints },
      signal,
    })
    return normaliseMetrics(data)
  },

  async logs(id: string, signal?: AbortSignal): Promise<LogLine[]> {
    const data = await request<unknown>('GET', `/experiments/${encodeURIComponent(id)}/logs`, {
      query: { limit: 5000 },
      signal,
    })
    return listFrom<LogLine>(data, 'logs', 'lines')
  },

  async artifacts(id: string, signal?: AbortSignal): Promise<Artifact[]> {
    const data = await request<unknown>(
      'GET',
      `/experiments/${encodeURIComponent(id)}/artifacts`,
      { signal },
    )
    return listFrom<Artifact>(data, 'artifacts')
  },

  async events(id: string, after = 0, signal?: AbortSignal): Promise<unknown> {
    return request<unknown>('GET', `/experiments/${encodeURIComponent(id)}/events`, {
      query: { after },
      signal,
    })
  },

  async upload(file: File): Promise<{ path: string }> {
    const form = new FormData()
    form.append('file', file, file.name)
    const data = await request<Record<string, unknown>>('POST', '/uploads', { form })
    const path = data.path ?? data.file_path ?? data.location
    if (typeof path !== 'string') throw new ApiError(500, 'the upload answer named no path')
    return { path }
  },

  async models(signal?: AbortSignal): Promise<ModelInfo[]> {
    const data = await request<unknown>('GET', '/models', { signal })
    return listFrom<ModelInfo>(data, 'models')
  },

  registerModel: (body: { experiment_id: string; name: string }) =>
    request<ModelInfo>('POST', '/models', { body }),

  deleteModel: (name: string) => request<unknown>('DELETE', `/models/${encodeURIComponent(name)}`),

  predict: (name: string, body: unknown) =>
    request<unknown>('POST', `/models/${encodeURIComponent(name)}/predict`, { body }),
}

/** URL of an artifact file (for links and <img>). */
export function artifactUrl(experimentId: string, path: string): string {
  const encoded = path.split('/').map(encodeURIComponent).join('/')
  return `${API_PREFIX}/experiments/${encodeURIComponent(experimentId)}/artifacts/${encoded}`
}

/** ws(s):// URL of an experiment's event stream after `after`. */
export function eventsSocketUrl(experimentId: string, after: number, base = window.location): string {
  const proto = base.protocol === 'https:' ? 'wss:' : 'ws:'
  return `${proto}//${base.host}${API_PREFIX}/experiments/${encodeURIComponent(experimentId)}/events?after=${after}`
}
