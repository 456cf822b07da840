import { useEffect } from 'react'
import { Link } from 'react-router'
import { api } from '../api/client'
import { ErrorBanner, Spinner } from '../components/common'
import { usePermissions } from '../lib/auth'
import { useAsync } from '../lib/hooks'
import { STUDY_PIPELINE } from '../lib/study'

// studies have a launch form of their own (the search-space editor)
const launchPath = (id: string) => (id === STUDY_PIPELINE ? '/studies/new' : `/pipelines/${encodeURIComponent(id)}`)

export function PipelinesPage() {
  const { data, error, reload } = useAsync((signal) => api.pipelines(signal), [])
  const { canRun, runReason } = usePermissions()
  useEffect(() => {
    document.title = 'Pipelines · AzuraForge'
  }, [])
  return (
    <div className="page">
      <h1>Pipelines</h1>
      <p className="lead">
        {canRun ? 'Pick an application, tune its settings and start a training run.' : `The installed applications. ${runReason} You can look, not launch.`}
      </p>
      <ErrorBanner error={error} onRetry={reload} />
      {!data && !error && <Spinner />}
      {data && data.length === 0 && <p className="muted">No pipelines are known to the server.</p>}
      <div className="cards" data-testid="pipeline-cards">
        {data?.map((p) => (
          <article key={p.id} className={`card pipeline-card ${p.installed ? '' : 'not-installed'}`} data-testid={`pipeline-${p.id}`}>
            <header>
              <h2>{p.name}</h2>
              <div className="chips">
                {p.category && <span className="chip">{p.category}</span>}
                <span className={`chip ${p.installed ? 'chip-ok' : 'chip-warn'}`} data-testid={`installed-${p.id}`}>
                  {p.installed ? `installed${p.version ? ` · v${p.version}` : ''}` : 'not installed'}
                </span>
              </div>
            </header>
            <p>{p.description}</p>
            <footer>
              <code className="muted small">{p.id}</code>
              {p.installed && canRun ? (
                <Link className="btn btn-primary" to={launchPath(p.id)} data-testid={`launch-${p.id}`}>
                  {p.id === STUDY_PIPELINE ? 'New study' : 'Configure & launch'}
                </Link>
              ) : p.installed ? (
                <Link className="btn" to={`/pipelines/${encodeURIComponent(p.id)}`} data-testid={`settings-${p.id}`}>
                  Settings
                </Link>
              ) : (
                <span className="muted small">{p.package ? `pip install ${p.package}` : 'not installed'}</span>
              )}
            </footer>
          </article>
        ))}
      </div>
    </div>
  )
}
