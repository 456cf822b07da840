import { useEffect, useState, type FormEvent, type ReactNode } from 'react'
import { api, ApiError } from '../api/client'
import type { User } from '../api/types'

/** The message for a failed sign-in; `wait` counts down the seconds of a 429. */
export function loginErrorMessage(err: unknown, wait: number | null): string {
  if (err instanceof ApiError) {
    if (err.status === 401) return 'Wrong username or password.'
    if (err.status === 429) {
      if (wait !== null && wait > 0) {
        return `Too many failed sign-ins. Try again in ${wait} second${wait === 1 ? '' : 's'}.`
      }
      return wait === null ? 'Too many failed sign-ins. Wait a little, then try again.' : 'You can try again now.'
    }
  }
  return err instanceof Error ? err.message : String(err)
}

export function LoginPage({
  onLoggedIn,
  expired = false,
  themeToggle,
}: {
  onLoggedIn: (user: User) => void
  /** The session ended mid-work (not a first visit or a logout). */
  expired?: boolean
  themeToggle?: ReactNode
}) {
  const [username, setUsername] = useState('')
  const [password, setPassword] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  // after a 429: when signing in is allowed again (ms), and a clock for the countdown
  const [until, setUntil] = useState<number | null>(null)
  const [now, setNow] = useState(() => Date.now())
  const waiting = until !== null && until > now
  useEffect(() => {
    if (until === null) return
    const id = setInterval(() => setNow(Date.now()), 1000)
    return () => clearInterval(id)
  }, [until])
  useEffect(() => {
    document.title = 'Sign in · AzuraForge'
  }, [])

  async function submit(ev: FormEvent) {
    ev.preventDefault()
    if (!username.trim() || !password) {
      setError(new Error('Enter your username and password.'))
      return
    }
    setBusy(true)
    setError(null)
    try {
      const result = await api.login(username.trim(), password)
      setPassword('')
      onLoggedIn(result.user)
    } catch (err) {
      setError(err)
      setUntil(err instanceof ApiError && err.status === 429 && err.retryAfter !== null ? Date.now() + err.retryAfter * 1000 : null)
      setNow(Date.now())
    } finally {
      setBusy(false)
    }
  }

  const rateLimited = error instanceof ApiError && error.status === 429
  const wait = rateLimited && until !== null ? Math.max(0, Math.ceil((until - now) / 1000)) : null
  return (
    <div className="login-screen" data-testid="login-page">
      <div className="login-top">
        <span className="brand">
          <img src="/favicon.svg" alt="" width={24} height={24} />
          AzuraForge
        </span>
        {themeToggle}
      </div>
      <form className="card login-card" onSubmit={submit} noValidate aria-labelledby="login-title">
        <h1 id="login-title">Sign in</h1>
        {expired && (
          <p className="muted" data-testid="login-expired">
            Your session has ended. Sign in again to carry on where you were.
          </p>
        )}
        <div className="field">
          <label htmlFor="login-username">Username</label>
          <input
            id="login-username"
            data-testid="login-username"
            type="text"
            autoComplete="username"
            autoCapitalize="none"
            spellCheck={false}
            autoFocus
            value={username}
            onChange={(e) => setUsername(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="login-password">Password</label>
          <input
            id="login-password"
            data-testid="login-password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </div>
        {error !== null && (
          <div className={`banner ${rateLimited ? 'banner-offline' : 'banner-error'}`} role="alert" data-testid="login-error">
            {loginErrorMessage(error, wait)}
          </div>
        )}
        <button type="submit" className="btn btn-primary" data-testid="login-submit" disabled={busy || waiting}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </div>
  )
}
