// Shapes of the AzuraForge HTTP API (/api/v1) as the dashboard uses them.

export type ExperimentStatus =
  | 'queued'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'cancelling'
  | 'lost'

export const STATUSES: ExperimentStatus[] = [
  'queued',
  'running',
  'cancelling',
  'succeeded',
  'failed',
  'cancelled',
  'lost',
]

export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled'])

export function isTerminal(status: string | undefined | null): boolean {
  return status != null && TERMINAL_STATUSES.has(status)
}

/** A JSON Schema node as pydantic v2 writes it (the subset the form generator reads). */
export interface JsonSchema {
  type?: string | string[]
  title?: string
  description?: string
  default?: unknown
  enum?: unknown[]
  const?: unknown
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  multipleOf?: number
  minLength?: number
  maxLength?: number
  minItems?: number
  maxItems?: number
  pattern?: string
  format?: string
  items?: JsonSchema
  properties?: Record<string, JsonSchema>
  required?: string[]
  additionalProperties?: boolean | JsonSchema
  $ref?: string
  $defs?: Record<string, JsonSchema>
  definitions?: Record<string, JsonSchema>
  allOf?: JsonSchema[]
  anyOf?: JsonSchema[]
  oneOf?: JsonSchema[]
  [key: string]: unknown
}

export interface PipelineSummary {
  id: string
  name: string
  description: string
  version: string | null
  installed: boolean
  official?: boolean
  category?: string | null
  package?: string | null
}

export interface PipelineDetail extends PipelineSummary {
  config_schema: JsonSchema
  default_config: Record<string, unknown>
}

export interface Experiment {
  id: string
  name: string
  pipeline_id: string
  pipeline_version?: string | null
  config: Record<string, unknown>
  status: ExperimentStatus
  created_at: string
  updated_at?: string | null
  started_at?: string | null
  finished_at?: string | null
  error?: string | null
  traceback?: string | null
  summary?: Record<string, unknown> | null
  parent_id?: string | null
  tags: string[]
  last_event_seq?: number
  attempts?: number
  max_attempts?: number
  worker?: string | null
  /** Username of who created it; null for runs from before authentication (or --no-auth). */
  owner?: string | null
  /** Latest progress when the API includes it in the record. */
  progress?: Progress | null
}

export interface ExperimentPage {
  items: Experiment[]
  /** How many match: exact, or an estimate when `total_exact` is false. */
  total: number | null
  total_exact: boolean
  next_cursor: string | null
  /** Where the page before this one starts; null on the first page. */
  prev_cursor: string | null
  offset: number | null
  limit: number
}

export interface Progress {
  epoch?: number | null
  total_epochs?: number | null
  step?: number | null
  total_steps?: number | null
}

/** One metric's history: x (step or epoch) and values (null where NaN/inf was reported). */
export interface MetricSeries {
  name: string
  steps: number[]
  values: (number | null)[]
  /** What x counts: epochs (metrics reported per epoch) or steps; unknown when absent. */
  xKind?: 'epoch' | 'step'
}

export interface EventMessage {
  experiment_id?: string
  seq: number
  type: string
  payload: Record<string, unknown>
  time?: string
}

export interface Artifact {
  path: string
  size: number
  kind: string
  created_at?: string
}

export interface LogLine {
  id?: number
  time?: string
  level: string
  message: string
}

export interface FieldError {
  /** Dotted path inside the config, e.g. "epochs" or "optimizer.lr"; "" for the whole form. */
  path: string
  message: string
}

export interface ModelInfo {
  name: string
  version?: number | string | null
  pipeline_id?: string | null
  pipeline_version?: string | null
  artifact_path?: string | null
  experiment_id?: string | null
  created_at?: string | null
  metrics?: Record<string, unknown> | null
  description?: string | null
  owner?: string | null
  [key: string]: unknown
}

export interface HealthInfo {
  status?: string
  [key: string]: unknown
}

export type Role = 'admin' | 'member' | 'viewer'

export const ROLES: Role[] = ['viewer', 'member', 'admin']

export interface User {
  id: number | string
  username: string
  role: Role
  disabled: boolean
  created_at: string
  last_login_at: string | null
}

/** How the current request was authenticated; `none` is `azuraforge up --no-auth`. */
export type AuthMode = 'session' | 'token' | 'none'

/** GET /auth/me. */
export interface Me extends User {
  auth: AuthMode
}

export interface LoginResult {
  user: User
  expires_at: string | null
}

export interface ApiToken {
  id: number | string
  name: string
  prefix: string
  created_at: string
  expires_at: string | null
  last_used_at: string | null
  revoked_at: string | null
}

/** POST /tokens: the token plus its secret, which the API shows only in this answer. */
export interface CreatedToken extends ApiToken {
  token: string
}

export interface CreatedUser {
  user: User
  /** The generated password when none was given (shown once), else null. */
  password: string | null
}

export interface AuditEvent {
  id: number | string
  at: string
  actor: string | null
  action: string
  target: string | null
  detail: Record<string, unknown> | null
  ip: string | null
}

export interface AuditPage {
  items: AuditEvent[]
  next_before: number | string | null
}
