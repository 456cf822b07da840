import { useCallback, useEffect, useRef, useState } from 'react'
import { ApiError } from '../api/client'
import { isLoginRequired } from '../api/session'

export interface AsyncState<T> {
  data: T | undefined
  error: ApiError | Error | null
  loading: boolean
  reload: () => void
}

/** Runs `load` when `deps` change (aborting the previous run) and on `reload()`. */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): AsyncState<T> {
  const [data, setData] = useState<T>()
  const [error, setError] = useState<ApiError | Error | null>(null)
  const [loading, setLoading] = useState(true)
  const [tick, setTick] = useState(0)
  const loadRef = useRef(load)
  loadRef.current = load
  useEffect(() => {
    const ctrl = new AbortController()
    setLoading(true)
    loadRef
      .current(ctrl.signal)
      .then((value) => {
        if (ctrl.signal.aborted) return
        setData(value)
        setError(null)
      })
      .catch((err: unknown) => {
        if (ctrl.signal.aborted) return
        setError(err instanceof Error ? err : new Error(String(err)))
      })
      .finally(() => {
        if (!ctrl.signal.aborted) setLoading(false)
      })
    return () => ctrl.abort()
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick])
  const reload = useCallback(() => setTick((t) => t + 1), [])
  return { data, error, loading, reload }
}

/** Calls `fn` every `ms` while the tab is visible, nobody needs to sign in, and `enabled`. */
export function useInterval(fn: () => void, ms: number, enabled = true): void {
  const fnRef = useRef(fn)
  fnRef.current = fn
  useEffect(() => {
    if (!enabled) return
    const id = setInterval(() => {
      // behind the login page, polls would only meet more 401s
      if (isLoginRequired()) return
      if (typeof document === 'undefined' || document.visibilityState !== 'hidden') fnRef.current()
    }, ms)
    return () => clearInterval(id)
  }, [ms, enabled])
}

export type Theme = 'light' | 'dark'

function initialTheme(): Theme {
  const saved = typeof localStorage !== 'undefined' ? localStorage.getItem('af-theme') : null
  if (saved === 'light' || saved === 'dark') return saved
  return typeof window !== 'undefined' && window.matchMedia?.('(prefers-color-scheme: dark)').matches
    ? 'dark'
    : 'light'
}

export function useTheme(): [Theme, () => void] {
  const [theme, setTheme] = useState<Theme>(initialTheme)
  useEffect(() => {
    document.documentElement.dataset.theme = theme
    localStorage.setItem('af-theme', theme)
  }, [theme])
  return [theme, () => setTheme((t) => (t === 'dark' ? 'light' : 'dark'))]
}
