import { describe, expect, it } from 'vitest'
import type { EventMessage } from './types'
import { EventSocket, reconnectDelay, type SocketLike } from './socket'

/** A WebSocket stand-in the test drives by hand. */
class FakeSocket implements SocketLike {
  onopen: ((ev: Event) => unknown) | null = null
  onmessage: ((ev: MessageEvent) => unknown) | null = null
  onclose: ((ev: CloseEvent) => unknown) | null = null
  onerror: ((ev: Event) => unknown) | null = null
  closedByClient = false
  constructor(
    readonly url: string,
    readonly protocols?: string[],
  ) {}
  open() {
    this.onopen?.(new Event('open'))
  }
  send(obj: unknown) {
    this.onmessage?.({ data: JSON.stringify(obj) } as MessageEvent)
  }
  drop(code = 1006) {
    this.onclose?.({ code } as CloseEvent)
  }
  close() {
    this.closedByClient = true
  }
}

function harness(after = 0) {
  const sockets: FakeSocket[] = []
  const timers: { fn: () => void; ms: number }[] = []
  const events: EventMessage[] = []
  const states: string[] = []
  const client = new EventSocket({
    url: (a) => `ws://host/api/v1/experiments/e1/events?after=${a}`,
    after,
    onEvent: (e) => events.push(e),
    onState: (s) => states.push(s),
    factory: (url) => {
      const s = new FakeSocket(url)
      sockets.push(s)
      return s
    },
    baseDelayMs: 100,
    maxDelayMs: 1000,
    setTimer: (fn, ms) => timers.push({ fn, ms }),
    clearTimer: () => {},
  })
  const fire = () => timers.shift()!.fn()
  return { client, sockets, timers, events, states, fire }
}

const ev = (seq: number, type = 'metrics', payload: Record<string, unknown> = {}) => ({ experiment_id: 'e1', seq, type, payload, time: 't' })

describe('EventSocket', () => {
  it('connects after the known seq and delivers events once, in order', () => {
    const h = harness(5)
    h.client.start()
    expect(h.sockets[0].url).toBe('ws://host/api/v1/experiments/e1/events?after=5')
    h.sockets[0].open()
    h.sockets[0].send(ev(4)) // older than what we know
    h.sockets[0].send(ev(6))
    h.sockets[0].send({ type: 'ping', time: 'now' })
    h.sockets[0].send(ev(6)) // duplicate
    h.sockets[0].send(ev(7))
    expect(h.events.map((e) => e.seq)).toEqual([6, 7])
    expect(h.client.lastSeq).toBe(7)
  })

  it('reconnects by itself with backoff and resumes after the last seq', () => {
    const h = harness()
    h.client.start()
    h.sockets[0].open()
    h.sockets[0].send(ev(1))
    h.sockets[0].send(ev(2))
    h.sockets[0].drop()
    expect(h.timers.map((t) => t.ms)).toEqual([100])
    h.fire()
    expect(h.sockets[1].url).toBe('ws://host/api/v1/experiments/e1/events?after=2')
    h.sockets[1].drop() // fails before opening: longer wait
    expect(h.timers.map((t) => t.ms)).toEqual([200])
    h.fire()
    h.sockets[2].open() // success resets the backoff
    h.sockets[2].send(ev(2)) // replayed by a server: not delivered twice
    h.sockets[2].send(ev(3))
    h.sockets[2].drop()
    expect(h.timers.map((t) => t.ms)).toEqual([100])
    h.fire()
    expect(h.sockets[3].url).toBe('ws://host/api/v1/experiments/e1/events?after=3')
    expect(h.events.map((e) => e.seq)).toEqual([1, 2, 3])
    expect(h.states).toEqual(['connecting', 'open', 'reconnecting', 'reconnecting', 'reconnecting', 'reconnecting', 'open', 'reconnecting', 'reconnecting'])
  })

  it('stops after the final status and the end message', () => {
    const h = harness()
    h.client.start()
    h.sockets[0].open()
    h.sockets[0].send(ev(1, 'status', { status: 'running' }))
    expect(h.client.isFinished).toBe(false)
    h.sockets[0].send(ev(2, 'status', { status: 'succeeded' }))
    h.sockets[0].send({ type: 'end', status: 'succeeded', last_seq: 2 })
    h.sockets[0].drop(1000)
    expect(h.client.isFinished).toBe(true)
    expect(h.timers).toEqual([])
    expect(h.sockets).toHaveLength(1)
  })

  it('treats an end message alone as the end (reconnected after the last event)', () => {
    const h = harness(9)
    h.client.start()
    h.sockets[0].send({ type: 'end', status: 'failed', last_seq: 9 })
    h.sockets[0].drop(1000)
    expect(h.timers).toEqual([])
  })

  it('gives up on 4xxx closes (unknown experiment) and after stop()', () => {
    const h = harness()
    h.client.start()
    h.sockets[0].drop(4404)
    expect(h.timers).toEqual([])
    const g = harness()
    g.client.start()
    g.sockets[0].open()
    g.client.stop()
    expect(g.sockets[0].closedByClient).toBe(true)
    g.sockets[0].drop(1006) // handlers were detached: nothing happens
    expect(g.timers).toEqual([])
  })

  it('caps the backoff', () => {
    expect([1, 2, 3, 4, 5, 10].map((a) => reconnectDelay(a, 100, 1000))).toEqual([100, 200, 400, 800, 1000, 1000])
  })
})

