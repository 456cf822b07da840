// Everything the experiment detail page shows, loaded from history and kept live over the
// WebSocket: experiment record, metric store, progress, logs, artifacts, prediction and
// confusion events.
import { useEffect, useReducer, useRef, useState } from 'react'
import { api, artifactUrl, eventsSocketUrl } from '../api/client'
import { requireLogin } from '../api/session'
import { EventSocket, type ConnectionState, type SocketFactory } from '../api/socket'
import { isTerminal, type Artifact, type EventMessage, type Experiment, type LogLine, type Progress } from '../api/types'
import { parseConfusion, type ConfusionData } from '../components/ConfusionMatrix'
import { useAuth } from './auth'
import { applyEvent, storeFromHistory, type MetricStore } from './series'

export interface PredictionSeries {
  label: string
  x: number[]
  time: boolean
  actual: (number | null)[]
  predicted: (number | null)[]
  naive: (number | null)[] | null
  epoch: number | null
  split: string | null
  target: string | null
}

export const MAX_HISTORY_POINTS = 2000
const MAX_LOG_LINES = 2000

/** A `predictions` event payload -> chart series (dates as time when they all parse). */
export function parsePredictions(payload: Record<string, unknown>): PredictionSeries | null {
  const nums = (v: unknown): (number | null)[] | null =>
    Array.isArray(v) ? v.map((x) => (typeof x === 'number' && Number.isFinite(x) ? x : null)) : null
  const actual = nums(payload.actual ?? payload.y_true)
  const predicted = nums(payload.predicted ?? payload.y_pred)
  if (!actual || !predicted) return null
  const n = Math.min(actual.length, predicted.length)
  const dates = Array.isArray(payload.dates) ? payload.dates : Array.isArray(payload.x) ? payload.x : null
  let x = Array.from({ length: n }, (_, i) => i)
  let time = false
  if (dates && dates.length >= n) {
    const parsed = dates.slice(0, n).map((d) => (typeof d === 'number' ? d : Date.parse(String(d)) / 1000))
    if (parsed.every((v) => Number.isFinite(v))) {
      x = parsed
      time = typeof dates[0] !== 'number'
    }
  }
  const naive = nums(payload.naive)
  return {
    label: String(payload.target ?? 'value'),
    x,
    time,
    actual: actual.slice(0, n),
    predicted: predicted.slice(0, n),
    naive: naive ? naive.slice(0, n) : null,
    epoch: typeof payload.epoch === 'number' ? payload.epoch : null,
    split: typeof payload.split === 'string' ? payload.split : null,
    target: typeof payload.target === 'string' ? payload.target : null,
  }
}

/** predictions.csv (date,split,actual,predicted,naive,...) -> the test split as series. */
export function predictionsFromCsv(text: string, split = 'test'): PredictionSeries | null {
  const lines = text.trim().split(/\r?\n/)
  if (lines.length < 2) return null
  const head = lines[0].split(',')
  const col = (name: string) => head.indexOf(name)
  if (col('actual') < 0 || col('predicted') < 0) return null
  const rows = lines.slice(1).map((l) => l.split(','))
  const chosen = col('split') >= 0 && rows.some((r) => r[col('split')] === split) ? rows.filter((r) => r[col('split')] === split) : rows
  const num = (r: string[], c: number) => {
    const v = Number(r[c])
    return c >= 0 && r[c] !== '' && Number.isFinite(v) ? v : null
  }
  return parsePredictions({
    dates: col('date') >= 0 ? chosen.map((r) => r[col('date')]) : undefined,
    actual: chosen.map((r) => num(r, col('actual'))),
    predicted: chosen.map((r) => num(r, col('predicted'))),
    naive: col('naive') >= 0 ? chosen.map((r) => num(r, col('naive'))) : undefined,
    split,
  })
}

export interface LiveExperiment {
  experiment: Experiment | null
  store: MetricStore
  version: number
  progress: Progress | null
  logs: LogLine[]
  artifacts: Artifact[]
  predictions: PredictionSeries | null
  confusion: ConfusionData | null
  report: Record<string, unknown> | null
  connection: ConnectionState | 'idle'
  error: unknown
  /** Server time (ms) of the last live metrics event applied, for the latency readout. */
  lastLiveAt: number | null
  reload: () => void
  setExperiment: (e: Experiment) => void
}

