// One hyperparameter study: its trials live, the optimization history, parameters against the
// objective, importances, and the best configuration with what to do with it.
import { useEffect, useMemo, useState } from 'react'
import { Link, useNavigate, useParams } from 'react-router'
import { api } from '../api/client'
import type { SocketFactory } from '../api/socket'
import { isTerminal, type Experiment } from '../api/types'
import { ErrorBanner, ProgressBar, Section, Spinner, StatusBadge } from '../components/common'
import { LineChart, PALETTE } from '../components/LineChart'
import { ParallelCoords, type PCRow } from '../components/ParallelCoords'
import { usePermissions } from '../lib/auth'
import { formatDate, formatNumber, formatValue } from '../lib/format'
import { useLiveStudy } from '../lib/liveStudy'
import { formatDuration } from '../lib/progress'
import {
  bestConfig,
  countTrials,
  currentBest,
  historyData,
  importanceList,
  paramNames,
  studySettings,
  type Direction,
  type Trial,
} from '../lib/study'
import './studies.css'

export function StudyPage({ socketFactory }: { socketFactory?: SocketFactory } = {}) {
  const { studyId = '' } = useParams()
  const live = useLiveStudy(studyId, socketFactory)
  const perms = usePermissions()
  const [busy, setBusy] = useState(false)
  const [actionError, setActionError] = useState<unknown>(null)
  const exp = live.experiment
  useEffect(() => {
    if (exp) document.title = `${exp.name} · study · AzuraForge`
  }, [exp])

  if (live.error && !exp) return <ErrorBanner error={live.error} onRetry={live.reload} />
  if (!exp) return <Spinner />

  const settings = studySettings(exp.config)
  const running = !isTerminal(exp.status)
  const trials = live.view.trials
  const counts = countTrials(trials)
  const best = currentBest(live.view, settings.direction)
  const params = paramNames(exp.config, trials)
  const total = settings.nTrials ?? live.progress?.total_steps ?? null
  const fraction = exp.status === 'succeeded' ? 1 : total ? Math.min(1, counts.finished / total) : null
  const manageReason = perms.manageReason(exp.owner, 'this study')

  async function cancel(study: Experiment) {
    setBusy(true)
    setActionError(null)
    try {
      const updated = await api.cancel(study.id)
      if (updated.status) live.setExperiment({ ...study, ...updated, config: study.config, tags: study.tags })
    } catch (err) {
      setActionError(err)
    } finally {
      setBusy(false)
    }
  }

  return (
    <div className="page study-page">
      <nav className="crumbs">
        <Link to="/studies">Studies</Link> / <span className="mono">{exp.id}</span>
      </nav>
      <div className="page-head">
        <div>
          <h1 data-testid="study-name">{exp.name}</h1>
          <div className="meta">
            <StatusBadge status={exp.status} testId="study-status" />
            <span data-testid="study-goal">
              {settings.direction} <code>{settings.objective}</code> of{' '}
              <Link to={`/pipelines/${encodeURIComponent(settings.target)}`}>{settings.target}</Link>
            </span>
            <span className="muted">
              created {formatDate(exp.created_at)}
              {exp.owner ? ` by ${exp.owner}` : ''}
            </span>
            {running && (
              <span className={`conn conn-${live.connection}`} data-testid="connection">
                {live.connection === 'open' ? '● live' : live.connection === 'reconnecting' ? '○ reconnecting…' : `○ ${live.connection}`}
              </span>
            )}
          </div>
        </div>
        <div className="actions">
          <Link className="btn" to={`/experiments/${encodeURIComponent(exp.id)}`} data-testid="study-record">
            Logs &amp; artifacts
          </Link>
          {perms.canRun && (
            <Link className="btn" to={`/studies/new?from=${encodeURIComponent(exp.id)}`} data-testid="study-again">
              Start again…
            </Link>
          )}
          {running && perms.canRun && (
            <button
              type="button"
              className="btn btn-danger"
              data-testid="cancel-study"
              disabled={busy || exp.status === 'cancelling' || !perms.canManage(exp.owner)}
              title={manageReason ?? undefined}
              onClick={() => void cancel(exp)}
            >
              {exp.status === 'cancelling' ? 'Cancelling…' : 'Cancel study'}
            </button>
          )}
        </div>
      </div>
      <ErrorBanner error={actionError ?? live.error} />
      {exp.error && (
        <div className="banner banner-error" role="alert" data-testid="study-error">
          <strong>{exp.status === 'cancelled' ? 'Stopped' : 'Failed'}</strong>
          <span>{exp.error}</span>
        </div>
      )}
      <div className="card">
        <ProgressBar fraction={fraction} eta={null} label={total ? `${counts.finished} of ${total} trials finished` : `${counts.finished} trials finished`} />
      </div>
      <div className="tiles" data-testid="study-tiles">
        <div className="tile" data-testid="best-value">
          <div className="tile-label">best {settings.objective}</div>
          <div className="tile-value" data-testid="best-value-number">
            {best?.value != null ? formatNumber(best.value) : '—'}
          </div>
        </div>
        <div className="tile">
          <div className="tile-label">best trial</div>
          <div className="tile-value" data-testid="best-trial">
            {best ? `#${best.number}` : '—'}
          </div>
        </div>
        {(['complete', 'running', 'pruned', 'failed'] as const).map((s) => (
          <div className="tile" key={s}>
            <div className="tile-label">{s}</div>
            <div className="tile-value" data-testid={`count-${s}`}>
              {counts[s]}
            </div>
          </div>
        ))}
      </div>

      <BestConfiguration study={exp} best={best} onError={setActionError} />

      <Section title="Optimization history" testId="history-section">
        <HistoryChart trials={trials} direction={settings.direction} objective={settings.objective} total={total} />
      </Section>

      <Section title={`Trials (${trials.length})`} testId="trials-section">
        <TrialsTable trials={trials} params={params} best={best} runs={live.runs} />
      </Section>

      <div className="study-grid">
        <Section title="Parameters against the objective" testId="parallel-section">
          <Parallel trials={trials} params={params} objective={settings.objective} direction={settings.direction} />
        </Section>
        <Section title="Parameter importances" testId="importances-section">
          <Importances summary={exp.summary} running={running} params={params} />
        </Section>
      </div>
    </div>
  )
}

