// The status stream (`WS /api/v1/events/status`): every experiment's status changes as they
// happen, for the experiments table. Live only (no backlog): after each (re)connect the
// server says "subscribed", and the table refetches then, so nothing between two
// connections is missed. Connecting, authentication and backoff: `ReconnectingSocket`.
import { API_PREFIX } from './client'
import { ReconnectingSocket, type ConnectionState, type ReconnectOptions } from './reconnectingSocket'
import type { ExperimentStatus } from './types'

/** One status change; drop it when the row already has an event at or past `seq`. */
export interface StatusChange {
  id: string
  status: ExperimentStatus
  seq: number
  time?: string
  payload: Record<string, unknown>
}

export interface StatusSocketOptions extends ReconnectOptions {
  url: string
  onChange: (change: StatusChange) => void
  /** The subscription is active: whatever happened before it should be fetched now. */
  onSubscribed?: () => void
  onState?: (state: ConnectionState) => void
}

/** ws(s):// URL of the status stream. */
export function statusSocketUrl(base: Pick<Location, 'protocol' | 'host'> = window.location): string {
  const proto = base.protocol === 'https:' ? 'wss:' : 'ws:'
  return `${proto}//${base.host}${API_PREFIX}/events/status`
}

/** A status message, "subscribed", or null for anything else (pings, errors, junk). */
export function parseStatusMessage(data: unknown): StatusChange | 'subscribed' | null {
  if (typeof data !== 'string') return null
  let value: unknown
  try {
    value = JSON.parse(data)
  } catch {
    return null
  }
  if (value === null || typeof value !== 'object') return null
  const rec = value as Record<string, unknown>
  if (rec.type === 'subscribed') return 'subscribed'
  if (rec.type !== 'status' || typeof rec.id !== 'string' || typeof rec.status !== 'string' || typeof rec.seq !== 'number') return null
  const payload = rec.payload !== null && typeof rec.payload === 'object' ? (rec.payload as Record<string, unknown>) : {}
  return {
    id: rec.id,
    status: rec.status as ExperimentStatus,
    seq: rec.seq,
    time: typeof rec.time === 'string' ? rec.time : undefined,
    payload,
  }
}

/** Never ends by itself: any close but a stop() (a restart, a proxy) is retried. */
export class StatusSocket extends ReconnectingSocket {
  constructor(private readonly opts: StatusSocketOptions) {
    super(opts, { baseDelayMs: 1000, maxDelayMs: 30_000 })
  }

  protected url(): string {
    return this.opts.url
  }

  protected state(state: ConnectionState): void {
    this.opts.onState?.(state)
  }

  protected receive(data: unknown): void {
    const message = parseStatusMessage(data)
    if (message === 'subscribed') {
      // "open" only now: before it, changes could still slip past
      this.markOpen()
      this.opts.onSubscribed?.()
    } else if (message) this.opts.onChange(message)
  }
}
