import { useEffect, useState, type FormEvent } from 'react'
import { api, ApiError } from '../api/client'
import type { ApiToken, CreatedToken } from '../api/types'
import { ErrorBanner, SecretOnce, Section, Spinner } from '../components/common'
import { formatDate } from '../lib/format'
import { useAsync } from '../lib/hooks'

export const DEFAULT_TOKEN_DAYS = 90

/** "" when the expiry is a whole number of days from 1 to 365, else what is wrong. */
export function expiryProblem(text: string): string {
  const days = Number(text)
  if (text.trim() === '' || !Number.isInteger(days) || days < 1 || days > 365) {
    return 'Enter a whole number of days from 1 to 365.'
  }
  return ''
}

export function tokenState(t: ApiToken, now = Date.now()): 'revoked' | 'expired' | 'active' {
  if (t.revoked_at) return 'revoked'
  if (t.expires_at && Date.parse(t.expires_at) <= now) return 'expired'
  return 'active'
}

export function TokensPage() {
  const list = useAsync((signal) => api.tokens(signal), [])
  const [name, setName] = useState('')
  const [days, setDays] = useState(String(DEFAULT_TOKEN_DAYS))
  const [problems, setProblems] = useState<{ name?: string; days?: string }>({})
  const [created, setCreated] = useState<CreatedToken | null>(null)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  useEffect(() => {
    document.title = 'API tokens · AzuraForge'
  }, [])

  async function create(ev: FormEvent) {
    ev.preventDefault()
    const found = { name: name.trim() ? undefined : 'Give the token a name.', days: expiryProblem(days) || undefined }
    setProblems(found)
    if (found.name || found.days) return
    setBusy(true)
    setError(null)
    try {
      const token = await api.createToken({ name: name.trim(), expires_in_days: Number(days) })
      setCreated(token)
      setName('')
      setDays(String(DEFAULT_TOKEN_DAYS))
      list.reload()
    } catch (err) {
      if (err instanceof ApiError && err.fieldErrors.length) {
        const byField = (p: string) => err.fieldErrors.filter((f) => f.path === p).map((f) => f.message).join('; ') || undefined
        setProblems({ name: byField('name'), days: byField('expires_in_days') })
        if (!byField('name') && !byField('expires_in_days')) setError(err)
      } else setError(err)
    } finally {
      setBusy(false)
    }
  }

  async function revoke(t: ApiToken) {
    if (!window.confirm(`Revoke the token "${t.name}" (${t.prefix}…)? Scripts that use it stop working at once.`)) return
    setError(null)
    try {
      await api.revokeToken(t.id)
    } catch (err) {
      setError(err)
    }
    list.reload()
  }

  const tokens = list.data ?? []
  return (
    <div className="page">
      <h1>API tokens</h1>
      <p className="lead">
        Personal tokens for scripts and the CLI: send <code>Authorization: Bearer af_…</code>. A token acts as you, with
        your role.
      </p>
      {created && (
        <SecretOnce
          testId="new-token"
          title={`Your new token "${created.name}"`}
          secret={created.token}
          warning="Copy it now: it is shown only this once and cannot be recovered. Anyone who has it can act as you."
          onDone={() => setCreated(null)}
        />
      )}
      <Section title="New token" testId="token-create">
        <form className="form-grid" onSubmit={create} noValidate>
          <div className={`field ${problems.name ? 'field-invalid' : ''}`}>
            <label htmlFor="token-name">Name</label>
            <input
              id="token-name"
              data-testid="token-name"
              type="text"
              maxLength={100}
              placeholder="e.g. laptop CLI"
              value={name}
              aria-invalid={problems.name ? true : undefined}
              onChange={(e) => setName(e.target.value)}
            />
            {problems.name && <p className="field-error" data-testid="error-token-name">{problems.name}</p>}
          </div>
          <div className={`field ${problems.days ? 'field-invalid' : ''}`}>
            <label htmlFor="token-days">Expires after (days)</label>
            <input
              id="token-days"
              data-testid="token-days"
              type="number"
              min={1}
              max={365}
              step={1}
              value={days}
              aria-invalid={problems.days ? true : undefined}
              onChange={(e) => setDays(e.target.value)}
            />
            {problems.days ? (
              <p className="field-error" data-testid="error-token-days">{problems.days}</p>
            ) : (
              <p className="help">1 to 365 days.</p>
            )}
          </div>
          <div className="field field-submit">
            <button type="submit" className="btn btn-primary" data-testid="token-submit" disabled={busy}>
              {busy ? 'Creating…' : 'Create token'}
            </button>
          </div>
        </form>
      </Section>
      <ErrorBanner error={error ?? list.error} onRetry={list.error ? list.reload : undefined} />
      {!list.data && !list.error && <Spinner />}
      {list.data && (
        <div className="table-scroll card">
          <table className="table" data-testid="tokens-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Prefix</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <th scope="col">Last used</th>
                <th scope="col">State</th>
                <th scope="col" />
              </tr>
            </thead>
            <tbody>
              {tokens.map((t) => {
                const state = tokenState(t)
                return (
                  <tr key={String(t.id)} data-testid={`token-${t.id}`} className={state === 'active' ? '' : 'row-inactive'}>
                    <td>{t.name}</td>
                    <td className="mono">{t.prefix}…</td>
                    <td className="nowrap">{formatDate(t.created_at)}</td>
                    <td className="nowrap">{formatDate(t.expires_at)}</td>
                    <td className="nowrap">{t.last_used_at ? formatDate(t.last_used_at) : 'never'}</td>
                    <td>
                      <span className={`badge token-${state}`} data-testid={`token-state-${t.id}`}>
                        {state === 'revoked' ? `revoked ${formatDate(t.revoked_at)}` : state}
                      </span>
                    </td>
                    <td>
                      {!t.revoked_at && (
                        <button type="button" className="btn btn-small btn-danger-outline" data-testid={`revoke-${t.id}`} onClick={() => void revoke(t)}>
                          Revoke
                        </button>
                      )}
                    </td>
                  </tr>
                )
              })}
              {tokens.length === 0 && (
                <tr>
                  <td colSpan={7} className="empty" data-testid="no-tokens">
                    No tokens yet.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      )}
    </div>
  )
}
