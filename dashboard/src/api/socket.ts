// A WebSocket to an experiment's event stream that reconnects by itself and resumes after
// the last `seq` it delivered, so a dropped connection loses and duplicates nothing.
// Authentication: browsers cannot set headers on a WebSocket, so before each (re)connect it
// fetches a short-lived token and offers it as a subprotocol; never in the URL, where it would
// end up in logs and history.
import { isTerminal, type EventMessage } from './types'

/** The part of the browser's WebSocket this class uses (a fake one in tests). */
export interface SocketLike {
  onopen: ((ev: Event) => unknown) | null
  onmessage: ((ev: MessageEvent) => unknown) | null
  onclose: ((ev: CloseEvent) => unknown) | null
  onerror: ((ev: Event) => unknown) | null
  close(code?: number, reason?: string): void
}

export type SocketFactory = (url: string, protocols?: string[]) => SocketLike

/** The protocol the server accepts with; the token rides along as a second subprotocol. */
export const SUBPROTOCOL = 'azuraforge.v1'
export const TOKEN_SUBPROTOCOL_PREFIX = 'azuraforge.token.'

export function socketProtocols(token: string): string[] {
  return [SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + token]
}

/** Close code of a socket whose credentials the server refused. */
export const CLOSE_UNAUTHENTICATED = 4401

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed'

export interface EventSocketOptions {
  /** URL for a connection that wants the events after `after`. */
  url: (after: number) => string
  onEvent: (event: EventMessage) => void
  onState?: (state: ConnectionState, detail: { attempt: number; delayMs?: number }) => void
  /** The server said the stream is complete (`{"type": "end"}`) before closing. */
  onEnd?: () => void
  /** Seq already known (e.g. from history); only later events are delivered. */
  after?: number
  factory?: SocketFactory
  /**
   * Fetches a fresh socket token before each connect; null connects without one (no
   * authentication on this server). Absent: no token.
   */
  authToken?: (signal: AbortSignal) => Promise<string | null>
  /**
   * The server closed with 4401: resolves once the user has signed in again, and the socket
   * then reconnects with a fresh token. Absent: a 4401 ends the stream like any 4xxx.
   */
  onUnauthorized?: (signal: AbortSignal) => Promise<void>
  baseDelayMs?: number
  maxDelayMs?: number
  setTimer?: (fn: () => void, ms: number) => unknown
  clearTimer?: (handle: unknown) => void
}

/** Backoff before reconnect attempt `attempt` (1-based): base * 2^(attempt-1), capped. */
export function reconnectDelay(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
}

/** Parses one message; null for pings and anything that is not an event with a seq. */
export function parseEventMessage(data: unknown): EventMessage | null {
  if (typeof data !== 'string') return null
  let value: unknown
  try {
    value = JSON.parse(data)
  } catch {
    return null
  }
  if (value === null || typeof value !== 'object') return null
  const rec = value as Record<string, unknown>
  if (typeof rec.seq !== 'number' || typeof rec.type !== 'string') return null
  const payload =
    rec.payload !== null && typeof rec.payload === 'object'
      ? (rec.payload as Record<string, unknown>)
      : {}
  return { ...(rec as unknown as EventMessage), payload }
}

/** Control messages carry no seq: "ping", "end" (stream complete), "error". */
export function parseControlMessage(data: unknown): string | null {
  if (typeof data !== 'string' || !data.includes('"type"')) return null
  try {
    const value = JSON.parse(data) as Record<string, unknown>
    return value && typeof value === 'object' && typeof value.seq !== 'number' && typeof value.type === 'string'
      ? value.type
      : null
  } catch {
    return null
  }
}

export class EventSocket {
  private socket: SocketLike | null = null
  private timer: unknown = null
  /** The token fetch or login wait in progress before a connect; aborted by stop(). */
  private pending: AbortController | null = null
  private attempt = 0
  private stopped = false
  private finished = false
  private lastSeqValue: number
  private readonly opts: Required<
    Pick<EventSocketOptions, 'baseDelayMs' | 'maxDelayMs' | 'setTimer' | 'clearTimer' | 'factory'>
  > &
    EventSocketOptions

