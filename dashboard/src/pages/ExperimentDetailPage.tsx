import { useEffect, useMemo, useState } from 'react'
import { Link, useNavigate, useParams } from 'react-router'
import { api, artifactUrl } from '../api/client'
import type { SocketFactory } from '../api/socket'
import { isTerminal, type Artifact, type Experiment } from '../api/types'
import { ConfusionMatrix } from '../components/ConfusionMatrix'
import { usePermissions } from '../lib/auth'
import { ErrorBanner, ProgressBar, Section, Spinner, StatusBadge } from '../components/common'
import { LineChart, PALETTE } from '../components/LineChart'
import { formatBytes, formatDate, formatNumber, formatValue } from '../lib/format'
import { useInterval } from '../lib/hooks'
import { useLiveExperiment, type PredictionSeries } from '../lib/live'
import { etaSeconds, formatDuration, progressFraction } from '../lib/progress'
import { bestIndex } from '../lib/compare'
import { STUDY_PIPELINE, TRIAL_TAG } from '../lib/study'
import { alignSeries, lossNames, otherChartNames, xLabelFor, type MetricStore } from '../lib/series'

export function ExperimentDetailPage({ socketFactory }: { socketFactory?: SocketFactory } = {}) {
  const { experimentId = '' } = useParams()
  const live = useLiveExperiment(experimentId, socketFactory)
  const navigate = useNavigate()
  const [now, setNow] = useState(() => Date.now())
  const [actionError, setActionError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  const perms = usePermissions()
  const exp = live.experiment
  const running = exp ? !isTerminal(exp.status) : false
  useInterval(() => setNow(Date.now()), 1000, running)
  // How long after the server stored the last live point it was drawn (measured after paint).
  const [latency, setLatency] = useState<number | null>(null)
  useEffect(() => {
    if (live.lastLiveAt === null) return
    const id = requestAnimationFrame(() => setLatency(Date.now() - (live.lastLiveAt as number)))
    return () => cancelAnimationFrame(id)
  }, [live.version, live.lastLiveAt])
  useEffect(() => {
    if (exp) document.title = `${exp.name} · AzuraForge`
  }, [exp])

  if (live.error && !exp) return <ErrorBanner error={live.error} onRetry={live.reload} />
  if (!exp) return <Spinner />

  const fraction = exp.status === 'succeeded' ? 1 : progressFraction(live.progress)
  const startedAt = exp.started_at ? Date.parse(exp.started_at) : null
  const eta = running ? etaSeconds(fraction, startedAt, now) : null
  const elapsed =
    startedAt !== null ? ((exp.finished_at ? Date.parse(exp.finished_at) : now) - startedAt) / 1000 : null

  async function act(fn: () => Promise<void>) {
    setBusy(true)
    setActionError(null)
    try {
      await fn()
    } catch (err) {
      setActionError(err)
    } finally {
      setBusy(false)
    }
  }

  const manageable = perms.canManage(exp.owner)
  const manageReason = perms.manageReason(exp.owner, 'this experiment')
  const p = live.progress
  const progressLabel = p?.total_epochs ? `epoch ${p.epoch ?? 0} of ${p.total_epochs}` : p?.total_steps ? `step ${p.step ?? 0} of ${p.total_steps}` : ''

  return (
    <div className="page">
      <nav className="crumbs">
        <Link to="/experiments">Experiments</Link> / <span className="mono">{exp.id}</span>
      </nav>
      <div className="page-head">
        <div>
          <h1 data-testid="experiment-name">{exp.name}</h1>
          <div className="meta">
            <StatusBadge status={exp.status} testId="experiment-status" />
            <span>
              <Link to={`/pipelines/${encodeURIComponent(exp.pipeline_id)}`}>{exp.pipeline_id}</Link>
              {exp.pipeline_version ? ` v${exp.pipeline_version}` : ''}
            </span>
            <span className="muted">
              created {formatDate(exp.created_at)}
              {exp.owner ? (
                <>
                  {' '}
                  by <span data-testid="experiment-owner">{exp.owner}</span>
                </>
              ) : null}
            </span>
            {elapsed !== null && <span className="muted">ran {formatDuration(elapsed)}</span>}
            {exp.tags.map((t) => (
              <Link key={t} className="chip" to={`/experiments?tag=${encodeURIComponent(t)}`}>
                {t}
              </Link>
            ))}
            {running && (
              <span
                className={`conn conn-${live.connection}`}
                data-testid="connection"
                data-latency-ms={latency ?? ''}
                title={latency === null ? 'live event stream' : `last point drawn ${latency} ms after the server stored it`}
              >
                {live.connection === 'open' ? '● live' : live.connection === 'reconnecting' ? '○ reconnecting…' : `○ ${live.connection}`}
              </span>
            )}
          </div>
        </div>
        <div className="actions">
          {running && perms.canRun && (
            <button
              type="button"
              className="btn btn-danger"
              data-testid="cancel"
              disabled={busy || exp.status === 'cancelling' || !manageable}
              title={manageReason ?? undefined}
              aria-describedby={manageReason ? 'manage-reason' : undefined}
              onClick={() =>
                act(async () => {
                  const updated = await api.cancel(exp.id)
                  if (updated.status) live.setExperiment({ ...exp, ...updated, tags: exp.tags })
                })
              }
            >
              {exp.status === 'cancelling' ? 'Cancelling…' : 'Cancel'}
            </button>
          )}
          {perms.canRun && (
            <button type="button" className="btn" data-testid="rerun" onClick={() => navigate(`/pipelines/${encodeURIComponent(exp.pipeline_id)}?from=${encodeURIComponent(exp.id)}`)}>
              Re-run…
            </button>
          )}
          {exp.status === 'succeeded' && perms.canRun && <RegisterModel exp={exp} onError={setActionError} />}
          {perms.canRun && (
            <button
              type="button"
              className="btn btn-danger-outline"
              data-testid="delete"
              disabled={busy || !manageable}
              title={manageReason ?? undefined}
              aria-describedby={manageReason ? 'manage-reason' : undefined}
              onClick={() =>
                window.confirm(`Delete ${exp.name} and its artifacts?`) &&
                act(async () => {
                  await api.deleteExperiment(exp.id)
                  navigate('/experiments')
                })
              }
            >
              Delete
            </button>
          )}
          {perms.canRun && manageReason && (
            <p className="reason" id="manage-reason" data-testid="manage-reason">
              {manageReason}
            </p>
          )}
          {!perms.canRun && (
            <p className="reason" data-testid="read-only">
              {perms.runReason}
            </p>
          )}
        </div>
      </div>
      <ErrorBanner error={actionError ?? live.error} />
      <StudyLink exp={exp} />
      {exp.error && (
        <div className="banner banner-error" role="alert" data-testid="experiment-error">
          <strong>{exp.status === 'cancelled' ? 'Stopped' : 'Failed'}</strong>
          <span>{exp.error}</span>
        </div>
      )}
      {(running || exp.status === 'succeeded') && (
        <div className="card">
          <ProgressBar fraction={fraction} eta={eta} label={progressLabel} />
        </div>
      )}

      <Charts store={live.store} version={live.version} />
      {live.predictions && <PredictionChart data={live.predictions} />}
      {live.confusion && (
        <Section title="Confusion matrix" testId="confusion-section">
          <ConfusionMatrix data={live.confusion} />
        </Section>
      )}
      <Results exp={exp} store={live.store} version={live.version} />
      <Section title="Configuration" testId="config-section">
        <table className="kv" data-testid="config-table">
          <tbody>
            {Object.entries(exp.config).map(([k, v]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td className="mono">{formatValue(v)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title={`Logs (${live.logs.length})`} testId="logs-section">
        <pre className="logs" data-testid="logs" tabIndex={0}>
          {live.logs.map((l, i) => (
            <div key={i} className={`log log-${l.level}`}>
              <span className="log-level">{l.level.toUpperCase().padEnd(7)}</span>
              {l.message}
            </div>
          ))}
          {live.logs.length === 0 && <span className="muted">no log lines yet</span>}
        </pre>
        {exp.traceback && (
          <details>
            <summary>Traceback</summary>
            <pre className="logs">{exp.traceback}</pre>
          </details>
        )}
      </Section>
      <Artifacts exp={exp} artifacts={live.artifacts} />
    </div>
  )
}

/** A study's record points to its study page; a trial's to the study it belongs to. */
function StudyLink({ exp }: { exp: Experiment }) {
  if (exp.pipeline_id === STUDY_PIPELINE) {
    return (
      <div className="banner banner-info" role="note">
        <span>This is a hyperparameter study.</span>
        <Link className="btn btn-small btn-primary" to={`/studies/${encodeURIComponent(exp.id)}`} data-testid="open-study">
          Open the study view
        </Link>
      </div>
    )
  }
  if (exp.parent_id && exp.tags.includes(TRIAL_TAG)) {
    return (
      <div className="banner banner-info" role="note">
        <span>A trial of a hyperparameter study.</span>
        <Link className="btn btn-small" to={`/studies/${encodeURIComponent(exp.parent_id)}`} data-testid="open-parent-study">
          Open the study
        </Link>
      </div>
    )
  }
  return null
}

function Charts({ store, version }: { store: MetricStore; version: number }) {
  const losses = useMemo(() => lossNames(store.series.keys()), [store, version])
  const lossData = useMemo(() => alignSeries(losses.map((n) => store.series.get(n)!)), [store, version, losses])
  const groups = useMemo(() => {
    const names = otherChartNames(store).filter((n) => !losses.includes(n))
    const byBase = new Map<string, string[]>()
    for (const n of names) {
      // val_naive_mae sits with val_mae: a baseline on the same chart as the model
      const base = n.replace(/^(val_|train_|test_)/, '').replace(/^naive_/, '')
      byBase.set(base, [...(byBase.get(base) ?? []), n])
    }
    return [...byBase.entries()]
  }, [store, version, losses])
  return (
    <Section title="Training curves" testId="charts-section">
      <div className="chart-grid">
        <div className="chart-box">
          <h3>Loss</h3>
          <LineChart
            testId="loss-chart"
            data={lossData}
            xLabel={xLabelFor(losses.map((n) => store.series.get(n)))}
            series={losses.map((n, i) => ({ label: n, color: PALETTE[i % PALETTE.length], dash: n.startsWith('val') ? [6, 4] : undefined, points: lossData[0].length < 60 }))}
          />
        </div>
        {groups.map(([base, names]) => (
          <GroupChart key={base} base={base} names={names} store={store} version={version} />
        ))}
      </div>
    </Section>
  )
}

function GroupChart({ base, names, store, version }: { base: string; names: string[]; store: MetricStore; version: number }) {
  const data = useMemo(() => alignSeries(names.map((n) => store.series.get(n)!)), [names, store, version])
  return (
    <div className="chart-box">
      <h3>{base}</h3>
      <LineChart
        testId={`chart-${base}`}
        data={data}
        xLabel={xLabelFor(names.map((n) => store.series.get(n)))}
        height={200}
        series={names.map((n, i) => ({ label: n, color: PALETTE[(i + 2) % PALETTE.length], dash: n.startsWith('val') ? [6, 4] : undefined, points: data[0].length < 60 }))}
      />
    </div>
  )
}

function PredictionChart({ data }: { data: PredictionSeries }) {
  const aligned = useMemo(
    () => [data.x, data.actual, data.predicted, ...(data.naive ? [data.naive] : [])] as [number[], ...(number | null)[][]],
    [data],
  )
  const title = `Predicted vs actual ${data.target ?? ''}${data.split ? ` (${data.split}` : ''}${data.epoch != null ? `, epoch ${data.epoch})` : data.split ? ')' : ''}`
  return (
    <Section title={title} testId="predictions-section">
      <LineChart
        testId="predictions-chart"
        data={aligned}
        time={data.time}
        xLabel={data.time ? 'date' : 'sample'}
        series={[
          { label: 'actual', color: PALETTE[0], width: 2 },
          { label: 'predicted', color: PALETTE[1], width: 2 },
          ...(data.naive ? [{ label: 'naive', color: '#888', dash: [3, 3], width: 1 }] : []),
        ]}
      />
    </Section>
  )
}

function BestTable({ rows, columns, testId }: { rows: [string, Record<string, unknown>][]; columns: string[]; testId: string }) {
  const best = new Map<string, number | null>(
    columns.map((c) => [c, bestIndex(c, rows.map(([, r]) => (typeof r[c] === 'number' ? (r[c] as number) : null)))]),
  )
  return (
    <div className="table-scroll">
      <table className="table compact" data-testid={testId}>
        <thead>
          <tr>
            <th scope="col" />
            {columns.map((c) => (
              <th key={c} scope="col">
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map(([name, r], i) => (
            <tr key={name}>
              <th scope="row">{name}</th>
              {columns.map((c) => (
                <td key={c} className={best.get(c) === i ? 'best' : ''}>
                  {formatNumber(r[c])}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

function Results({ exp, store, version }: { exp: Experiment; store: MetricStore; version: number }) {
  const summary = exp.summary ?? null
  const latest = useMemo(() => {
    const out: [string, number | null][] = []
    for (const s of store.series.values()) out.push([s.name, s.values.length ? s.values[s.values.length - 1] : null])
    return out.sort((a, b) => a[0].localeCompare(b[0]))
  }, [store, version])
  if (!summary && latest.length === 0) return null
  const scalars = summary ? Object.entries(summary).filter(([, v]) => typeof v === 'number' || typeof v === 'boolean') : []
  const baselines = summary && summary.baselines && typeof summary.baselines === 'object' ? (summary.baselines as Record<string, unknown>) : null
  const mainMetric = summary && typeof summary.accuracy === 'number' ? 'accuracy' : null
  const forecasts = summary && summary.test && typeof summary.test === 'object' && Object.values(summary.test).every((v) => v && typeof v === 'object') ? (summary.test as Record<string, Record<string, unknown>>) : null
  return (
    <Section title="Results" testId="results-section">
      {typeof summary?.verdict === 'string' && <p className="verdict">{summary.verdict}</p>}
      {baselines && mainMetric && (
        <>
          <h3>Model vs baselines ({mainMetric})</h3>
          <BestTable
            testId="baselines-table"
            columns={[mainMetric]}
            rows={[['model', { [mainMetric]: summary![mainMetric] }], ...Object.entries(baselines).map(([k, v]) => [k, { [mainMetric]: v }] as [string, Record<string, unknown>])]}
          />
        </>
      )}
      {forecasts && (
        <>
          <h3>Test metrics: model vs baselines</h3>
          <BestTable
            testId="baselines-table"
            columns={Array.from(new Set(Object.values(forecasts).flatMap((m) => Object.keys(m).filter((k) => typeof m[k] === 'number'))))}
            rows={Object.entries(forecasts)}
          />
        </>
      )}
      {scalars.length > 0 && (
        <div className="tiles" data-testid="summary-tiles">
          {scalars.map(([k, v]) => (
            <div key={k} className="tile" data-testid={`summary-${k}`}>
              <div className="tile-label">{k}</div>
              <div className="tile-value">{formatNumber(v)}</div>
            </div>
          ))}
        </div>
      )}
      {latest.length > 0 && (
        <details open={!summary}>
          <summary>Latest metric values</summary>
          <table className="kv" data-testid="latest-metrics">
            <tbody>
              {latest.map(([k, v]) => (
                <tr key={k}>
                  <th scope="row">{k}</th>
                  <td>{formatNumber(v)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      )}
    </Section>
  )
}

const isImage = (a: Artifact) => a.kind === 'image' || /\.(png|jpe?g|svg|gif|webp)$/i.test(a.path)

function Artifacts({ exp, artifacts }: { exp: Experiment; artifacts: Artifact[] }) {
  if (!artifacts.length) return null
  const images = artifacts.filter(isImage)
  return (
    <Section title={`Artifacts (${artifacts.length})`} testId="artifacts-section">
      <ul className="artifact-list">
        {artifacts.map((a) => (
          <li key={a.path}>
            <a href={artifactUrl(exp.id, a.path)} download={a.path.split('/').pop()} data-testid={`artifact-${a.path}`}>
              {a.path}
            </a>{' '}
            <span className="muted small">
              {a.kind} · {formatBytes(a.size)}
            </span>
          </li>
        ))}
      </ul>
      {images.length > 0 && (
        <div className="image-grid">
          {images.map((a) => (
            <figure key={a.path}>
              <img src={artifactUrl(exp.id, a.path)} alt={a.path} loading="lazy" />
              <figcaption>{a.path}</figcaption>
            </figure>
          ))}
        </div>
      )}
    </Section>
  )
}

function RegisterModel({ exp, onError }: { exp: Experiment; onError: (e: unknown) => void }) {
  const [done, setDone] = useState<string | null>(null)
  return done ? (
    <Link className="btn" to="/models" data-testid="registered">
      Registered as {done}
    </Link>
  ) : (
    <button
      type="button"
      className="btn"
      data-testid="register-model"
      onClick={async () => {
        const name = window.prompt('Register the model under the name:', exp.pipeline_id.replace(/_/g, '-'))
        if (!name) return
        try {
          const m = await api.registerModel({ experiment_id: exp.id, name })
          setDone(String(m?.name ?? name))
        } catch (err) {
          onError(err)
        }
      }}
    >
      Register model
    </button>
  )
}
