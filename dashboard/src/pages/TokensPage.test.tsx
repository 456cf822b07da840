import { render, screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { MemoryRouter } from 'react-router'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ApiToken } from '../api/types'
import { fakeFetch } from '../test/fixtures'
import { TokensPage } from './TokensPage'

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
  vi.restoreAllMocks()
})

const SECRET = 'af_live_s3cr3t_0123456789abcdef'

const token = (id: number, name: string, extra: Partial<ApiToken> = {}): ApiToken => ({
  id,
  name,
  prefix: `af_${id}abc`,
  created_at: '2026-11-01T09:00:00Z',
  expires_at: '2099-01-30T09:00:00Z',
  last_used_at: null,
  revoked_at: null,
  ...extra,
})

function server() {
  const tokens: ApiToken[] = [
    token(1, 'laptop', { last_used_at: '2026-11-20T09:00:00Z' }),
    token(2, 'old ci', { revoked_at: '2026-11-10T09:00:00Z' }),
    token(3, 'expired one', { expires_at: '2026-01-01T00:00:00Z' }),
  ]
  const calls = fakeFetch(({ method, url, body }) => {
    if (url === '/api/v1/tokens' && method === 'GET') return { body: { items: tokens } }
    if (url === '/api/v1/tokens' && method === 'POST') {
      const b = body as { name: string; expires_in_days: number }
      const made = token(9, b.name)
      tokens.push(made)
      return { status: 201, body: { ...made, token: SECRET } }
    }
    const del = url.match(/^\/api\/v1\/tokens\/(\d+)$/)
    if (del && method === 'DELETE') {
      const t = tokens.find((x) => String(x.id) === del[1])!
      t.revoked_at = '2026-11-27T10:00:00Z'
      return { status: 204, body: null }
    }
    return undefined
  })
  return calls
}

const renderPage = () =>
  render(
    <MemoryRouter>
      <TokensPage />
    </MemoryRouter>,
  )

describe('API tokens', () => {
  it('lists own tokens with their state; revoked ones cannot be revoked again', async () => {
    server()
    renderPage()
    expect(await screen.findByTestId('token-1')).toHaveTextContent(/^laptopaf_1abc…/)
    expect(screen.getByTestId('token-state-1')).toHaveTextContent(/^active$/)
    expect(screen.getByTestId('token-state-2')).toHaveTextContent(/^revoked /)
    expect(screen.getByTestId('token-state-3')).toHaveTextContent(/^expired$/)
    expect(screen.getByTestId('revoke-1')).toBeInTheDocument()
    expect(screen.queryByTestId('revoke-2')).toBeNull()
  })

  it('creates a token and shows its secret once, with a warning and a copy button', async () => {
    const calls = server()
    const user = userEvent.setup()
    renderPage()
    await screen.findByTestId('token-1')
    expect(screen.getByTestId('token-days')).toHaveValue(90)
    await user.type(screen.getByTestId('token-name'), 'notebook')
    await user.clear(screen.getByTestId('token-days'))
    await user.type(screen.getByTestId('token-days'), '30')
    await user.click(screen.getByTestId('token-submit'))

    expect(await screen.findByTestId('new-token-value')).toHaveValue(SECRET)
    expect(screen.getByTestId('new-token-warning')).toHaveTextContent(/shown only this once/)
    expect(calls.find((c) => c.method === 'POST')!.body).toEqual({ name: 'notebook', expires_in_days: 30 })
    await user.click(screen.getByTestId('new-token-copy'))
    expect(await navigator.clipboard.readText()).toBe(SECRET)
    expect(screen.getByTestId('new-token-copy')).toHaveTextContent(/^Copied ✓$/)
    // the list has the new token, by its prefix only
    expect(await screen.findByTestId('token-9')).toHaveTextContent(/^notebookaf_9abc…/)

    await user.click(screen.getByTestId('new-token-done'))
    expect(screen.queryByTestId('new-token')).toBeNull()
    expect(document.body.innerHTML).not.toContain(SECRET)
    expect([...document.querySelectorAll('input')].some((i) => i.value === SECRET)).toBe(false)
  })

  it('checks the name and the expiry before asking the API', async () => {
    const calls = server()
    const user = userEvent.setup()
    renderPage()
    await screen.findByTestId('token-1')
    await user.clear(screen.getByTestId('token-days'))
    await user.type(screen.getByTestId('token-days'), '400')
    await user.click(screen.getByTestId('token-submit'))
    expect(screen.getByTestId('error-token-name')).toHaveTextContent(/^Give the token a name\.$/)
    expect(screen.getByTestId('error-token-days')).toHaveTextContent(/^Enter a whole number of days from 1 to 365\.$/)
    expect(calls.filter((c) => c.method === 'POST')).toHaveLength(0)
  })

  it('revokes only after a confirmation', async () => {
    const calls = server()
    const user = userEvent.setup()
    renderPage()
    const confirm = vi.spyOn(window, 'confirm').mockReturnValueOnce(false).mockReturnValueOnce(true)
    await user.click(await screen.findByTestId('revoke-1'))
    expect(calls.filter((c) => c.method === 'DELETE')).toHaveLength(0)
    await user.click(screen.getByTestId('revoke-1'))
    await waitFor(() => expect(screen.getByTestId('token-state-1')).toHaveTextContent(/^revoked /))
    expect(calls.filter((c) => c.method === 'DELETE').map((c) => c.url)).toEqual(['/api/v1/tokens/1'])
    expect(confirm.mock.calls[0][0]).toMatch(/^Revoke the token "laptop" \(af_1abc…\)\?/)
    expect(screen.queryByTestId('revoke-1')).toBeNull()
  })
})