function HistoryChart({ trials, direction, objective, total }: { trials: Trial[]; direction: Direction; objective: string; total: number | null }) {
  const data = useMemo(() => historyData(trials, direction), [trials, direction])
  const few = data[0].length < 30
  const series = useMemo(
    () => [
      { label: objective, color: PALETTE[0], markersOnly: true },
      { label: 'best so far', color: PALETTE[1], width: 2, points: few },
    ],
    [objective, few],
  )
  // x spans every trial the study will run, so the chart fills from the left as they finish
  const last = Math.max(1, (total ?? 0) - 1, ...trials.map((t) => t.number))
  const xRange = useMemo<[number, number]>(() => [0, last], [last])
  return <LineChart testId="history-chart" data={data} xLabel="trial" yLabel={objective} series={series} xRange={xRange} />
}

const TRIAL_STATE_TITLE: Record<string, string> = {
  running: 'running',
  complete: 'complete',
  pruned: 'stopped early by the pruner',
  failed: 'failed',
}

function TrialsTable({ trials, params, best, runs }: { trials: Trial[]; params: string[]; best: Trial | null; runs: Map<string, Experiment> }) {
  if (trials.length === 0) return <p className="muted" data-testid="no-trials">No trial has started yet.</p>
  return (
    <div className="table-scroll">
      <table className="table compact" data-testid="trials-table">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">state</th>
            <th scope="col">value</th>
            {params.map((p) => (
              <th scope="col" key={p}>
                {p}
              </th>
            ))}
            <th scope="col">epochs</th>
            <th scope="col" title="its run, from its start on a worker to its end">
              duration
            </th>
            <th scope="col">run</th>
          </tr>
        </thead>
        <tbody>
          {trials.map((t) => {
            const run = t.experiment_id ? runs.get(t.experiment_id) : undefined
            const isBest = best !== null && best.number === t.number
            return (
              <tr key={t.number} data-testid={`trial-row-${t.number}`} className={isBest ? 'trial-best' : undefined}>
                <th scope="row">{t.number}</th>
                <td>
                  <span className={`badge trial-${t.state}`} title={t.error ?? TRIAL_STATE_TITLE[t.state]} data-testid={`trial-state-${t.number}`}>
                    {t.state}
                  </span>
                </td>
                <td className={isBest ? 'best' : undefined} data-testid={`trial-value-${t.number}`}>
                  {t.value === null ? '—' : formatNumber(t.value)}
                </td>
                {params.map((p) => (
                  <td key={p} className="mono">
                    {formatValue(t.params[p])}
                  </td>
                ))}
                <td>{t.epochs || '—'}</td>
                <td title={t.queued_s === null ? undefined : `waited ${formatDuration(t.queued_s)} for a worker`}>
                  {t.duration_s === null ? '—' : formatDuration(t.duration_s)}
                </td>
                <td>
                  {t.experiment_id ? (
                    <Link to={`/experiments/${encodeURIComponent(t.experiment_id)}`} data-testid={`trial-link-${t.number}`}>
                      {/* while the study waits on it: has a worker taken it yet? (a finished trial's record may lag) */}
                      {t.state === 'running' && run ? run.status : 'open'}
                    </Link>
                  ) : (
                    <span className="muted" title={t.error ?? undefined}>
                      not started
                    </span>
                  )}
                  {t.error && t.state === 'failed' && <div className="field-error small">{t.error}</div>}
                </td>
              </tr>
            )
          })}
        </tbody>
      </table>
    </div>
  )
}

