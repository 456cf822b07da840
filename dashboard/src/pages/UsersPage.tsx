import { useEffect, useState, type FormEvent } from 'react'
import { api, ApiError, type UserChanges } from '../api/client'
import { ROLES, type Role, type User } from '../api/types'
import { ErrorBanner, SecretOnce, Section, Spinner } from '../components/common'
import { useAuth } from '../lib/auth'
import { formatDate } from '../lib/format'
import { useAsync } from '../lib/hooks'

const PASSWORD_CHARS = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789'

/** A random password for a reset (the browser's CSPRNG; no look-alike characters). */
export function generatePassword(length = 20): string {
  const bytes = new Uint32Array(length)
  crypto.getRandomValues(bytes)
  return Array.from(bytes, (b) => PASSWORD_CHARS[b % PASSWORD_CHARS.length]).join('')
}

interface Shown {
  username: string
  password: string
  why: 'created' | 'reset'
}

export function UsersPage() {
  const { me } = useAuth()
  const list = useAsync((signal) => api.users(signal), [])
  const [error, setError] = useState<unknown>(null)
  const [shown, setShown] = useState<Shown | null>(null)
  const [resetting, setResetting] = useState<User | null>(null)
  const [busyId, setBusyId] = useState<string | null>(null)
  useEffect(() => {
    document.title = 'Users · AzuraForge'
  }, [])

  async function change(user: User, changes: UserChanges, confirmText?: string) {
    if (confirmText && !window.confirm(confirmText)) return false
    setError(null)
    setBusyId(String(user.id))
    try {
      await api.updateUser(user.id, changes)
      return true
    } catch (err) {
      setError(err)
      return false
    } finally {
      setBusyId(null)
      list.reload()
    }
  }

  const users = list.data ?? []
  return (
    <div className="page">
      <h1>Users</h1>
      <p className="lead">
        Viewers read everything; members also launch, upload, predict and register models, and cancel or delete what they
        own; admins do everything, including this page and the audit log.
      </p>
      {shown && (
        <SecretOnce
          testId="user-password"
          title={shown.why === 'created' ? `Password for the new user ${shown.username}` : `New password for ${shown.username}`}
          secret={shown.password}
          warning="Pass it on securely. It is shown only this once; after that it can only be reset."
          onDone={() => setShown(null)}
        />
      )}
      <CreateUser
        onCreated={(user, password) => {
          if (password) setShown({ username: user.username, password, why: 'created' })
          list.reload()
        }}
      />
      {resetting && (
        <ResetPassword
          key={String(resetting.id)}
          user={resetting}
          onCancel={() => setResetting(null)}
          onSet={async (password) => {
            if (await change(resetting, { password })) {
              setShown({ username: resetting.username, password, why: 'reset' })
              setResetting(null)
            }
          }}
        />
      )}
      <ErrorBanner error={error ?? list.error} onRetry={list.error ? list.reload : undefined} />
      {!list.data && !list.error && <Spinner />}
      {list.data && (
        <div className="table-scroll card">
          <table className="table" data-testid="users-table">
            <thead>
              <tr>
                <th scope="col">Username</th>
                <th scope="col">Role</th>
                <th scope="col">State</th>
                <th scope="col">Created</th>
                <th scope="col">Last sign-in</th>
                <th scope="col" />
              </tr>
            </thead>
            <tbody>
              {users.map((u) => {
                const self = u.username === me?.username
                const busy = busyId === String(u.id)
                return (
                  <tr key={String(u.id)} data-testid={`user-${u.username}`} className={u.disabled ? 'row-inactive' : ''}>
                    <td>
                      {u.username}
                      {self && <span className="muted small"> (you)</span>}
                    </td>
                    <td>
                      <label className="sr-only" htmlFor={`role-${u.id}`}>
                        Role of {u.username}
                      </label>
                      <select
                        id={`role-${u.id}`}
                        data-testid={`role-${u.username}`}
                        value={u.role}
                        disabled={busy}
                        onChange={(e) =>
                          void change(
                            u,
                            { role: e.target.value as Role },
                            self && e.target.value !== 'admin' ? 'Change your own role? You lose access to this page.' : undefined,
                          )
                        }
                      >
                        {ROLES.map((r) => (
                          <option key={r} value={r}>
                            {r}
                          </option>
                        ))}
                      </select>
                    </td>
                    <td>
                      <span className={`badge ${u.disabled ? 'user-disabled' : 'user-active'}`} data-testid={`state-${u.username}`}>
                        {u.disabled ? 'disabled' : 'active'}
                      </span>
                    </td>
                    <td className="nowrap">{formatDate(u.created_at)}</td>
                    <td className="nowrap">{u.last_login_at ? formatDate(u.last_login_at) : 'never'}</td>
                    <td>
                      <div className="actions">
                        <button
                          type="button"
                          className={`btn btn-small ${u.disabled ? '' : 'btn-danger-outline'}`}
                          data-testid={`toggle-${u.username}`}
                          disabled={busy}
                          onClick={() =>
                            void change(
                              u,
                              { disabled: !u.disabled },
                              u.disabled ? undefined : `Disable ${u.username}? They can no longer sign in or use their tokens.`,
                            )
                          }
                        >
                          {u.disabled ? 'Enable' : 'Disable'}
                        </button>
                        <button type="button" className="btn btn-small" data-testid={`reset-${u.username}`} disabled={busy} onClick={() => setResetting(u)}>
                          Reset password…
                        </button>
                      </div>
                    </td>
                  </tr>
                )
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  )
}

function CreateUser({ onCreated }: { onCreated: (user: User, password: string | null) => void }) {
  const [username, setUsername] = useState('')
  const [role, setRole] = useState<Role>('member')
  const [password, setPassword] = useState('')
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({})
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)

  async function submit(ev: FormEvent) {
    ev.preventDefault()
    if (!username.trim()) {
      setFieldErrors({ username: 'Enter a username.' })
      return
    }
    setBusy(true)
    setError(null)
    setFieldErrors({})
    try {
      const result = await api.createUser({ username: username.trim(), role, password: password || undefined })
      setUsername('')
      setPassword('')
      setRole('member')
      onCreated(result.user, result.password)
    } catch (err) {
      if (err instanceof ApiError && err.fieldErrors.some((f) => f.path)) {
        const found: Record<string, string> = {}
        for (const f of err.fieldErrors) found[f.path || 'form'] = found[f.path || 'form'] ? `${found[f.path || 'form']}; ${f.message}` : f.message
        setFieldErrors(found)
      } else setError(err)
    } finally {
      setBusy(false)
    }
  }

  return (
    <Section title="New user" testId="user-create">
      <form className="form-grid" onSubmit={submit} noValidate>
        <div className={`field ${fieldErrors.username ? 'field-invalid' : ''}`}>
          <label htmlFor="new-username">Username</label>
          <input id="new-username" data-testid="new-username" type="text" autoComplete="off" spellCheck={false} value={username} onChange={(e) => setUsername(e.target.value)} />
          {fieldErrors.username && <p className="field-error" data-testid="error-username">{fieldErrors.username}</p>}
        </div>
        <div className="field">
          <label htmlFor="new-role">Role</label>
          <select id="new-role" data-testid="new-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </div>
        <div className={`field ${fieldErrors.password ? 'field-invalid' : ''}`}>
          <label htmlFor="new-password">Password (optional)</label>
          <input id="new-password" data-testid="new-password" type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />
          {fieldErrors.password ? (
            <p className="field-error" data-testid="error-password">{fieldErrors.password}</p>
          ) : (
            <p className="help">Leave empty to have one generated (shown once).</p>
          )}
        </div>
        <div className="field field-submit">
          <button type="submit" className="btn btn-primary" data-testid="new-user-submit" disabled={busy}>
            {busy ? 'Creating…' : 'Create user'}
          </button>
        </div>
      </form>
      {fieldErrors.form && <p className="field-error">{fieldErrors.form}</p>}
      <ErrorBanner error={error} testId="user-create-error" />
    </Section>
  )
}

function ResetPassword({ user, onSet, onCancel }: { user: User; onSet: (password: string) => Promise<void>; onCancel: () => void }) {
  const [password, setPassword] = useState(generatePassword)
  const [busy, setBusy] = useState(false)
  return (
    <Section title={`Reset the password of ${user.username}`} testId="reset-panel">
      <form
        className="input-row"
        onSubmit={async (ev) => {
          ev.preventDefault()
          if (!password) return
          setBusy(true)
          try {
            await onSet(password)
          } finally {
            setBusy(false)
          }
        }}
      >
        <label className="sr-only" htmlFor="reset-password">
          New password
        </label>
        <input id="reset-password" data-testid="reset-password" className="mono" type="text" autoComplete="new-password" spellCheck={false} value={password} onChange={(e) => setPassword(e.target.value)} />
        <button type="button" className="btn" onClick={() => setPassword(generatePassword())}>
          Generate
        </button>
        <button type="submit" className="btn btn-primary" data-testid="reset-submit" disabled={busy || !password}>
          Set password
        </button>
        <button type="button" className="btn btn-link" onClick={onCancel}>
          Cancel
        </button>
      </form>
    </Section>
  )
}
