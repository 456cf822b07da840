// A WebSocket to an experiment's event stream that reconnects by itself and resumes after
// the last `seq` it delivered, so a dropped connection loses and duplicates nothing.
// Connecting, authentication and backoff: `ReconnectingSocket`.
import { ReconnectingSocket, type ConnectionState, type ReconnectOptions, type StateDetail } from './reconnectingSocket'
import { isTerminal, type EventMessage } from './types'

export {
  CLOSE_UNAUTHENTICATED,
  reconnectDelay,
  socketProtocols,
  SUBPROTOCOL,
  TOKEN_SUBPROTOCOL_PREFIX,
  type ConnectionState,
  type SocketFactory,
  type SocketLike,
} from './reconnectingSocket'

export interface EventSocketOptions extends ReconnectOptions {
  /** URL for a connection that wants the events after `after`. */
  url: (after: number) => string
  onEvent: (event: EventMessage) => void
  onState?: (state: ConnectionState, detail: StateDetail) => void
  /** The server said the stream is complete (`{"type": "end"}`) before closing. */
  onEnd?: () => void
  /** Seq already known (e.g. from history); only later events are delivered. */
  after?: number
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

export class EventSocket extends ReconnectingSocket {
  private finished = false
  private lastSeqValue: number

  constructor(private readonly opts: EventSocketOptions) {
    super(opts, { baseDelayMs: 500, maxDelayMs: 10_000 })
    this.lastSeqValue = opts.after ?? 0
  }

  /** The highest seq delivered so far. */
  get lastSeq(): number {
    return this.lastSeqValue
  }

  /** True once the stream ended with the experiment's final status. */
  get isFinished(): boolean {
    return this.finished
  }

  protected url(): string {
    return this.opts.url(this.lastSeqValue)
  }

  protected state(state: ConnectionState, detail: StateDetail): void {
    this.opts.onState?.(state, detail)
  }

  protected opened(): void {
    this.markOpen()
  }

  protected isDone(): boolean {
    return this.stopped || this.finished
  }

  /** 4xxx: the server refused this stream (e.g. unknown experiment); retrying cannot help. */
  protected endsStream(ev: CloseEvent | undefined): boolean {
    return ev !== undefined && ev.code >= 4000 && ev.code < 5000
  }

  protected receive(data: unknown): void {
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
}
