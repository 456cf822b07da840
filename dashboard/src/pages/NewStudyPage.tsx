// Launch a hyperparameter study: the pipeline to tune, what to optimise, a search space edited
// per setting of that pipeline's config schema, the fixed rest of its config (the same form as
// a normal launch), and how to search (hyper_tuner's own settings, from its schema).
import { useEffect, useMemo, useState, type FormEvent } from 'react'
import { Link, useNavigate, useSearchParams } from 'react-router'
import { api, ApiError } from '../api/client'
import type { Experiment, FieldError, PipelineDetail, PipelineSummary } from '../api/types'
import { ErrorBanner, Spinner } from '../components/common'
import { SchemaFields } from '../components/SchemaForm'
import { SearchSpaceEditor } from '../components/SearchSpaceEditor'
import { usePermissions } from '../lib/auth'
import { parseTags } from '../lib/filters'
import { useAsync } from '../lib/hooks'
import { applicableFields, assignErrors, buildConfig, buildFields, initialValues, valuesFromConfig, type FormValues } from '../lib/schema'
import { buildSpace, draftsFromSpace, routeStudyErrors, tunableFields, type ParamDraft } from '../lib/searchSpace'
import { lowerIsBetter } from '../lib/series'
import { STUDY_PIPELINE, type Direction } from '../lib/study'
import './studies.css'

/** The study's own settings that have their own inputs here (the rest come from its schema). */
const OWN_INPUTS = new Set(['target', 'objective', 'direction', 'space', 'base_config'])

/** Objectives offered before the target has a finished run to read metric names from. */
const COMMON_OBJECTIVES = ['val_loss', 'val_accuracy', 'val_mae', 'val_rmse']

interface Loaded {
  targets: PipelineSummary[]
  tuner: PipelineDetail
  source: Experiment | null
}

export function NewStudyPage() {
  const [search] = useSearchParams()
  const from = search.get('from')
  const state = useAsync<Loaded>(
    async (signal) => {
      const [pipelines, tuner, source] = await Promise.all([
        api.pipelines(signal),
        api.pipeline(STUDY_PIPELINE, signal),
        from ? api.experiment(from, signal) : Promise.resolve(null),
      ])
      return { targets: pipelines.filter((p) => p.installed && p.id !== STUDY_PIPELINE), tuner, source }
    },
    [from],
  )
  if (state.error) return <ErrorBanner error={state.error} onRetry={state.reload} />
  if (!state.data) return <Spinner />
  if (state.data.tuner.installed === false) {
    return (
      <div className="page">
        <h1>New study</h1>
        <div className="banner banner-error" role="alert">
          The hyper_tuner application is not installed on the server{state.data.tuner.package ? ` (pip install ${state.data.tuner.package})` : ''}.
        </div>
      </div>
    )
  }
  return <StudyForm key={from ?? ''} {...state.data} initialTarget={search.get('target')} />
}

interface TargetState {
  pipeline: PipelineDetail
  drafts: ParamDraft[]
  values: FormValues
}

