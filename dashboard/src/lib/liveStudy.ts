// A study kept live for its page: the study's experiment record, the view its `trial` events
// build (the whole backlog from seq 0, so a reload shows every trial, then live), the summary
// laid over it once it has finished, and its trials' own experiment records (queued or
// running, polled while the study runs).
import { useCallback, useEffect, useReducer, useRef, useState } from 'react'
import { api, eventsSocketUrl } from '../api/client'
import { requireLogin } from '../api/session'
import { EventSocket, type ConnectionState, type SocketFactory } from '../api/socket'
import { isTerminal, type EventMessage, type Experiment, type Progress } from '../api/types'
import { useAuth } from './auth'
import { useInterval } from './hooks'
import { applyStudyEvent, EMPTY_STUDY, mergeSummary, studyFromSummary, TRIAL_TAG, type StudyView } from './study'

export interface LiveStudy {
  experiment: Experiment | null
  view: StudyView
  progress: Progress | null
  /** The trials' experiment records by id (their own status: queued, running, ...). */
  runs: Map<string, Experiment>
  connection: ConnectionState | 'idle'
  error: unknown
  reload: () => void
  setExperiment: (e: Experiment) => void
}

export function useLiveStudy(id: string, socketFactory?: SocketFactory): LiveStudy {
  const [experiment, setExperiment] = useState<Experiment | null>(null)
  const [view, setView] = useState<StudyView>(EMPTY_STUDY)
  const [progress, setProgress] = useState<Progress | null>(null)
  const [runs, setRuns] = useState<Map<string, Experiment>>(new Map())
  const [connection, setConnection] = useState<ConnectionState | 'idle'>('idle')
  const [error, setError] = useState<unknown>(null)
  const [tick, reload] = useReducer((n: number) => n + 1, 0)
  const mode = useAuth().me?.auth
  const authMode = useRef(mode)
  authMode.current = mode

  const loadRuns = useCallback(
    async (signal?: AbortSignal) => {
      try {
        const list = await api.childExperiments(id, TRIAL_TAG, signal)
        setRuns(new Map(list.map((e) => [e.id, e])))
      } catch {
        /* the trials' own statuses are extra detail: the events carry the study's view */
      }
    },
    [id],
  )

  useEffect(() => {
    const ctrl = new AbortController()
    const signal = ctrl.signal
    let socket: EventSocket | null = null
    setView(EMPTY_STUDY)
    setExperiment(null)

    // the final record: its summary has every trial's last word, the importances and the best config
    let finalLoaded = false
    async function refreshFinished() {
      if (finalLoaded) return
      finalLoaded = true
      try {
        const exp = await api.experiment(id, signal)
        setExperiment(exp)
        setView((v) => mergeSummary(v, exp.summary))
        await loadRuns(signal)
      } catch (err) {
        if (!signal.aborted) setError(err)
      }
    }

    function onEvent(e: EventMessage) {
      setView((v) => applyStudyEvent(v, e))
      const p = e.payload
      if (e.type === 'progress') setProgress(p as Progress)
      else if (e.type === 'status') {
        const status = String(p.status ?? '')
        setExperiment((old) => (old ? { ...old, status: status as Experiment['status'], error: (p.error as string) ?? old.error } : old))
        if (isTerminal(status)) void refreshFinished()
      }
    }

    async function start() {
      try {
        setError(null)
        const exp = await api.experiment(id, signal)
        if (signal.aborted) return
        setExperiment(exp)
        setProgress(exp.progress ?? null)
        void loadRuns(signal)
        const final = isTerminal(exp.status) ? studyFromSummary(exp.summary, exp.last_event_seq ?? 0) : null
        if (final) {
          setView(final) // finished with a summary: nothing more will come
          return
        }
        // from seq 0: the backlog rebuilds every trial so far, then the stream stays live
        socket = new EventSocket({
          url: (after) => eventsSocketUrl(id, after),
          after: 0,
          onEvent,
          onState: (s) => !signal.aborted && setConnection(s),
          onEnd: () => void refreshFinished(),
          factory: socketFactory,
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
    }
  }, [id, tick, socketFactory, loadRuns])

  const running = experiment !== null && !isTerminal(experiment.status)
  useInterval(() => void loadRuns(), 3000, running)

  return { experiment, view, progress, runs, connection, error, reload, setExperiment }
}
