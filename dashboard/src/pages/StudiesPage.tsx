// The hyperparameter studies (experiments of the hyper_tuner pipeline), newest first.
import { useEffect, useState } from 'react'
import { Link } from 'react-router'
import { api } from '../api/client'
import { isTerminal } from '../api/types'
import { ErrorBanner, Spinner, StatusBadge } from '../components/common'
import { usePermissions } from '../lib/auth'
import { formatDate, formatNumber } from '../lib/format'
import { useAsync, useInterval } from '../lib/hooks'
import { STUDY_PIPELINE } from '../lib/study'

export function StudiesPage() {
  const [tick, setTick] = useState(0)
  const { data, error, reload } = useAsync(
    (signal) => api.experiments({ pipeline: STUDY_PIPELINE, limit: 100, sort: 'created_at', descending: true }, signal),
    [tick],
  )
  const { canRun, runReason } = usePermissions()
  const anyRunning = data?.items.some((e) => !isTerminal(e.status)) ?? false
  useInterval(() => setTick((t) => t + 1), 5000, anyRunning)
  useEffect(() => {
    document.title = 'Studies · AzuraForge'
  }, [])
  return (
    <div className="page">
      <div className="page-head">
        <div>
          <h1>Hyperparameter studies</h1>
          <p className="lead">Searches over a pipeline's settings; each trial is an experiment of its own.</p>
        </div>
        <div className="actions">
          {canRun ? (
            <Link className="btn btn-primary" to="/studies/new" data-testid="new-study">
              New study
            </Link>
          ) : (
            <p className="reason">{runReason}</p>
          )}
        </div>
      </div>
      <ErrorBanner error={error} onRetry={reload} />
      {!data && !error && <Spinner />}
      {data && data.items.length === 0 && (
        <p className="muted" data-testid="no-studies">
          No study yet.
        </p>
      )}
      {data && data.items.length > 0 && (
        <div className="card table-scroll">
          <table className="table" data-testid="studies-table">
            <thead>
              <tr>
                <th scope="col">name</th>
                <th scope="col">status</th>
                <th scope="col">pipeline</th>
                <th scope="col">objective</th>
                <th scope="col">best</th>
                <th scope="col">trials</th>
                <th scope="col">created</th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((e) => {
                const s = e.summary ?? {}
                return (
                  <tr key={e.id} data-testid={`study-row-${e.id}`}>
                    <td>
                      <Link to={`/studies/${encodeURIComponent(e.id)}`}>{e.name}</Link>
                    </td>
                    <td>
                      <StatusBadge status={e.status} />
                    </td>
                    <td>{typeof s.target === 'string' ? s.target : '—'}</td>
                    <td>{typeof s.objective === 'string' ? `${s.direction === 'minimize' ? '↓' : '↑'} ${s.objective}` : '—'}</td>
                    <td>{formatNumber(s.best_value)}</td>
                    <td>{formatNumber(s.n_trials)}</td>
                    <td className="muted nowrap">{formatDate(e.created_at)}</td>
                  </tr>
                )
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  )
}