export function useLiveExperiment(id: string, socketFactory?: SocketFactory): LiveExperiment {
  const [experiment, setExperiment] = useState<Experiment | null>(null)
  const storeRef = useRef<MetricStore>(storeFromHistory([]))
  const [version, bump] = useReducer((n: number) => n + 1, 0)
  const [progress, setProgress] = useState<Progress | null>(null)
  const [logs, setLogs] = useState<LogLine[]>([])
  const [artifacts, setArtifacts] = useState<Artifact[]>([])
  const [predictions, setPredictions] = useState<PredictionSeries | null>(null)
  const [confusion, setConfusion] = useState<ConfusionData | null>(null)
  const [report, setReport] = useState<Record<string, unknown> | null>(null)
  const [connection, setConnection] = useState<ConnectionState | 'idle'>('idle')
  const [error, setError] = useState<unknown>(null)
  const [lastLiveAt, setLastLiveAt] = useState<number | null>(null)
  const [tick, reload] = useReducer((n: number) => n + 1, 0)
  // read at connect time: signing in again (same user) must not restart the page's stream
  const mode = useAuth().me?.auth
  const authMode = useRef(mode)
  authMode.current = mode

  useEffect(() => {
    const ctrl = new AbortController()
    const signal = ctrl.signal
    let socket: EventSocket | null = null
    let frame = 0
    const scheduleBump = () => {
      if (frame) return
      const raf = typeof requestAnimationFrame !== 'undefined' ? requestAnimationFrame : (fn: () => void) => setTimeout(fn, 16) as unknown as number
      frame = raf(() => {
        frame = 0
        if (!signal.aborted) bump()
      })
    }
    // Log lines fetched over REST may come again live (written between the two reads).
    const recentLogKeys = new Map<string, number>()

    async function loadFinal(exp: Experiment, list: Artifact[]) {
      const has = (p: string) => list.some((a) => a.path === p)
      if (has('confusion_matrix.json')) {
        try {
          const r = await fetch(artifactUrl(exp.id, 'confusion_matrix.json'), { signal, credentials: 'same-origin' })
          if (r.ok) {
            const parsed = parseConfusion(await r.json())
            setConfusion((old) => old ?? parsed)
          }
        } catch {
          /* optional view */
        }
      }
      if (has('predictions.csv')) {
        try {
          const r = await fetch(artifactUrl(exp.id, 'predictions.csv'), { signal, credentials: 'same-origin' })
          if (r.ok) {
            const parsed = predictionsFromCsv(await r.text())
            if (parsed) setPredictions(parsed)
          }
        } catch {
          /* optional view */
        }
      }
    }

    let finalLoaded = false
    async function refreshFinished() {
      if (finalLoaded) return
      finalLoaded = true
      try {
        const [exp, metrics, list] = await Promise.all([
          api.experiment(id, signal),
          api.metrics(id, MAX_HISTORY_POINTS, signal),
          api.artifacts(id, signal).catch(() => [] as Artifact[]),
        ])
        const store = storeFromHistory(metrics, Math.max(storeRef.current.lastSeq, exp.last_event_seq ?? 0))
        storeRef.current = store
        setExperiment(exp)
        setArtifacts(list)
        bump()
        await loadFinal(exp, list)
      } catch (err) {
        if (!signal.aborted) setError(err)
      }
    }

    function onEvent(e: EventMessage) {
      const store = storeRef.current
      if (applyEvent(store, e)) {
        const t = e.time ? Date.parse(e.time) : NaN
        setLastLiveAt(Number.isFinite(t) ? t : null)
        scheduleBump()
        return
      }
      const p = e.payload
      switch (e.type) {
        case 'progress':
          setProgress(p as Progress)
          break
        case 'log': {
          const key = `${p.level}|${p.message}`
          const left = recentLogKeys.get(key)
          if (left) {
            recentLogKeys.set(key, left - 1)
            break
          }
          setLogs((old) => [...old, { level: String(p.level ?? 'info'), message: String(p.message ?? ''), time: e.time }].slice(-MAX_LOG_LINES))
          break
        }
        case 'artifact':
          setArtifacts((old) => [...old.filter((a) => a.path !== p.path), p as unknown as Artifact])
          break
        case 'predictions':
        case 'prediction': {
          const parsed = parsePredictions(p)
          if (parsed) setPredictions(parsed)
          break
        }
        case 'confusion_matrix':
          setConfusion(parseConfusion(p))
          break
        case 'classification_report':
          setReport(p)
          break
        case 'status': {
          const status = String(p.status ?? '')
          setExperiment((old) =>
            old
              ? {
                  ...old,
                  status: status as Experiment['status'],
                  error: (p.error as string) ?? old.error,
                  // the run started after the page loaded: the ETA needs its start time
                  started_at: old.started_at ?? (status === 'running' ? (e.time ?? new Date().toISOString()) : null),
                }
              : old,
          )
          if (isTerminal(status)) void refreshFinished()
          break
        }
        default:
      }
    }

    async function start() {
      try {
        setError(null)
        const exp = await api.experiment(id, signal)
        const seq0 = exp.last_event_seq ?? 0
        const [metrics, logLines, list] = await Promise.all([
          api.metrics(id, MAX_HISTORY_POINTS, signal),
          api.logs(id, signal).catch(() => [] as LogLine[]),
          api.artifacts(id, signal).catch(() => [] as Artifact[]),
        ])
        if (signal.aborted) return
        storeRef.current = storeFromHistory(metrics, seq0)
        setExperiment(exp)
        setProgress(exp.progress ?? null)
        setLogs(logLines.slice(-MAX_LOG_LINES))
        for (const l of logLines.slice(-50)) {
          const key = `${l.level}|${l.message}`
          recentLogKeys.set(key, (recentLogKeys.get(key) ?? 0) + 1)
        }
        setArtifacts(list)
        bump()
        if (isTerminal(exp.status)) {
          await loadFinal(exp, list)
          return
        }
        socket = new EventSocket({
          url: (after) => eventsSocketUrl(id, after),
          after: seq0,
          onEvent,
          onState: (s) => !signal.aborted && setConnection(s),
          onEnd: () => void refreshFinished(),
          factory: socketFactory,
          // a fresh token per (re)connect, as a subprotocol; none when auth is off
          authToken: async (sig) => (authMode.current === 'none' ? null : (await api.wsToken(sig)).token),
          onUnauthorized: (sig) => requireLogin(sig),
        }).start()
      } catch (err) {
        if (!signal.aborted) setError(err)
      }
    }
    void start()
    return () => {
      ctrl.abort()
      socket?.stop()
      if (frame && typeof cancelAnimationFrame !== 'undefined') cancelAnimationFrame(frame)
    }
  }, [id, tick, socketFactory])

  return {
    experiment,
    store: storeRef.current,
    version,
    progress,
    logs,
    artifacts,
    predictions,
    confusion,
    report,
    connection,
    error,
    lastLiveAt,
    reload,
    setExperiment,
  }
}
