// The status stream (`WS /api/v1/events/status`): every experiment's status changes as they
// happen, for the experiments table. Live only (no backlog): after each (re)connect the
// server says "subscribed", and the table refetches then, so nothing between two
// connections is missed. Reconnects with backoff and authenticates like EventSocket.
import { API_PREFIX } from './client'
import { CLOSE_UNAUTHENTICATED, reconnectDelay, socketProtocols, type ConnectionState, type SocketFactory, type SocketLike } from './socket'
import type { ExperimentStatus } from './types'

/** One status change; drop it when the row already has an event at or past `seq`. */
export interface StatusChange {
  id: string
  status: ExperimentStatus
  seq: number
  time?: string
  payload: Record<string, unknown>
}

export interface StatusSocketOptions {
  url: string
  onChange: (change: StatusChange) => void
  /** The subscription is active: whatever happened before it should be fetched now. */
  onSubscribed?: () => void
  onState?: (state: ConnectionState) => void
  factory?: SocketFactory
  /** A fresh socket token before each connect; null connects without one. Absent: none. */
  authToken?: (signal: AbortSignal) => Promise<string | null>
  /** The server closed with 4401: resolves once the user signed in again. */
  onUnauthorized?: (signal: AbortSignal) => Promise<void>
  baseDelayMs?: number
  maxDelayMs?: number
  setTimer?: (fn: () => void, ms: number) => unknown
  clearTimer?: (handle: unknown) => void
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

export class StatusSocket {
  private socket: SocketLike | null = null
  private timer: unknown = null
  private pending: AbortController | null = null
  private attempt = 0
  private stopped = false
  private readonly setTimer: (fn: () => void, ms: number) => unknown
  private readonly clearTimer: (handle: unknown) => void
  private readonly factory: SocketFactory

  constructor(private readonly opts: StatusSocketOptions) {
    this.setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms))
    this.clearTimer = opts.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>))
    this.factory = opts.factory ?? ((url, protocols) => (protocols ? new WebSocket(url, protocols) : new WebSocket(url)))
  }

  start(): this {
    this.stopped = false
    this.connect()
    return this
  }

  /** Closes for good (page left); no reconnect. */
  stop(): void {
    this.stopped = true
    if (this.timer !== null) this.clearTimer(this.timer)
    this.timer = null
    this.pending?.abort()
    this.pending = null
    const s = this.socket
    this.socket = null
    if (s) {
      s.onclose = null
      s.onmessage = null
      s.onerror = null
      s.close(1000, 'client closed')
    }
    this.opts.onState?.('closed')
  }

  private wait<T>(step: (signal: AbortSignal) => Promise<T>, next: (value: T) => void, failed: () => void): void {
    const ctrl = new AbortController()
    this.pending = ctrl
    step(ctrl.signal).then(
      (value) => {
        if (ctrl.signal.aborted || this.stopped) return
        this.pending = null
        next(value)
      },
      () => {
        if (ctrl.signal.aborted || this.stopped) return
        this.pending = null
        failed()
      },
    )
  }

  private connect(): void {
    if (this.stopped) return
    this.timer = null
    this.opts.onState?.(this.attempt === 0 ? 'connecting' : 'reconnecting')
    const fetchToken = this.opts.authToken
    if (!fetchToken) {
      this.open(undefined)
      return
    }
    this.wait(
      fetchToken,
      (token) => this.open(token === null ? undefined : socketProtocols(token)),
      () => this.scheduleReconnect(),
    )
  }

  private open(protocols: string[] | undefined): void {
    let socket: SocketLike
    try {
      socket = this.factory(this.opts.url, protocols)
    } catch {
      this.scheduleReconnect()
      return
    }
    this.socket = socket
    socket.onmessage = (ev) => {
      const message = parseStatusMessage(ev.data)
      if (message === 'subscribed') {
        // "open" only now: before it, changes could still slip past
        this.attempt = 0
        this.opts.onState?.('open')
        this.opts.onSubscribed?.()
      } else if (message) this.opts.onChange(message)
    }
    socket.onerror = () => {
      // a close event always follows; reconnecting is decided there
    }
    socket.onclose = (ev) => {
      if (this.socket !== socket) return
      this.socket = null
      if (ev && ev.code === CLOSE_UNAUTHENTICATED && this.opts.onUnauthorized && !this.stopped) {
        this.opts.onState?.('reconnecting')
        this.wait(this.opts.onUnauthorized, () => this.connect(), () => this.opts.onState?.('closed'))
        return
      }
      // the stream never ends by itself: anything else (a restart, a proxy) is retried
      this.scheduleReconnect()
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped) return
    this.attempt += 1
    const delayMs = reconnectDelay(this.attempt, this.opts.baseDelayMs ?? 1000, this.opts.maxDelayMs ?? 30_000)
    this.opts.onState?.('reconnecting')
    this.timer = this.setTimer(() => this.connect(), delayMs)
  }
}
