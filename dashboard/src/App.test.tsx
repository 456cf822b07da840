import { act, cleanup, render, screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { MemoryRouter, useLocation } from 'react-router'
import { afterEach, describe, expect, it } from 'vitest'
import { resetSession } from './api/session'
import type { Me } from './api/types'
import { App } from './App'
import { CLASSIFIER_SCHEMA, fakeFetch, ME, UNAUTHENTICATED, type FakeCall } from './test/fixtures'

const realFetch = globalThis.fetch
const RealWebSocket = globalThis.WebSocket
afterEach(() => {
  cleanup() // unmount before the session resets, so nothing renders after the test
  globalThis.fetch = realFetch
  globalThis.WebSocket = RealWebSocket
  resetSession()
})

const experiment = (id: string, owner: string | null, status = 'succeeded') => ({
  id,
  name: `run ${id}`,
  pipeline_id: 'image_classifier',
  status,
  tags: [],
  config: { epochs: 2 },
  created_at: '2026-11-27T10:00:00Z',
  owner,
  last_event_seq: 3,
})

const PIPELINE = {
  id: 'image_classifier',
  name: 'Image Classifier',
  description: 'Trains a CNN.',
  version: '0.1.0',
  installed: true,
  config_schema: CLASSIFIER_SCHEMA,
  default_config: { dataset: 'mnist_5k', data_path: null, max_samples: null, epochs: 15, learning_rate: 0.003, augment: true, conv_channels: [16, 32] },
}

/** A fake API with one session: `server.user` is who the session cookie belongs to (null: none). */
function fakeServer(users: Record<string, { password: string; me: Me }>, start: Me | null = null) {
  const server = { user: start as Me | null, failures: 0, calls: [] as FakeCall[] }
  server.calls = fakeFetch((call) => {
    const { method, url, body } = call
    if (url === '/api/v1/auth/login' && method === 'POST') {
      const { username, password } = body as { username: string; password: string }
      if (server.failures >= 3) return { status: 429, body: { error: { code: 'rate_limited', message: 'slow down' } }, headers: { 'Retry-After': '30' } }
      const known = users[username]
      if (!known || known.password !== password) {
        server.failures += 1
        return { status: 401, body: { error: { code: 'invalid_credentials', message: 'invalid username or password' } } }
      }
      server.user = known.me
      const { auth: _auth, ...user } = known.me
      return { body: { user, expires_at: '2026-12-01T00:00:00Z' } }
    }
    if (url === '/api/v1/auth/logout' && method === 'POST') {
      server.user = null
      return { status: 204, body: null }
    }
    if (url === '/api/v1/health') return { body: { status: 'ok' } }
    if (!server.user) return UNAUTHENTICATED
    if (url === '/api/v1/auth/me') return { body: server.user }
    if (url === '/api/v1/auth/ws-token') return { body: { token: `ws-for-${server.user.username}`, expires_in: 60 } }
    if (url.startsWith('/api/v1/pipelines/image_classifier')) return { body: PIPELINE }
    if (url.startsWith('/api/v1/pipelines')) return { body: { items: [PIPELINE] } }
    if (url === '/api/v1/experiments' && method === 'POST') return { status: 201, body: experiment('new1', server.user.username, 'queued') }
    if (url.startsWith('/api/v1/experiments?')) return { body: { items: [experiment('a1', 'max'), experiment('b2', 'ada')], total: 2, next_cursor: null, limit: 50 } }
    if (url === '/api/v1/experiments/r1') return { body: experiment('r1', 'max', 'running') }
    if (url.startsWith('/api/v1/experiments/r1/')) return { body: { items: [], series: [] } }
    if (url.startsWith('/api/v1/models')) return { body: { items: [] } }
    return undefined
  })
  return server
}

const USERS = {
  max: { password: 'right-horse', me: ME.member },
  ada: { password: 'battery-staple', me: ME.admin },
}

function Where() {
  const loc = useLocation()
  return <div data-testid="location">{loc.pathname + loc.search}</div>
}

function renderApp(url: string) {
  return render(
    <MemoryRouter initialEntries={[url]}>
      <App />
      <Where />
    </MemoryRouter>,
  )
}

async function signIn(user: ReturnType<typeof userEvent.setup>, username: string, password: string) {
  await user.clear(screen.getByTestId('login-username'))
  await user.type(screen.getByTestId('login-username'), username)
  await user.clear(screen.getByTestId('login-password'))
  await user.type(screen.getByTestId('login-password'), password)
  await user.click(screen.getByTestId('login-submit'))
}

describe('login', () => {
  it('a first visit without a session: login page, a clear error, then the page asked for', async () => {
    const server = fakeServer(USERS)
    const user = userEvent.setup()
    renderApp('/experiments?status=succeeded')
    expect(await screen.findByTestId('login-page')).toBeInTheDocument()
    expect(screen.queryByTestId('login-expired')).toBeNull()
    await signIn(user, 'max', 'wrong')
    expect(await screen.findByTestId('login-error')).toHaveTextContent(/^Wrong username or password\.$/)
    await signIn(user, 'max', 'right-horse')
    expect(await screen.findByTestId('row-a1')).toBeInTheDocument()
    expect(screen.queryByTestId('login-page')).toBeNull()
    expect(screen.getByTestId('location')).toHaveTextContent(/^\/experiments\?status=succeeded$/)
    expect(screen.getByTestId('user-name')).toHaveTextContent(/^max$/)
    expect(screen.getByTestId('user-role')).toHaveTextContent(/^member$/)
    // /auth/me answered 401, then again (the same call, sent again) after the login
    expect(server.calls.filter((c) => c.url === '/api/v1/auth/me')).toHaveLength(2)
    expect(server.calls.filter((c) => c.url === '/api/v1/auth/login').map((c) => c.body)).toEqual([
      { username: 'max', password: 'wrong' },
      { username: 'max', password: 'right-horse' },
    ])
  })

  it('a session that ends mid-work: the login page, then the same request again, the typed form kept', async () => {
    const server = fakeServer(USERS, ME.member)
    const user = userEvent.setup()
    renderApp('/pipelines/image_classifier')
    await user.type(await screen.findByTestId('exp-name'), 'late night run')
    server.user = null // the session expired while the form was being filled
    await user.click(screen.getByTestId('submit'))
    expect(await screen.findByTestId('login-page')).toBeInTheDocument()
    expect(screen.getByTestId('login-expired')).toHaveTextContent(/^Your session has ended\./)
    expect(screen.getByTestId('launch-form').closest('.app-shell')).toHaveAttribute('hidden')
    await signIn(user, 'max', 'right-horse')
    await waitFor(() => expect(screen.getByTestId('location')).toHaveTextContent(/^\/experiments\/new1$/))
    const posts = server.calls.filter((c) => c.method === 'POST' && c.url === '/api/v1/experiments')
    expect(posts).toHaveLength(2) // refused with 401, then sent again after the login
    expect(posts[1].body).toMatchObject({ name: 'late night run', pipeline_id: 'image_classifier' })
  })

  it("someone else signing in does not replay the last user's request, and starts afresh", async () => {
    const server = fakeServer(USERS, ME.member)
    const user = userEvent.setup()
    renderApp('/pipelines/image_classifier')
    await user.type(await screen.findByTestId('exp-name'), 'max only')
    server.user = null
    await user.click(screen.getByTestId('submit'))
    await screen.findByTestId('login-page')
    await signIn(user, 'ada', 'battery-staple')
    expect(await screen.findByTestId('user-name')).toHaveTextContent(/^ada$/)
    await waitFor(() => expect(screen.getByTestId('exp-name')).toHaveValue(''))
    expect(screen.getByTestId('location')).toHaveTextContent(/^\/pipelines\/image_classifier$/)
    expect(server.calls.filter((c) => c.method === 'POST' && c.url === '/api/v1/experiments')).toHaveLength(1)
  })

  it('too many failures: says how long to wait and holds the button', async () => {
    const server = fakeServer(USERS)
    server.failures = 3
    const user = userEvent.setup()
    renderApp('/')
    await screen.findByTestId('login-page')
    await signIn(user, 'max', 'right-horse')
    expect(await screen.findByTestId('login-error')).toHaveTextContent(/^Too many failed sign-ins\. Try again in 30 seconds\.$/)
    expect(screen.getByTestId('login-submit')).toBeDisabled()
  })

  it('a live socket closed with 4401 brings the login page up, then reconnects with a new token', async () => {
    const sockets: { url: string; protocols?: string[]; ws: { onclose: ((e: { code: number }) => void) | null } }[] = []
    globalThis.WebSocket = class {
      onopen = null
      onmessage = null
      onclose: ((e: { code: number }) => void) | null = null
      onerror = null
      constructor(url: string, protocols?: string[]) {
        sockets.push({ url, protocols, ws: this })
      }
      close() {}
    } as unknown as typeof WebSocket
    const server = fakeServer(USERS, ME.member)
    const user = userEvent.setup()
    renderApp('/experiments/r1')
    await waitFor(() => expect(sockets).toHaveLength(1))
    expect(sockets[0].protocols).toEqual(['azuraforge.v1', 'azuraforge.token.ws-for-max'])
    expect(sockets[0].url).not.toContain('ws-for')
    server.user = null
    act(() => sockets[0].ws.onclose?.({ code: 4401 }))
    expect(await screen.findByTestId('login-page')).toBeInTheDocument()
    await signIn(user, 'max', 'right-horse')
    await waitFor(() => expect(sockets).toHaveLength(2))
    expect(sockets[1].protocols).toEqual(['azuraforge.v1', 'azuraforge.token.ws-for-max'])
    expect(screen.getByTestId('location')).toHaveTextContent(/^\/experiments\/r1$/)
  })
})

describe('user menu', () => {
  it('admins get Users and Audit log; logging out shows the login page', async () => {
    const server = fakeServer(USERS, ME.admin)
    const user = userEvent.setup()
    renderApp('/models')
    await user.click(await screen.findByTestId('user-menu'))
    expect(screen.getByTestId('menu-tokens')).toHaveTextContent(/^API tokens$/)
    expect(screen.getByTestId('menu-users')).toBeInTheDocument()
    expect(screen.getByTestId('menu-audit')).toBeInTheDocument()
    await user.click(screen.getByTestId('menu-logout'))
    expect(await screen.findByTestId('login-page')).toBeInTheDocument()
    expect(screen.queryByTestId('user-menu')).toBeNull()
    expect(server.calls.some((c) => c.method === 'POST' && c.url === '/api/v1/auth/logout')).toBe(true)
    // someone else signs in at the same place
    await signIn(user, 'max', 'right-horse')
    expect(await screen.findByTestId('user-name')).toHaveTextContent(/^max$/)
    await user.click(screen.getByTestId('user-menu'))
    expect(screen.queryByTestId('menu-users')).toBeNull()
    expect(screen.queryByTestId('menu-audit')).toBeNull()
    expect(screen.getByTestId('location')).toHaveTextContent(/^\/models$/)
  })

  it('with auth off (--no-auth) there is no login and no logout', async () => {
    const calls = fakeFetch(({ url }) => {
      if (url === '/api/v1/auth/me') return { body: { ...ME.admin, username: 'local', auth: 'none' } }
      if (url.startsWith('/api/v1/models')) return { body: { items: [] } }
      if (url === '/api/v1/health') return { body: { status: 'ok' } }
      return undefined
    })
    const user = userEvent.setup()
    renderApp('/models')
    await user.click(await screen.findByTestId('user-menu'))
    expect(screen.getByTestId('user-menu-list')).toHaveTextContent(/Authentication is off/)
    expect(screen.queryByTestId('menu-logout')).toBeNull()
    expect(screen.queryByTestId('menu-tokens')).toBeNull()
    expect(screen.queryByTestId('login-page')).toBeNull()
    expect(calls.some((c) => c.url.startsWith('/api/v1/auth/login'))).toBe(false)
  })

  it('members are told the admin pages are not theirs', async () => {
    fakeServer(USERS, ME.member)
    renderApp('/users')
    expect(await screen.findByTestId('admin-only')).toHaveTextContent(/your role is member/)
  })
})
