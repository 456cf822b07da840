// What both live streams share: a WebSocket that fetches a fresh token before each connect
// (browsers cannot set headers on a WebSocket, so it rides as a subprotocol, never in the URL,
// where it would end up in logs and history), reconnects with exponential backoff, waits for
// a new sign-in after the server refused its credentials, and ends for good on stop().

/** The part of the browser's WebSocket these classes use (a fake one in tests). */
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

export interface StateDetail {
  attempt: number
  delayMs?: number
}

/** Backoff before reconnect attempt `attempt` (1-based): base * 2^(attempt-1), capped. */
export function reconnectDelay(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
}

export interface ReconnectOptions {
  factory?: SocketFactory
  /**
   * Fetches a fresh socket token before each connect; null connects without one (no
   * authentication on this server). Absent: no token.
   */
  authToken?: (signal: AbortSignal) => Promise<string | null>
  /**
   * The server closed with 4401: resolves once the user has signed in again, and the socket
   * then reconnects with a fresh token. Absent: a 4401 is like any other close.
   */
  onUnauthorized?: (signal: AbortSignal) => Promise<void>
  baseDelayMs?: number
  maxDelayMs?: number
  setTimer?: (fn: () => void, ms: number) => unknown
  clearTimer?: (handle: unknown) => void
}

export abstract class ReconnectingSocket {
  private socket: SocketLike | null = null
  private timer: unknown = null
  /** The token fetch or login wait in progress before a connect; aborted by stop(). */
  private pending: AbortController | null = null
  protected attempt = 0
  protected stopped = false
  private readonly factory: SocketFactory
  private readonly setTimer: (fn: () => void, ms: number) => unknown
  private readonly clearTimer: (handle: unknown) => void
  private readonly baseDelayMs: number
  private readonly maxDelayMs: number

  protected constructor(
    private readonly reconnect: ReconnectOptions,
    defaults: { baseDelayMs: number; maxDelayMs: number },
  ) {
    // `??`, not a spread: an option passed as undefined must still get its default
    this.factory =
      reconnect.factory ?? ((url, protocols) => (protocols ? new WebSocket(url, protocols) : new WebSocket(url)))
    this.setTimer = reconnect.setTimer ?? ((fn, ms) => setTimeout(fn, ms))
    this.clearTimer = reconnect.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>))
    this.baseDelayMs = reconnect.baseDelayMs ?? defaults.baseDelayMs
    this.maxDelayMs = reconnect.maxDelayMs ?? defaults.maxDelayMs
  }

  /** The URL of the next connection. */
  protected abstract url(): string
  /** One message from the server. */
  protected abstract receive(data: unknown): void
  /** A change of the connection's state, for the subclass to pass on. */
  protected abstract state(state: ConnectionState, detail: StateDetail): void
  /** The server accepted the connection. */
  protected opened(): void {}
  /** No connection any more: stopped, or the stream is complete. */
  protected isDone(): boolean {
    return this.stopped
  }
  /** A close (other than a 4401 with `onUnauthorized`) that ends the stream, not retried. */
  protected endsStream(_ev: CloseEvent | undefined): boolean {
    return false
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
    this.state('closed', { attempt: this.attempt })
  }

  /** The connection works: the next reconnect starts the backoff over. */
  protected markOpen(): void {
    this.attempt = 0
    this.state('open', { attempt: 0 })
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
    if (this.isDone()) return
    this.timer = null
    this.state(this.attempt === 0 ? 'connecting' : 'reconnecting', { attempt: this.attempt })
    const fetchToken = this.reconnect.authToken
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
      socket = this.factory(this.url(), protocols)
    } catch {
      this.scheduleReconnect()
      return
    }
    this.socket = socket
    socket.onopen = () => this.opened()
    socket.onmessage = (ev) => this.receive(ev.data)
    socket.onerror = () => {
      // a close event always follows; reconnecting is decided there
    }
    socket.onclose = (ev) => {
      if (this.socket !== socket) return
      this.socket = null
      const onUnauthorized = this.reconnect.onUnauthorized
      if (ev && ev.code === CLOSE_UNAUTHENTICATED && onUnauthorized && !this.isDone()) {
        // signed out meanwhile: once signed in again, reconnect (with a fresh token)
        this.state('reconnecting', { attempt: this.attempt })
        this.afterPending(onUnauthorized, () => this.connect(), () => this.state('closed', { attempt: this.attempt }))
        return
      }
      if (this.isDone() || this.endsStream(ev)) {
        this.state('closed', { attempt: this.attempt })
        return
      }
      this.scheduleReconnect()
    }
  }

  private scheduleReconnect(): void {
    if (this.isDone()) return
    this.attempt += 1
    const delayMs = reconnectDelay(this.attempt, this.baseDelayMs, this.maxDelayMs)
    this.state('reconnecting', { attempt: this.attempt, delayMs })
    this.timer = this.setTimer(() => this.connect(), delayMs)
  }
}
