import { createContext, useContext, type ReactNode } from 'react'
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