function Parallel({ trials, params, objective, direction }: { trials: Trial[]; params: string[]; objective: string; direction: Direction }) {
  const rows: PCRow[] = trials
    .filter((t) => t.state === 'complete' && t.value !== null)
    .map((t) => ({ id: `trial-${t.number}`, label: `trial ${t.number}`, values: t.params, metric: t.value }))
  if (rows.length === 0) return <p className="muted">Appears once a trial completes.</p>
  return <ParallelCoords rows={rows} params={params} metric={objective} lowerIsBetter={direction === 'minimize'} colors={PALETTE} />
}

function Importances({ summary, running, params }: { summary: Record<string, unknown> | null | undefined; running: boolean; params: string[] }) {
  const list = importanceList(summary)
  if (list.length === 0) {
    return (
      <p className="muted" data-testid="no-importances">
        {running
          ? 'Computed (fANOVA) when the study finishes.'
          : params.length < 2
            ? 'Importances compare two or more tuned parameters.'
            : 'Not enough complete trials with differing values to estimate them.'}
      </p>
    )
  }
  return (
    <ul className="importance-list" data-testid="importances">
      {list.map(([name, share]) => (
        <li key={name} data-testid={`importance-${name}`}>
          <span className="importance-name mono">{name}</span>
          <span className="importance-bar" aria-hidden="true">
            <span style={{ width: `${Math.max(1, share * 100)}%` }} />
          </span>
          <span className="importance-value">{(share * 100).toFixed(1)}%</span>
        </li>
      ))}
    </ul>
  )
}

function BestConfiguration({ study, best, onError }: { study: Experiment; best: Trial | null; onError: (e: unknown) => void }) {
  const navigate = useNavigate()
  const perms = usePermissions()
  const [registered, setRegistered] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const config = bestConfig(study, best)
  const { target } = studySettings(study.config)
  if (!best || !config) {
    return (
      <Section title="Best configuration" testId="best-section">
        <p className="muted" data-testid="no-best">
          No trial has completed yet.
        </p>
      </Section>
    )
  }
  const bestId = best.experiment_id
  const tuned = new Set(Object.keys(best.params))

  async function rerun() {
    setBusy(true)
    onError(null)
    try {
      // the best trial's own config again (stated in full: the same run on a server without the rerun route)
      const created = await api.rerun(bestId, { pipeline_id: target, config: config!, name: `${study.name}: best (trial ${best!.number})`, tags: ['study-best'] })
      navigate(`/experiments/${encodeURIComponent(created.id)}`)
    } catch (err) {
      onError(err)
    } finally {
      setBusy(false)
    }
  }

  async function register() {
    const name = window.prompt("Register the best trial's model under the name:", `${target.replace(/_/g, '-')}-tuned`)
    if (!name) return
    setBusy(true)
    onError(null)
    try {
      const model = await api.registerModel({ experiment_id: bestId, name })
      setRegistered(String(model?.name ?? name))
    } catch (err) {
      onError(err)
    } finally {
      setBusy(false)
    }
  }

  return (
    <Section
      title={`Best configuration (trial ${best.number})`}
      testId="best-section"
      actions={
        perms.canRun && bestId ? (
          <div className="actions">
            <button type="button" className="btn btn-primary" data-testid="rerun-best" disabled={busy} onClick={() => void rerun()}>
              Re-run best
            </button>
            <Link className="btn" to={`/pipelines/${encodeURIComponent(target)}?from=${encodeURIComponent(bestId)}`} data-testid="edit-best">
              Edit &amp; run…
            </Link>
            {registered ? (
              <Link className="btn" to="/models" data-testid="registered">
                Registered as {registered}
              </Link>
            ) : (
              <button type="button" className="btn" data-testid="register-best" disabled={busy} onClick={() => void register()}>
                Register model
              </button>
            )}
          </div>
        ) : undefined
      }
    >
      <p>
        {best.value !== null && (
          <>
            <strong data-testid="best-config-value">{formatNumber(best.value)}</strong> {studySettings(study.config).objective}
            {' · '}
          </>
        )}
        {bestId && (
          <Link to={`/experiments/${encodeURIComponent(bestId)}`} data-testid="best-trial-link">
            its experiment
          </Link>
        )}
      </p>
      <table className="kv" data-testid="best-config">
        <tbody>
          {/* the tuned settings first: they are what the study found */}
          {Object.entries(config)
            .sort(([a], [b]) => Number(tuned.has(b)) - Number(tuned.has(a)))
            .map(([k, v]) => (
            <tr key={k} className={tuned.has(k) ? 'tuned' : undefined} data-testid={`best-config-${k}`}>
              <th scope="row">{k}</th>
              <td className="mono">
                {formatValue(v)}
                {tuned.has(k) && <span className="chip chip-ok tuned-chip">tuned</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  )
}
