import { useEffect, useState } from 'react'
import { Link } from 'react-router'
import { api } from '../api/client'
import type { ModelInfo } from '../api/types'
import { ErrorBanner, Section, Spinner } from '../components/common'
import { usePermissions } from '../lib/auth'
import { formatDate, formatNumber, formatValue } from '../lib/format'
import { useAsync } from '../lib/hooks'

const EXAMPLE = '{\n  "inputs": []\n}'

export function ModelsPage() {
  const { data, error, reload } = useAsync((signal) => api.models(signal), [])
  const [chosen, setChosen] = useState<ModelInfo | null>(null)
  const [actionError, setActionError] = useState<unknown>(null)
  const perms = usePermissions()
  useEffect(() => {
    document.title = 'Models · AzuraForge'
  }, [])
  return (
    <div className="page">
      <h1>Models</h1>
      <p className="lead">
        Models registered from finished experiments.{' '}
        {perms.canRun ? "Register one from an experiment's page." : perms.runReason}
      </p>
      <ErrorBanner error={error ?? actionError} onRetry={reload} />
      {!data && !error && <Spinner />}
      {data && data.length === 0 && <p className="muted" data-testid="no-models">No models registered yet.</p>}
      {data && data.length > 0 && (
        <div className="table-scroll card">
          <table className="table" data-testid="models-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Pipeline</th>
                <th scope="col">Experiment</th>
                <th scope="col">Metrics</th>
                <th scope="col">Owner</th>
                <th scope="col">Registered</th>
                <th scope="col" />
              </tr>
            </thead>
            <tbody>
              {data.map((m) => {
                const reason = perms.manageReason(m.owner, 'this model', 'delete')
                return (
                  <tr key={m.name} data-testid={`model-${m.name}`}>
                    <td>{m.name}</td>
                    <td>
                      {formatValue(m.pipeline_id)}
                      {m.pipeline_version ? <span className="muted small"> v{String(m.pipeline_version)}</span> : null}
                    </td>
                    <td>{m.experiment_id ? <Link to={`/experiments/${m.experiment_id}`}>{m.experiment_id}</Link> : '—'}</td>
                    <td className="small">
                      {Object.entries(m.metrics ?? {})
                        .filter(([, v]) => typeof v === 'number')
                        .slice(0, 3)
                        .map(([k, v]) => `${k} ${formatNumber(v)}`)
                        .join(' · ') || '—'}
                    </td>
                    <td>{m.owner ?? <span className="muted">—</span>}</td>
                    <td>{formatDate(m.created_at ?? null)}</td>
                    <td>
                      {perms.canRun && (
                        <div className="actions">
                          <button type="button" className="btn btn-small" onClick={() => setChosen(m)} data-testid={`predict-${m.name}`}>
                            Predict…
                          </button>
                          <button
                            type="button"
                            className="btn btn-small btn-danger-outline"
                            data-testid={`delete-model-${m.name}`}
                            disabled={reason !== null}
                            title={reason ?? `Delete the model ${m.name}`}
                            onClick={async () => {
                              if (!window.confirm(`Delete the model ${m.name}? The experiment and its artifacts stay.`)) return
                              setActionError(null)
                              try {
                                await api.deleteModel(m.name)
                                if (chosen?.name === m.name) setChosen(null)
                              } catch (err) {
                                setActionError(err)
                              }
                              reload()
                            }}
                          >
                            Delete
                          </button>
                        </div>
                      )}
                    </td>
                  </tr>
                )
              })}
            </tbody>
          </table>
        </div>
      )}
      {chosen && <PredictPanel key={chosen.name} model={chosen} />}
    </div>
  )
}

function PredictPanel({ model }: { model: ModelInfo }) {
  const [input, setInput] = useState(EXAMPLE)
  const [output, setOutput] = useState<unknown>(null)
  const [error, setError] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)
  return (
    <Section title={`Predict with ${model.name}`} testId="predict-panel">
      <p className="help">
        The request body as JSON: raw inputs in the pipeline's own form (price or weather rows, or grayscale images as
        nested lists of 0-255 pixels).
      </p>
      <label htmlFor="predict-input" className="sr-only">
        Request body
      </label>
      <textarea id="predict-input" data-testid="predict-input" className="mono" rows={8} value={input} onChange={(e) => setInput(e.target.value)} spellCheck={false} />
      <div className="actions">
        <button
          type="button"
          className="btn btn-primary"
          data-testid="predict-submit"
          disabled={busy}
          onClick={async () => {
            setError(null)
            setBusy(true)
            try {
              setOutput(await api.predict(model.name, JSON.parse(input)))
            } catch (err) {
              setError(err)
            } finally {
              setBusy(false)
            }
          }}
        >
          {busy ? 'Predicting…' : 'Predict'}
        </button>
      </div>
      <ErrorBanner error={error} />
      {output !== null && <pre className="logs" data-testid="predict-output">{JSON.stringify(output, null, 2)}</pre>}
    </Section>
  )
}