/** Lets pending promise callbacks (the token fetch) run. */
const settle = () => new Promise((r) => setTimeout(r, 0))

function authHarness(tokens: (string | null | Error)[]) {
  const sockets: FakeSocket[] = []
  const timers: { fn: () => void; ms: number }[] = []
  const states: string[] = []
  const fetched: AbortSignal[] = []
  let login: (() => void) | null = null
  let loginsAsked = 0
  const client = new EventSocket({
    url: (a) => `ws://host/api/v1/experiments/e1/events?after=${a}`,
    onEvent: () => {},
    onState: (st) => states.push(st),
    factory: (url, protocols) => {
      const s = new FakeSocket(url, protocols)
      sockets.push(s)
      return s
    },
    authToken: async (signal) => {
      fetched.push(signal)
      const next = tokens.shift()
      if (next instanceof Error) throw next
      return next ?? null
    },
    onUnauthorized: () => {
      loginsAsked += 1
      return new Promise<void>((resolve) => (login = resolve))
    },
    baseDelayMs: 100,
    setTimer: (fn, ms) => timers.push({ fn, ms }),
    clearTimer: () => {},
  })
  return { client, sockets, timers, states, fetched, signIn: () => login?.(), logins: () => loginsAsked }
}

describe('EventSocket authentication', () => {
  it('offers a fresh token per connect as a subprotocol, never in the URL', async () => {
    const h = authHarness(['tok-one', 'tok-two'])
    h.client.start()
    expect(h.sockets).toHaveLength(0) // waits for the token first
    await settle()
    expect(h.sockets[0].protocols).toEqual(['azuraforge.v1', 'azuraforge.token.tok-one'])
    h.sockets[0].open()
    h.sockets[0].send(ev(1))
    h.sockets[0].drop()
    h.timers.shift()!.fn()
    await settle()
    expect(h.sockets[1].protocols).toEqual(['azuraforge.v1', 'azuraforge.token.tok-two'])
    expect(h.sockets.map((s) => s.url)).toEqual([
      'ws://host/api/v1/experiments/e1/events?after=0',
      'ws://host/api/v1/experiments/e1/events?after=1',
    ])
    expect(h.sockets.every((s) => !s.url.includes('tok'))).toBe(true)
  })

  it('connects without subprotocols when there is no token (auth off)', async () => {
    const h = authHarness([null])
    h.client.start()
    await settle()
    expect(h.sockets[0].protocols).toBeUndefined()
  })

  it('backs off and tries again when the token cannot be fetched', async () => {
    const h = authHarness([new Error('unreachable'), 'tok-late'])
    h.client.start()
    await settle()
    expect(h.sockets).toHaveLength(0)
    expect(h.timers.map((t) => t.ms)).toEqual([100])
    h.timers.shift()!.fn()
    await settle()
    expect(h.sockets[0].protocols).toEqual(['azuraforge.v1', 'azuraforge.token.tok-late'])
  })

  it('on a 4401 close asks for a login, then reconnects with a new token', async () => {
    const h = authHarness(['tok-old', 'tok-new'])
    h.client.start()
    await settle()
    h.sockets[0].open()
    h.sockets[0].drop(4401)
    expect(h.logins()).toBe(1)
    await settle()
    expect(h.sockets).toHaveLength(1) // nothing until signed in again
    expect(h.timers).toEqual([])
    h.signIn()
    await settle()
    expect(h.sockets).toHaveLength(2)
    expect(h.sockets[1].protocols).toEqual(['azuraforge.v1', 'azuraforge.token.tok-new'])
  })

  it('opens nothing when stopped while the token is on its way', async () => {
    const h = authHarness(['tok'])
    h.client.start()
    h.client.stop()
    expect(h.fetched[0].aborted).toBe(true)
    await settle()
    expect(h.sockets).toHaveLength(0)
  })

  it('still gives up on 4403 (bad origin)', async () => {
    const h = authHarness(['tok'])
    h.client.start()
    await settle()
    h.sockets[0].drop(4403)
    expect(h.logins()).toBe(0)
    expect(h.timers).toEqual([])
    expect(h.states.at(-1)).toBe('closed')
  })
})

describe('EventSocket defaults', () => {
  it('uses the browser WebSocket when no factory is given (undefined included)', async () => {
    const made: [string, unknown][] = []
    const Real = globalThis.WebSocket
    globalThis.WebSocket = class {
      onopen = null
      onmessage = null
      onclose = null
      onerror = null
      constructor(url: string, protocols?: string[]) {
        made.push([url, protocols])
      }
      close() {}
    } as unknown as typeof WebSocket
    try {
      const s = new EventSocket({ url: (a) => `ws://h/e?after=${a}`, onEvent: () => {}, factory: undefined, after: 3 }).start()
      expect(made).toEqual([['ws://h/e?after=3', undefined]])
      s.stop()
      const t = new EventSocket({ url: (a) => `ws://h/e?after=${a}`, onEvent: () => {}, authToken: async () => 'abc' }).start()
      await settle()
      expect(made[1]).toEqual(['ws://h/e?after=0', ['azuraforge.v1', 'azuraforge.token.abc']])
      t.stop()
    } finally {
      globalThis.WebSocket = Real
    }
  })
})