function StudyForm({ targets, tuner, source, initialTarget }: Loaded & { initialTarget: string | null }) {
  const navigate = useNavigate()
  const { canRun, runReason } = usePermissions()
  const sourceConfig = source?.pipeline_id === STUDY_PIPELINE ? source.config : null
  const pick = (id: unknown) => (typeof id === 'string' && targets.some((t) => t.id === id) ? id : null)
  const [target, setTarget] = useState<string>(() => pick(sourceConfig?.target) ?? pick(initialTarget) ?? pick(tuner.default_config.target) ?? targets[0]?.id ?? '')
  const [objective, setObjective] = useState(String(sourceConfig?.objective ?? tuner.default_config.objective ?? 'val_loss'))
  const [objectiveTouched, setObjectiveTouched] = useState(sourceConfig !== null)
  const [direction, setDirection] = useState<Direction>(((sourceConfig?.direction ?? tuner.default_config.direction) === 'minimize' ? 'minimize' : 'maximize') as Direction)
  const [directionTouched, setDirectionTouched] = useState(sourceConfig !== null)
  const [name, setName] = useState(source ? `${source.name} (again)` : '')
  const [tags, setTags] = useState(source ? source.tags.join(', ') : 'study')
  const studyFields = useMemo(() => buildFields(tuner.config_schema).filter((f) => !OWN_INPUTS.has(f.name)), [tuner])
  const [studyValues, setStudyValues] = useState<FormValues>(() =>
    sourceConfig ? valuesFromConfig(studyFields, sourceConfig, tuner.default_config) : initialValues(studyFields, tuner.default_config),
  )
  const [errors, setErrors] = useState<FieldError[]>([])
  const [failure, setFailure] = useState<unknown>(null)
  const [busy, setBusy] = useState(false)

  // the target's schema; its editor state starts afresh per target (from the source study for its own target)
  const detail = useAsync((signal) => api.pipeline(target, signal), [target])
  const [ts, setTs] = useState<TargetState | null>(null)
  useEffect(() => {
    const p = detail.data
    if (!p || p.id !== target) return
    const fields = buildFields(p.config_schema)
    const fromSource = sourceConfig && sourceConfig.target === p.id
    const base = fromSource && sourceConfig.base_config && typeof sourceConfig.base_config === 'object' ? (sourceConfig.base_config as Record<string, unknown>) : null
    const space = fromSource && sourceConfig.space && typeof sourceConfig.space === 'object' ? (sourceConfig.space as Record<string, unknown>) : null
    setTs({
      pipeline: p,
      drafts: space ? draftsFromSpace(tunableFields(p.config_schema, p.default_config), space) : [],
      values: base ? valuesFromConfig(fields, base, p.default_config) : initialValues(fields, p.default_config),
    })
    setErrors([])
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [detail.data, target])
  const ready = ts !== null && ts.pipeline.id === target

  // metric names of the target's latest finished run: the objectives it can really be tuned on
  const recent = useAsync(
    async (signal) => {
      const page = await api.experiments({ pipeline: target, status: ['succeeded'], limit: 1, sort: 'created_at', descending: true }, signal)
      const run = page.items[0]
      return run ? (await api.metrics(run.id, 10, signal)).map((s) => s.name) : []
    },
    [target],
  )
  const metricNames = useMemo(() => (recent.data ?? []).filter((n) => n.startsWith('val_')), [recent.data])
  useEffect(() => {
    // an untouched objective follows the target: the first validation metric its runs report
    if (objectiveTouched || metricNames.length === 0 || metricNames.includes(objective)) return
    const preferred = ['val_accuracy', 'val_mae', 'val_loss'].find((n) => metricNames.includes(n)) ?? metricNames[0]
    setObjective(preferred)
    if (!directionTouched) setDirection(lowerIsBetter(preferred) ? 'minimize' : 'maximize')
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [metricNames])
  const suggestions = Array.from(new Set([...metricNames, ...COMMON_OBJECTIVES]))

  const tunable = useMemo(() => (ready ? tunableFields(ts.pipeline.config_schema, ts.pipeline.default_config) : []), [ready, ts])
  const allBaseFields = useMemo(() => (ready ? buildFields(ts.pipeline.config_schema) : []), [ready, ts])
  const tunedNames = useMemo(() => new Set(ts?.drafts.map((d) => d.name) ?? []), [ts])
  const baseFields = useMemo(() => allBaseFields.filter((f) => !tunedNames.has(f.name)), [allBaseFields, tunedNames])

  const routed = useMemo(() => routeStudyErrors(errors), [errors])
  const baseAssigned = useMemo(() => assignErrors(ready ? applicableFields(baseFields, ts.values) : [], routed.base), [routed, baseFields, ready, ts])
  const own = (path: string) => routed.study.filter((e) => e.path === path).map((e) => e.message)
  const studyAssigned = useMemo(
    () => assignErrors(applicableFields(studyFields, studyValues), routed.study.filter((e) => !['target', 'objective', 'direction', 'name', 'tags'].includes(e.path) && !e.path.startsWith('tags.'))),
    [routed, studyFields, studyValues],
  )
  const formErrors = [...routed.spaceForm, ...baseAssigned.form.map((m) => `fixed settings: ${m}`), ...studyAssigned.form]
  const errorCount =
    Object.keys(routed.space).length + Object.keys(baseAssigned.byField).length + Object.keys(studyAssigned.byField).length + formErrors.length +
    ['target', 'objective', 'direction', 'name'].filter((p) => own(p).length > 0).length

  useEffect(() => {
    document.title = 'New study · AzuraForge'
  }, [])

  async function submit(ev: FormEvent) {
    ev.preventDefault()
    if (!canRun || !ready) return
    setFailure(null)
    const space = buildSpace(tunable, ts.drafts)
    const base = buildConfig(baseFields, ts.values)
    const settings = buildConfig(studyFields, studyValues)
    const local = [...space.errors, ...base.errors.map((e) => ({ ...e, path: `base_config.${e.path}` })), ...settings.errors]
    if (local.length) {
      setErrors(local)
      return
    }
    if (Object.keys(space.space).length === 0) {
      setErrors([{ path: 'space', message: 'add at least one setting to tune' }])
      return
    }
    setBusy(true)
    try {
      const created = await api.createExperiment({
        pipeline_id: STUDY_PIPELINE,
        name: name.trim() || undefined,
        tags: parseTags(tags),
        config: { ...settings.config, target, objective: objective.trim(), direction, space: space.space, base_config: base.config },
      })
      navigate(`/studies/${encodeURIComponent(created.id)}`)
    } catch (err) {
      if (err instanceof ApiError && err.fieldErrors.length) setErrors(err.fieldErrors)
      else {
        setErrors([])
        setFailure(err)
      }
    } finally {
      setBusy(false)
    }
  }

  const ownField = (path: string, label: string, input: React.ReactNode, help?: string) => {
    const errs = own(path)
    return (
      <div className={`field ${errs.length ? 'field-invalid' : ''}`}>
        <label htmlFor={`study-${path}`}>
          {label}
          <code className="field-key">{path}</code>
        </label>
        {input}
        {help && <p className="help">{help}</p>}
        {errs.length > 0 && (
          <p className="field-error" role="alert" data-testid={`error-${path}`}>
            {errs.join('; ')}
          </p>
        )}
      </div>
    )
  }

  return (
    <div className="page">
      <nav className="crumbs">
        <Link to="/studies">Studies</Link> / <span>new</span>
      </nav>
      <h1>New hyperparameter study</h1>
      <p className="lead">
        Each trial is a run of the chosen pipeline with settings the sampler picks from the search space; trials run on the workers like any
        experiment.
        {source && (
          <>
            {' '}
            Starting from <Link to={`/studies/${source.id}`}>{source.name}</Link>.
          </>
        )}
      </p>
      {!canRun && (
        <div className="banner banner-offline" role="note" data-testid="read-only">
          {runReason} The form is shown, but you cannot start a study.
        </div>
      )}
      {targets.length === 0 && <div className="banner banner-error">No pipeline to tune is installed.</div>}
      <form onSubmit={submit} noValidate className="card launch-form" data-testid="study-form">
        <div className="form-grid two">
          {ownField('name', 'Name (optional)', <input id="study-name" type="text" data-testid="study-name-input" value={name} onChange={(e) => setName(e.target.value)} placeholder="generated when empty" />)}
          <div className="field">
            <label htmlFor="study-tags">Tags (optional)</label>
            <input id="study-tags" type="text" data-testid="study-tags" value={tags} onChange={(e) => setTags(e.target.value)} placeholder="comma-separated" />
          </div>
        </div>

        <h2>What to tune</h2>
        <div className="form-grid">
          {ownField(
            'target',
            'Pipeline',
            <select id="study-target" data-testid="study-target" value={target} onChange={(e) => setTarget(e.target.value)}>
              {targets.map((t) => (
                <option key={t.id} value={t.id}>
                  {t.name} ({t.id})
                </option>
              ))}
            </select>,
          )}
          {ownField(
            'objective',
            'Objective metric',
            <>
              <input
                id="study-objective"
                type="text"
                list="objective-suggestions"
                data-testid="study-objective"
                value={objective}
                onChange={(e) => {
                  setObjective(e.target.value)
                  setObjectiveTouched(true)
                  if (!directionTouched) setDirection(lowerIsBetter(e.target.value) ? 'minimize' : 'maximize')
                }}
              />
              <datalist id="objective-suggestions">
                {suggestions.map((s) => (
                  <option key={s} value={s} />
                ))}
              </datalist>
            </>,
            metricNames.length ? `Validation metrics of its last run: ${metricNames.join(', ')}.` : 'A validation metric the pipeline reports (never a test_ one).',
          )}
          {ownField(
            'direction',
            'Direction',
            <select
              id="study-direction"
              data-testid="study-direction"
              value={direction}
              onChange={(e) => {
                setDirection(e.target.value as Direction)
                setDirectionTouched(true)
              }}
            >
              <option value="maximize">maximize</option>
              <option value="minimize">minimize</option>
            </select>,
          )}
        </div>

        <h2>Search space</h2>
        {detail.error && <ErrorBanner error={detail.error} onRetry={detail.reload} />}
        {!ready && !detail.error && <Spinner />}
        {ready && (
          <SearchSpaceEditor
            tunable={tunable}
            drafts={ts.drafts}
            errors={routed.space}
            onChange={(drafts) => {
              // an edited parameter's old error no longer applies to what it says now
              const changed = new Set(drafts.filter((d) => !ts.drafts.includes(d)).map((d) => d.name))
              const stale = (e: FieldError) => e.path.startsWith('space.') && changed.has(e.path.split('.')[1])
              if (changed.size) setErrors((old) => old.filter((e) => !stale(e)))
              setTs((old) => (old ? { ...old, drafts } : old))
            }}
          />
        )}

        <h2>Fixed settings</h2>
        <p className="help">The rest of {ready ? ts.pipeline.name : 'the pipeline'}'s config, the same for every trial.</p>
        {ready && (
          <SchemaFields
            idPrefix="base-"
            fields={baseFields}
            values={ts.values}
            errors={baseAssigned.byField}
            onChange={(path, v) => setTs((old) => (old ? { ...old, values: { ...old.values, [path]: v } } : old))}
            onUpload={canRun ? async (file) => (await api.upload(file)).path : undefined}
          />
        )}

        <h2>Search</h2>
        <SchemaFields fields={studyFields} values={studyValues} errors={studyAssigned.byField} onChange={(path, v) => setStudyValues((old) => ({ ...old, [path]: v }))} />

        {formErrors.length > 0 && (
          <div className="banner banner-error" role="alert" data-testid="form-errors">
            {formErrors.map((m) => (
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
          <button type="submit" className="btn btn-primary" disabled={busy || !canRun || !ready} title={runReason ?? undefined} data-testid="submit-study">
            {busy ? 'Starting…' : 'Start study'}
          </button>
        </div>
      </form>
    </div>
  )
}
