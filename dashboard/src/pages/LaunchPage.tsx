import { useEffect, useMemo, useState, type FormEvent } from 'react'
import { Link, useNavigate, useParams, useSearchParams } from 'react-router'
import { api, ApiError } from '../api/client'
import type { Experiment, FieldError, PipelineDetail } from '../api/types'
import { ErrorBanner, Spinner } from '../components/common'
import { SchemaFields } from '../components/SchemaForm'
import { usePermissions } from '../lib/auth'
import { parseTags } from '../lib/filters'
import { useAsync } from '../lib/hooks'
import { STUDY_PIPELINE } from '../lib/study'
import {
  applicableFields,
  assignErrors,
  buildConfig,
  buildFields,
  initialValues,
  valuesFromConfig,
  type FormValues,
} from '../lib/schema'

interface Loaded {
  pipeline: PipelineDetail
  source: Experiment | null
}

export function LaunchPage() {
  const { pipelineId = '' } = useParams()
  const [search] = useSearchParams()
  const from = search.get('from')
  const state = useAsync<Loaded>(
    async (signal) => {
      const source = from ? await api.experiment(from, signal) : null
      const pipeline = await api.pipeline(source?.pipeline_id ?? pipelineId, signal)
      return { pipeline, source }
    },
    [pipelineId, from],
  )
  if (state.error) return <ErrorBanner error={state.error} onRetry={state.reload} />
  if (!state.data) return <Spinner />
  return <LaunchForm key={`${pipelineId}:${from}`} {...state.data} />
}

export function LaunchForm({ pipeline, source }: Loaded) {
  const navigate = useNavigate()
  const { canRun, runReason } = usePermissions()
  const fields = useMemo(() => buildFields(pipeline.config_schema), [pipeline])
  const fresh = () => initialValues(fields, pipeline.default_config)
  const [values, setValues] = useState<FormValues>(() =>
    source ? valuesFromConfig(fields, source.config, pipeline.default_config) : fresh(),
  )
  const [name, setName] = useState(source ? `${source.name} (re-run)` : '')
  const [tags, setTags] = useState(source ? source.tags.join(', ') : '')
  const [errors, setErrors] = useState<FieldError[]>([])
  const [failure, setFailure] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)

  useEffect(() => {
    document.title = `Launch ${pipeline.name} · AzuraForge`
  }, [pipeline.name])

  // an error about a field that is hidden now goes to the form-level banner, where it is seen
  const shown = useMemo(() => applicableFields(fields, values), [fields, values])
  const assigned = useMemo(() => {
    const configErrors = errors.filter((e) => e.path !== 'name' && e.path !== 'tags' && !e.path.startsWith('tags.'))
    return assignErrors(shown, configErrors)
  }, [errors, shown])
  const nameErrors = errors.filter((e) => e.path === 'name').map((e) => e.message)
  const tagErrors = errors.filter((e) => e.path === 'tags' || e.path.startsWith('tags.')).map((e) => e.message)

  async function submit(ev: FormEvent) {
    ev.preventDefault()
    if (!canRun) return
    setFailure(null)
    const built = buildConfig(fields, values)
    if (built.errors.length) {
      setErrors(built.errors)
      return
    }
    setBusy(true)
    try {
      const body = {
        pipeline_id: pipeline.id,
        config: built.config,
        name: name.trim() || undefined,
        tags: parseTags(tags),
      }
      const created = source ? await api.rerun(source.id, body) : await api.createExperiment(body)
      navigate(`/experiments/${encodeURIComponent(created.id)}`)
    } catch (err) {
      if (err instanceof ApiError && err.fieldErrors.length) {
        setErrors(err.fieldErrors)
      } else {
        setErrors([])
        setFailure(err)
      }
    } finally {
      setBusy(false)
    }
  }

  const errorCount = Object.keys(assigned.byField).length + assigned.form.length + nameErrors.length + tagErrors.length
  return (
    <div className="page">
      <nav className="crumbs">
        <Link to="/pipelines">Pipelines</Link> / <span>{pipeline.name}</span>
      </nav>
      <h1>
        {source ? 'Re-run' : 'Launch'} {pipeline.name}{' '}
        {pipeline.version && <span className="muted small">v{pipeline.version}</span>}
      </h1>
      {source && (
        <p className="muted">
          Starting from the config of <Link to={`/experiments/${source.id}`}>{source.name}</Link>; change what you like.
        </p>
      )}
      <p className="lead">{pipeline.description}</p>
      {canRun && pipeline.installed !== false && pipeline.id !== STUDY_PIPELINE && !source && (
        <p>
          <Link to={`/studies/new?target=${encodeURIComponent(pipeline.id)}`} data-testid="tune-pipeline">
            Search its settings in a hyperparameter study…
          </Link>
        </p>
      )}
      {pipeline.installed === false && (
        <div className="banner banner-error" role="alert">
          This application is not installed on the server
          {pipeline.package ? ` (pip install ${pipeline.package})` : ''}.
        </div>
      )}
      {!canRun && (
        <div className="banner banner-offline" role="note" data-testid="read-only">
          {runReason} The settings are shown, but you cannot start a run.
        </div>
      )}
      <form onSubmit={submit} noValidate className="card launch-form" data-testid="launch-form">
        <div className="form-grid two">
          <div className={`field ${nameErrors.length ? 'field-invalid' : ''}`}>
            <label htmlFor="exp-name">Name (optional)</label>
            <input id="exp-name" type="text" data-testid="exp-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="generated when empty" />
            {nameErrors.length > 0 && <p className="field-error" data-testid="error-name">{nameErrors.join('; ')}</p>}
          </div>
          <div className={`field ${tagErrors.length ? 'field-invalid' : ''}`}>
            <label htmlFor="exp-tags">Tags (optional)</label>
            <input id="exp-tags" type="text" data-testid="exp-tags" value={tags} onChange={(e) => setTags(e.target.value)} placeholder="comma-separated, e.g. baseline, small" />
            {tagErrors.length > 0 && <p className="field-error" data-testid="error-tags">{tagErrors.join('; ')}</p>}
          </div>
        </div>
        <h2>Configuration</h2>
        <SchemaFields
          fields={fields}
          values={values}
          errors={assigned.byField}
          onChange={(path, v) => setValues((old) => ({ ...old, [path]: v }))}
          onUpload={canRun ? async (file) => (await api.upload(file)).path : undefined}
        />
        {assigned.form.length > 0 && (
          <div className="banner banner-error" role="alert" data-testid="form-errors">
            {assigned.form.map((m) => (
              <div key={m}>{m}</div>
            ))}
          </div>
        )}
        {errorCount > 0 && (
          <p className="field-error" data-testid="error-summary">
            {errorCount === 1 ? '1 field needs attention' : `${errorCount} fields need attention`}
          </p>
        )}
        <ErrorBanner error={failure} testId="submit-error" />
        <div className="actions">
          <button type="submit" className="btn btn-primary" disabled={busy || !canRun} title={runReason ?? undefined} data-testid="submit">
            {busy ? 'Starting…' : source ? 'Start re-run' : 'Start training'}
          </button>
          <button
            type="button"
            className="btn"
            onClick={() => {
              setValues(fresh())
              setErrors([])
            }}
          >
            Reset to defaults
          </button>
        </div>
      </form>
    </div>
  )
}
