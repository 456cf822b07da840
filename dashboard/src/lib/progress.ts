// Progress and ETA from `progress` events.
import type { Progress } from '../api/types'

/** Fraction done in [0, 1], or null when the run has not said how far it is. */
export function progressFraction(p: Progress | null | undefined): number | null {
  if (!p) return null
  const { epoch, total_epochs, step, total_steps } = p
  if (total_epochs && epoch != null) {
    // inside an epoch, step/total_steps refines the fraction
    const within = total_steps && step != null && step < total_steps ? step / total_steps : 1
    const done = (Math.max(0, epoch - 1) + within) / total_epochs
    return Math.min(1, Math.max(0, done))
  }
  if (total_steps && step != null) return Math.min(1, Math.max(0, step / total_steps))
  return null
}

/** Seconds left, extrapolating the elapsed time linearly; null while it cannot be told. */
export function etaSeconds(fraction: number | null, startedAt: number | null, now: number): number | null {
  if (fraction === null || startedAt === null || fraction <= 0.001 || fraction >= 1) return null
  const elapsed = (now - startedAt) / 1000
  if (elapsed <= 0) return null
  return (elapsed * (1 - fraction)) / fraction
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds)) return '—'
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`
  const h = Math.floor(m / 60)
  return `${h}h ${String(m % 60).padStart(2, '0')}m`
}
