import { render, screen, waitFor } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { MemoryRouter, useLocation } from 'react-router'
import { afterEach, describe, expect, it } from 'vitest'
import type { AuditEvent } from '../api/types'
import { fakeFetch } from '../test/fixtures'
import { AuditPage } from './AuditPage'

const realFetch = globalThis.fetch
afterEach(() => {
  globalThis.fetch = realFetch
})

const event = (id: number, action: string, actor: string | null): AuditEvent => ({
  id,
  at: `2026-11-27T10:${String(id % 60).padStart(2, '0')}:00Z`,
  actor,
  action,
  target: action.startsWith('experiment') ? `exp-${id}` : null,
  detail: action === 'login.failed' ? { username: 'max' } : {},
  ip: '127.0.0.1',
})

// 120 events, ids 1..120; newest first, pages of `limit` before the cursor
const ALL = Array.from({ length: 120 }, (_, i) => event(i + 1, i % 3 === 0 ? 'login.failed' : 'experiment.cancel', i % 2 ? 'max' : 'ada')).reverse()

function server() {
  return fakeFetch(({ url }) => {
    if (!url.startsWith('/api/v1/audit')) return undefined
    const q = new URL(url, 'http://x').searchParams
    const limit = Number(q.get('limit'))
    const before = q.get('before')
    const rows = ALL.filter((e) => (!before || Number(e.id) < Number(before)) && (!q.get('action') || e.action === q.get('action')) && (!q.get('actor') || e.actor === q.get('actor')))
    const items = rows.slice(0, limit)
    return { body: { items, next_before: rows.length > limit ? items[items.length - 1].id : null } }
  })
}

function Where() {
  const loc = useLocation()
  return <div data-testid="location">{loc.pathname + loc.search}</div>
}

const renderPage = () =>
  render(
    <MemoryRouter initialEntries={['/audit']}>
      <AuditPage />
      <Where />
    </MemoryRouter>,
  )

const shownIds = () => [...document.querySelectorAll('tr[data-testid^="audit-"]')].map((r) => r.getAttribute('data-testid'))

describe('audit log (admin)', () => {
  it('newest first, older pages with `before`, and back', async () => {
    const calls = server()
    const user = userEvent.setup()
    renderPage()
    expect(await screen.findByTestId('audit-120')).toBeInTheDocument()
    expect(shownIds().slice(0, 3)).toEqual(['audit-120', 'audit-119', 'audit-118'])
    expect(screen.getAllByRole('row')).toHaveLength(51)
    expect(screen.getByTestId('audit-newer')).toBeDisabled()
    await user.click(screen.getByTestId('audit-older'))
    expect(await screen.findByTestId('audit-70')).toBeInTheDocument()
    expect(screen.queryByTestId('audit-120')).toBeNull()
    await user.click(screen.getByTestId('audit-older'))
    expect(await screen.findByTestId('audit-1')).toBeInTheDocument()
    expect(screen.getByTestId('audit-older')).toBeDisabled()
    await user.click(screen.getByTestId('audit-newer'))
    expect(await screen.findByTestId('audit-70')).toBeInTheDocument()
    expect(calls.map((c) => c.url)).toEqual(['/api/v1/audit?limit=50', '/api/v1/audit?limit=50&before=71', '/api/v1/audit?limit=50&before=21', '/api/v1/audit?limit=50&before=71'])
  })

  it('filters by action and actor (kept in the URL), starting from the newest again', async () => {
    const calls = server()
    const user = userEvent.setup()
    renderPage()
    await screen.findByTestId('audit-120')
    await user.click(screen.getByTestId('audit-older'))
    await screen.findByTestId('audit-70')
    await user.type(screen.getByTestId('audit-action'), 'login.failed')
    await user.type(screen.getByTestId('audit-actor'), 'max')
    await user.click(screen.getByTestId('audit-apply'))
    await waitFor(() => expect(calls.at(-1)!.url).toBe('/api/v1/audit?limit=50&action=login.failed&actor=max'))
    expect(screen.getByTestId('location')).toHaveTextContent(/^\/audit\?action=login\.failed&actor=max$/)
    expect(await screen.findByTestId('audit-118')).toHaveTextContent(/maxlogin\.failedusername=max127\.0\.0\.1$/)
    expect(screen.queryByTestId('audit-120')).toBeNull()
  })
})
