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
  constructor(readonly url: string) {}
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

describe('EventSocket defaults', () => {
  it('uses the browser WebSocket when no factory is given (undefined included)', () => {
    const made: string[] = []
    const Real = globalThis.WebSocket
    globalThis.WebSocket = class {
      onopen = null
      onmessage = null
      onclose = null
      onerror = null
      constructor(url: string) {
        made.push(url)
      }
      close() {}
    } as unknown as typeof WebSocket
    try {
      const s = new EventSocket({ url: (a) => `ws://h/e?after=${a}`, onEvent: () => {}, factory: undefined, after: 3 }).start()
      expect(made).toEqual(['ws://h/e?after=3'])
      s.stop()
    } finally {
      globalThis.WebSocket = Real
    }
  })
})
