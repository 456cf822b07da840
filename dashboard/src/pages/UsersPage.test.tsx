import { render, screen, waitFor, within } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { MemoryRouter } from 'react-router'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { User } from '../api/types'
import { AsUser } from '../test/auth'
import { fakeFetch, ME } from '../test/fixtures'
import { generatePassword, UsersPage } from './UsersPage'

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
  vi.restoreAllMocks()
})

function server() {
  const users: User[] = [
    { id: 1, username: 'ada', role: 'admin', disabled: false, created_at: '2026-11-01T09:00:00Z', last_login_at: '2026-11-27T09:00:00Z' },
    { id: 2, username: 'max', role: 'member', disabled: false, created_at: '2026-11-02T09:00:00Z', last_login_at: null },
  ]
  const calls = fakeFetch(({ method, url, body }) => {
    if (url === '/api/v1/users' && method === 'GET') return { body: { items: users } }
    if (url === '/api/v1/users' && method === 'POST') {
      const b = body as { username: string; role: User['role']; password?: string }
      if (b.username === 'ada') return { status: 409, body: { error: { code: 'conflict', message: "user 'ada' exists" } } }
      const made: User = { id: users.length + 1, username: b.username, role: b.role, disabled: false, created_at: '2026-11-27T10:00:00Z', last_login_at: null }
      users.push(made)
      return { status: 201, body: { user: made, password: b.password ? null : 'Gen3rated-Pw-xyz' } }
    }
    const m = url.match(/^\/api\/v1\/users\/(\d+)$/)
    if (m && method === 'PATCH') {
      const u = users.find((x) => String(x.id) === m[1])!
      const { password: _password, ...changes } = body as Partial<User> & { password?: string }
      Object.assign(u, changes)
      return { body: u }
    }
    return undefined
  })
  return calls
}

const renderPage = () =>
  render(
    <AsUser me={ME.admin}>
      <MemoryRouter>
        <UsersPage />
      </MemoryRouter>
    </AsUser>,
  )

describe('users (admin)', () => {
  it('creates a user without a password and shows the generated one once', async () => {
    const calls = server()
    const user = userEvent.setup()
    renderPage()
    await screen.findByTestId('user-ada')
    await user.type(screen.getByTestId('new-username'), 'vic')
    await user.selectOptions(screen.getByTestId('new-role'), 'viewer')
    await user.click(screen.getByTestId('new-user-submit'))
    expect(await screen.findByTestId('user-password-value')).toHaveValue('Gen3rated-Pw-xyz')
    expect(calls.find((c) => c.method === 'POST')!.body).toEqual({ username: 'vic', role: 'viewer' })
    expect(await screen.findByTestId('user-vic')).toBeInTheDocument()
    await user.click(screen.getByTestId('user-password-done'))
    expect(document.body.innerHTML).not.toContain('Gen3rated-Pw-xyz')
  })

  it('with a chosen password shows no secret; a clash is reported', async () => {
    const calls = server()
    const user = userEvent.setup()
    renderPage()
    await screen.findByTestId('user-ada')
    await user.type(screen.getByTestId('new-username'), 'bea')
    await user.type(screen.getByTestId('new-password'), 'a-long-passphrase')
    await user.click(screen.getByTestId('new-user-submit'))
    expect(await screen.findByTestId('user-bea')).toBeInTheDocument()
    expect(screen.queryByTestId('user-password')).toBeNull()
    expect(calls.filter((c) => c.method === 'POST')[0].body).toEqual({ username: 'bea', role: 'member', password: 'a-long-passphrase' })
    await user.type(screen.getByTestId('new-username'), 'ada')
    await user.click(screen.getByTestId('new-user-submit'))
    expect(await screen.findByTestId('user-create-error-message')).toHaveTextContent(/^user 'ada' exists$/)
  })

  it('changes a role, disables (after confirming) and enables', async () => {
    const calls = server()
    const user = userEvent.setup()
    vi.spyOn(window, 'confirm').mockReturnValue(true)
    renderPage()
    await user.selectOptions(await screen.findByTestId('role-max'), 'admin')
    await waitFor(() => expect(screen.getByTestId('role-max')).toHaveValue('admin'))
    await user.click(screen.getByTestId('toggle-max'))
    await waitFor(() => expect(screen.getByTestId('state-max')).toHaveTextContent(/^disabled$/))
    expect(window.confirm).toHaveBeenCalledWith('Disable max? They can no longer sign in or use their tokens.')
    await user.click(screen.getByTestId('toggle-max'))
    await waitFor(() => expect(screen.getByTestId('state-max')).toHaveTextContent(/^active$/))
    expect(calls.filter((c) => c.method === 'PATCH').map((c) => [c.url, c.body])).toEqual([
      ['/api/v1/users/2', { role: 'admin' }],
      ['/api/v1/users/2', { disabled: true }],
      ['/api/v1/users/2', { disabled: false }],
    ])
  })

  it('resets a password and shows the new one once', async () => {
    const calls = server()
    const user = userEvent.setup()
    renderPage()
    await user.click(await screen.findByTestId('reset-max'))
    const panel = screen.getByTestId('reset-panel')
    const proposed = (within(panel).getByTestId('reset-password') as HTMLInputElement).value
    expect(proposed).toHaveLength(20)
    await user.click(within(panel).getByTestId('reset-submit'))
    expect(await screen.findByTestId('user-password-value')).toHaveValue(proposed)
    expect(screen.queryByTestId('reset-panel')).toBeNull()
    expect(calls.find((c) => c.method === 'PATCH')!.body).toEqual({ password: proposed })
  })

  it('generates different passwords from the unambiguous alphabet', () => {
    const a = generatePassword()
    expect(a).toMatch(/^[A-HJ-NP-Za-km-z2-9]{20}$/)
    expect(generatePassword()).not.toBe(a)
  })
})
