import { describe, expect, it } from 'vitest'
import { socketFactory } from '../test/fakeSocket'
import { parseStatusMessage, StatusSocket, statusSocketUrl, type StatusChange } from './statusSocket'

const change = (id: string, status: string, seq: number, payload: Record<string, unknown> = { status }) => ({ type: 'status', id, status, seq, time: 't', payload })

/** Lets pending promise callbacks (the token fetch) run. */
const settle = () => new Promise((r) => setTimeout(r, 0))

function harness(tokens: (string | null | Error)[] = []) {
  const { sockets, factory } = socketFactory()
  const timers: { fn: () => void; ms: number }[] = []
  const changes: StatusChange[] = []
  const states: string[] = []
  let subscribed = 0
  let login: (() => void) | null = null
  const client = new StatusSocket({
    url: 'ws://host/api/v1/events/status',
    onChange: (c) => changes.push(c),
    onSubscribed: () => (subscribed += 1),
    onState: (s) => states.push(s),
    factory,
    authToken: tokens.length
      ? async () => {
          const next = tokens.shift()
          if (next instanceof Error) throw next
          return next ?? null
        }
      : undefined,
    onUnauthorized: () => new Promise<void>((resolve) => (login = resolve)),
    baseDelayMs: 100,
    maxDelayMs: 1000,
    setTimer: (fn, ms) => timers.push({ fn, ms }),
    clearTimer: () => {},
  })
  return { client, sockets, timers, changes, states, subscribed: () => subscribed, signIn: () => login?.() }
}

describe('status stream messages', () => {
  it('parses status changes and the subscription, and nothing else', () => {
    expect(parseStatusMessage(JSON.stringify(change('e1', 'running', 3, { status: 'running', attempt: 1 })))).toEqual({
      id: 'e1',
      status: 'running',
      seq: 3,
      time: 't',
      payload: { status: 'running', attempt: 1 },
    })
    expect(parseStatusMessage('{"type":"subscribed"}')).toBe('subscribed')
    for (const junk of ['{"type":"ping"}', '{"type":"status","id":"e1"}', 'not json', '7', 'null', 42]) {
      expect(parseStatusMessage(junk)).toBeNull()
    }
  })

  it('builds the socket URL from the page location', () => {
    expect(statusSocketUrl({ protocol: 'https:', host: 'forge.example:8443' })).toBe('wss://forge.example:8443/api/v1/events/status')
    expect(statusSocketUrl({ protocol: 'http:', host: '127.0.0.1:8000' })).toBe('ws://127.0.0.1:8000/api/v1/events/status')
  })
})

describe('StatusSocket', () => {
  it('is open once the server subscribed, then delivers changes', () => {
    const h = harness()
    h.client.start()
    h.sockets[0].open()
    expect(h.states).toEqual(['connecting']) // the handshake alone is not enough
    h.sockets[0].send({ type: 'subscribed' })
    h.sockets[0].send(change('e1', 'running', 2))
    h.sockets[0].send({ type: 'ping', time: 'now' })
    h.sockets[0].send(change('e2', 'queued', 1))
    expect(h.states).toEqual(['connecting', 'open'])
    expect(h.subscribed()).toBe(1)
    expect(h.changes.map((c) => [c.id, c.status])).toEqual([
      ['e1', 'running'],
      ['e2', 'queued'],
    ])
  })

  it('reconnects with backoff after any close, and says subscribed again', () => {
    const h = harness()
    h.client.start()
    h.sockets[0].send({ type: 'subscribed' })
    h.sockets[0].drop(1011)
    h.timers.shift()!.fn()
    h.sockets[1].drop(1006) // refused before subscribing: a longer wait
    expect(h.timers.map((t) => t.ms)).toEqual([200])
    h.timers.shift()!.fn()
    h.sockets[2].send({ type: 'subscribed' }) // success resets the backoff
    h.sockets[2].drop()
    expect(h.timers.map((t) => t.ms)).toEqual([100])
    expect(h.subscribed()).toBe(2)
    h.client.stop()
    expect(h.states.at(-1)).toBe('closed')
  })

  it('offers a fresh token per connect, and waits for a new sign-in after 4401', async () => {
    const h = harness(['tok-one', 'tok-two'])
    h.client.start()
    await settle()
    expect(h.sockets[0].protocols).toEqual(['azuraforge.v1', 'azuraforge.token.tok-one'])
    expect(h.sockets[0].url).toBe('ws://host/api/v1/events/status')
    h.sockets[0].drop(4401)
    expect(h.timers).toEqual([])
    h.signIn()
    await settle()
    await settle()
    expect(h.sockets[1].protocols).toEqual(['azuraforge.v1', 'azuraforge.token.tok-two'])
  })

  it('stops for good: no reconnect, handlers detached', () => {
    const h = harness()
    h.client.start()
    h.client.stop()
    expect(h.sockets[0].closedByClient).toBe(true)
    h.sockets[0].drop()
    expect(h.timers).toEqual([])
  })
})