  constructor(options: EventSocketOptions) {
    // `??`, not a spread: an option passed as undefined must still get its default
    this.opts = {
      ...options,
      baseDelayMs: options.baseDelayMs ?? 500,
      maxDelayMs: options.maxDelayMs ?? 10_000,
      setTimer: options.setTimer ?? ((fn, ms) => setTimeout(fn, ms)),
      clearTimer: options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>)),
      factory:
        options.factory ?? ((url, protocols) => (protocols ? new WebSocket(url, protocols) : new WebSocket(url))),
    }
    this.lastSeqValue = options.after ?? 0
  }

  /** The highest seq delivered so far. */
  get lastSeq(): number {
    return this.lastSeqValue
  }

  /** True once the stream ended with the experiment's final status. */
  get isFinished(): boolean {
    return this.finished
  }

  start(): this {
    this.stopped = false
    this.connect()
    return this
  }

  /** Closes for good (page left); no reconnect. */
  stop(): void {
    this.stopped = true
    if (this.timer !== null) this.opts.clearTimer(this.timer)
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
    this.opts.onState?.('closed', { attempt: this.attempt })
  }

  /** Waits for `step` unless stop() comes first; then runs `next` with its result. */
  private afterPending<T>(step: (signal: AbortSignal) => Promise<T>, next: (value: T) => void, failed: () => void): void {
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
    if (this.stopped || this.finished) return
    this.timer = null
    this.opts.onState?.(this.attempt === 0 ? 'connecting' : 'reconnecting', {
      attempt: this.attempt,
    })
    const fetchToken = this.opts.authToken
    if (!fetchToken) {
      this.open(undefined)
      return
    }
    // no token (server unreachable): the usual backoff, then a fresh try
    this.afterPending(
      fetchToken,
      (token) => this.open(token === null ? undefined : socketProtocols(token)),
      () => this.scheduleReconnect(),
    )
  }

  private open(protocols: string[] | undefined): void {
    let socket: SocketLike
    try {
      socket = this.opts.factory(this.opts.url(this.lastSeqValue), protocols)
    } catch {
      this.scheduleReconnect()
      return
    }
    this.socket = socket
    socket.onopen = () => {
      this.attempt = 0
      this.opts.onState?.('open', { attempt: 0 })
    }
    socket.onmessage = (ev) => this.handleMessage(ev.data)
    socket.onerror = () => {
      // a close event always follows; reconnecting is decided there
    }
    socket.onclose = (ev) => {
      if (this.socket !== socket) return
      this.socket = null
      if (ev && ev.code === CLOSE_UNAUTHENTICATED && this.opts.onUnauthorized && !this.stopped && !this.finished) {
        // signed out meanwhile: once signed in again, reconnect (with a fresh token)
        this.opts.onState?.('reconnecting', { attempt: this.attempt })
        this.afterPending(this.opts.onUnauthorized, () => this.connect(), () => this.opts.onState?.('closed', { attempt: this.attempt }))
        return
      }
      // 4xxx: the server refused this stream (e.g. unknown experiment); retrying cannot help.
      if (this.stopped || this.finished || (ev && ev.code >= 4000 && ev.code < 5000)) {
        this.opts.onState?.('closed', { attempt: this.attempt })
        return
      }
      this.scheduleReconnect()
    }
  }

  private handleMessage(data: unknown): void {
    const control = parseControlMessage(data)
    if (control === 'end') {
      // the server delivered everything and is closing: the experiment is over
      this.finished = true
      this.opts.onEnd?.()
      return
    }
    const event = parseEventMessage(data)
    if (!event || event.seq <= this.lastSeqValue) return // a ping, or already delivered
    this.lastSeqValue = event.seq
    if (event.type === 'status' && isTerminal(event.payload.status as string)) {
      this.finished = true
    }
    this.opts.onEvent(event)
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.finished) return
    this.attempt += 1
    const delayMs = reconnectDelay(this.attempt, this.opts.baseDelayMs, this.opts.maxDelayMs)
    this.opts.onState?.('reconnecting', { attempt: this.attempt, delayMs })
    this.timer = this.opts.setTimer(() => this.connect(), delayMs)
  }
}
