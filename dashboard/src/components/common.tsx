import { createContext, useContext, useState, type ReactNode } from 'react'
import { ApiError } from '../api/client'
import type { Theme } from '../lib/hooks'
import { formatDuration } from '../lib/progress'

export const ThemeContext = createContext<Theme>('light')
export const useThemeName = () => useContext(ThemeContext)

export function StatusBadge({ status, testId }: { status: string; testId?: string }) {
  return (
    <span className={`badge status-${status}`} data-testid={testId ?? 'status'}>
      {status}
    </span>
  )
}

export function ErrorBanner({
  error,
  onRetry,
  testId = 'error',
}: {
  error: unknown
  onRetry?: () => void
  testId?: string
}) {
  if (!error) return null
  const unreachable = error instanceof ApiError && error.unreachable
  const message = error instanceof Error ? error.message : String(error)
  return (
    <div className={`banner ${unreachable ? 'banner-offline' : 'banner-error'}`} role="alert" data-testid={testId}>
      <strong>{unreachable ? 'API unreachable' : 'Error'}</strong>
      <span data-testid={`${testId}-message`}>{message}</span>
      {onRetry && (
        <button type="button" className="btn btn-small" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  )
}

export function ProgressBar({
  fraction,
  eta,
  label,
}: {
  fraction: number | null
  eta: number | null
  label?: string
}) {
  const pct = fraction === null ? null : Math.round(fraction * 1000) / 10
  return (
    <div className="progress-wrap">
      <div
        className={`progress ${pct === null ? 'progress-indeterminate' : ''}`}
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct ?? undefined}
        aria-label="Progress"
        data-testid="progress-bar"
        data-value={pct ?? ''}
      >
        <div className="progress-fill" style={{ width: pct === null ? undefined : `${pct}%` }} />
      </div>
      <div className="progress-text">
        <span data-testid="progress-text">{pct === null ? 'waiting for progress…' : `${pct.toFixed(1)}%`}</span>
        {label && <span className="muted">{label}</span>}
        <span className="muted" data-testid="eta">
          {eta === null ? '' : `ETA ${formatDuration(eta)}`}
        </span>
      </div>
    </div>
  )
}

export function Section({
  title,
  children,
  actions,
  testId,
}: {
  title: string
  children: ReactNode
  actions?: ReactNode
  testId?: string
}) {
  return (
    <section className="card section" data-testid={testId}>
      <div className="section-head">
        <h2>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  )
}

export function Spinner({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="spinner" role="status" data-testid="loading">
      {label}
    </div>
  )
}

/** Copies text to the clipboard (falls back to a selected textarea where the API is missing). */
export async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text)
      return true
    }
  } catch {
    /* denied: try the old way */
  }
  const area = document.createElement('textarea')
  area.value = text
  area.setAttribute('readonly', '')
  area.style.position = 'fixed'
  area.style.opacity = '0'
  document.body.appendChild(area)
  area.select()
  let ok = false
  try {
    ok = document.execCommand('copy')
  } catch {
    ok = false
  }
  area.remove()
  return ok
}

/**
 * A secret the API returns once (a new API token, a generated password): shown with a copy
 * button and a warning until dismissed; after that only the server's hash remains.
 */
export function SecretOnce({
  title,
  secret,
  warning,
  onDone,
  testId = 'secret',
}: {
  title: string
  secret: string
  warning: string
  onDone: () => void
  testId?: string
}) {
  const [copied, setCopied] = useState<boolean | null>(null)
  return (
    <div className="card secret" role="status" data-testid={testId}>
      <strong>{title}</strong>
      <p className="secret-warning" data-testid={`${testId}-warning`}>
        ⚠ {warning}
      </p>
      <div className="input-row">
        <input
          className="mono secret-value"
          readOnly
          value={secret}
          aria-label={title}
          data-testid={`${testId}-value`}
          onFocus={(e) => e.currentTarget.select()}
        />
        <button
          type="button"
          className="btn"
          data-testid={`${testId}-copy`}
          onClick={async () => setCopied(await copyText(secret))}
        >
          {copied ? 'Copied ✓' : 'Copy'}
        </button>
      </div>
      {copied === false && <p className="field-error">Copying failed: select the text and copy it by hand.</p>}
      <div className="actions">
        <button type="button" className="btn btn-primary" data-testid={`${testId}-done`} onClick={onDone}>
          I have saved it
        </button>
      </div>
    </div>
  )
}
