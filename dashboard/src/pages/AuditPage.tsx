import { useEffect, useState } from 'react'
import { useSearchParams } from 'react-router'
import { api } from '../api/client'
import type { AuditEvent } from '../api/types'
import { ErrorBanner, Spinner } from '../components/common'
import { formatDate } from '../lib/format'
import { useAsync } from '../lib/hooks'

export const AUDIT_PAGE_SIZE = 50

// The actions the API records (free text is accepted too, for ones added later).
const KNOWN_ACTIONS = [
  'login',
  'login.failed',
  'experiment.cancel',
  'experiment.delete',
  'model.register',
  'model.delete',
  'user.create',
  'user.update',
  'token.create',
  'token.revoke',
]

function detailText(detail: AuditEvent['detail']): string {
  if (!detail || Object.keys(detail).length === 0) return ''
  return Object.entries(detail)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ')
}

export function AuditPage() {
  const [params, setParams] = useSearchParams()
  const action = params.get('action') ?? ''
  const actor = params.get('actor') ?? ''
  // `before` cursors of the pages seen so far: the last one is the page shown ([] = newest)
  const [cursors, setCursors] = useState<(number | string)[]>([])
  const before = cursors.length ? cursors[cursors.length - 1] : null
  const page = useAsync((signal) => api.audit({ limit: AUDIT_PAGE_SIZE, before, action, actor }, signal), [action, actor, before])
  const [actionText, setActionText] = useState(action)
  const [actorText, setActorText] = useState(actor)
  useEffect(() => {
    document.title = 'Audit log · AzuraForge'
  }, [])

  function apply() {
    const next = new URLSearchParams()
    if (actionText.trim()) next.set('action', actionText.trim())
    if (actorText.trim()) next.set('actor', actorText.trim())
    setCursors([])
    setParams(next, { replace: true })
  }

  const items = page.data?.items ?? []
  return (
    <div className="page">
      <h1>Audit log</h1>
      <p className="lead">Who did what, newest first: sign-ins, cancels and deletes, models, users and tokens.</p>
      <form
        className="card filters audit-filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault()
          apply()
        }}
      >
        <div className="field">
          <label htmlFor="audit-action">Action</label>
          <input id="audit-action" data-testid="audit-action" list="audit-actions" placeholder="any" value={actionText} onChange={(e) => setActionText(e.target.value)} />
          <datalist id="audit-actions">
            {KNOWN_ACTIONS.map((a) => (
              <option key={a} value={a} />
            ))}
          </datalist>
        </div>
        <div className="field">
          <label htmlFor="audit-actor">Actor</label>
          <input id="audit-actor" data-testid="audit-actor" type="text" placeholder="any username" spellCheck={false} value={actorText} onChange={(e) => setActorText(e.target.value)} />
        </div>
        <div className="field field-submit">
          <button type="submit" className="btn btn-primary" data-testid="audit-apply">
            Filter
          </button>
        </div>
      </form>
      <ErrorBanner error={page.error} onRetry={page.reload} />
      {!page.data && !page.error && <Spinner />}
      {page.data && (
        <div className="table-scroll card">
          <table className="table compact" data-testid="audit-table">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Actor</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
                <th scope="col">Detail</th>
                <th scope="col">IP</th>
              </tr>
            </thead>
            <tbody>
              {items.map((e) => (
                <tr key={String(e.id)} data-testid={`audit-${e.id}`} className={e.action.endsWith('.failed') ? 'row-alert' : ''}>
                  <td className="nowrap">{formatDate(e.at)}</td>
                  <td>{e.actor ?? <span className="muted">—</span>}</td>
                  <td className="mono">{e.action}</td>
                  <td className="mono">{e.target ?? ''}</td>
                  <td className="mono small">{detailText(e.detail)}</td>
                  <td className="mono small">{e.ip ?? ''}</td>
                </tr>
              ))}
              {items.length === 0 && (
                <tr>
                  <td colSpan={6} className="empty" data-testid="audit-empty">
                    No events{action || actor ? ' match' : ' yet'}.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      )}
      <div className="pager" aria-label="pagination">
        <button type="button" className="btn" data-testid="audit-newest" disabled={cursors.length === 0} onClick={() => setCursors([])}>
          ⇤ Newest
        </button>
        <button type="button" className="btn" data-testid="audit-newer" disabled={cursors.length === 0} onClick={() => setCursors((c) => c.slice(0, -1))}>
          ← Newer
        </button>
        <button
          type="button"
          className="btn"
          data-testid="audit-older"
          disabled={page.loading || page.data?.next_before == null}
          onClick={() => {
            const next = page.data?.next_before
            if (next != null) setCursors((c) => [...c, next])
          }}
        >
          Older →
        </button>
      </div>
    </div>
  )
}
