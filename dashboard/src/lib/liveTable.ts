// The experiments table kept live by the status stream: rows change in place as status
// events arrive, and the page is refetched only when a change may add or remove rows.
import { useEffect, useRef, useState } from 'react'
import { api } from '../api/client'
import { requireLogin } from '../api/session'
import type { ConnectionState, SocketFactory } from '../api/socket'
import { StatusSocket, statusSocketUrl, type StatusChange } from '../api/statusSocket'
import { isTerminal, type Experiment, type ExperimentPage } from '../api/types'
import { useAuth } from './auth'
import type { ExperimentFilters } from './filters'

/** `row` with `change` applied, or `row` itself when the change is not newer than it. */
export function applyChange(row: Experiment, change: StatusChange): Experiment {
  if (change.seq <= (row.last_event_seq ?? 0)) return row
  const time = change.time ?? null
  return {
    ...row,
    status: change.status,
    error: 'error' in change.payload ? ((change.payload.error as string | null) ?? null) : row.error,
    last_event_seq: change.seq,
    started_at: row.started_at ?? (change.status === 'running' ? time : null),
    finished_at: isTerminal(change.status) ? (row.finished_at ?? time) : row.finished_at,
  }
}

/**
 * A fetched page with the newest changes pushed meanwhile laid over it: a fetch that left the
 * server before a change arrived must not undo it.
 */
export function withChanges(page: ExperimentPage, latest: ReadonlyMap<string, StatusChange>): ExperimentPage {
  let changed = false
  const items = page.items.map((row) => {
    const change = latest.get(row.id)
    const next = change ? applyChange(row, change) : row
    changed ||= next !== row
    return next
  })
  return changed ? { ...page, items } : page
}

/**
 * Whether `change` may add rows to the page or take rows off it, so that only a refetch
 * shows it right. A change to a row on the page is applied in place; it needs a refetch
 * only when the page filters or sorts by status. A change to a row not on the page needs
 * one when it may bring the row in: a new run (queued) on the first page of a table sorted
 * newest first, anywhere in other orders, or a status the table filters for.
 */
export function needsRefetch(change: StatusChange, shown: boolean, filters: ExperimentFilters, firstPage: boolean): boolean {
  if (shown) return filters.status.length > 0 || filters.sort === 'status'
  if (filters.status.length > 0) return filters.status.includes(change.status)
  if (change.status !== 'queued') return false
  const newestFirst = filters.sort === 'created_at' && filters.descending
  return !newestFirst || firstPage
}

export interface StatusStreamHandlers {
  onChange: (change: StatusChange) => void
  onSubscribed: () => void
}

/** Follows the status stream while mounted; answers the connection's state. */
export function useStatusStream(handlers: StatusStreamHandlers, factory?: SocketFactory): ConnectionState | 'idle' {
  const [state, setState] = useState<ConnectionState | 'idle'>('idle')
  const handlersRef = useRef(handlers)
  handlersRef.current = handlers
  // read at connect time: signing in again must not restart the stream
  const mode = useAuth().me?.auth
  const authMode = useRef(mode)
  authMode.current = mode
  useEffect(() => {
    let live = true
    const socket = new StatusSocket({
      url: statusSocketUrl(),
      onChange: (change) => handlersRef.current.onChange(change),
      onSubscribed: () => handlersRef.current.onSubscribed(),
      onState: (s) => live && setState(s),
      factory,
      authToken: async (signal) => (authMode.current === 'none' ? null : (await api.wsToken(signal)).token),
      onUnauthorized: (signal) => requireLogin(signal),
    }).start()
    return () => {
      live = false
      socket.stop()
    }
  }, [factory])
  return state
}
