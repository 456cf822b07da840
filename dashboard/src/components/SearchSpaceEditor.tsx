// The search-space editor of the study launch form: add a setting of the target pipeline,
// then say how to search it (an int or float range with log scale or step, or choices).
// The model (what each setting offers, drafts -> space JSON) is lib/searchSpace.ts.
import { changeKind, choicesAsJson, newDraft, offeredValues, type ParamDraft, type ParamKind, type TunableField } from '../lib/searchSpace'
import { describeBounds } from '../lib/schema'
import { formatValue } from '../lib/format'

const KIND_LABEL: Record<ParamKind, string> = {
  int: 'integer range',
  float: 'float range',
  choice: 'choices',
}

export function SearchSpaceEditor({
  tunable,
  drafts,
  errors,
  onChange,
}: {
  tunable: TunableField[]
  drafts: ParamDraft[]
  /** Messages per tuned setting (`space.<name>`). */
  errors: Record<string, string[]>
  onChange: (drafts: ParamDraft[]) => void
}) {
  const tuned = new Set(drafts.map((d) => d.name))
  const addable = tunable.filter((t) => !tuned.has(t.field.name))
  const byName = new Map(tunable.map((t) => [t.field.name, t]))
  const replace = (draft: ParamDraft) => onChange(drafts.map((d) => (d.name === draft.name ? draft : d)))
  return (
    <div className="space-editor" data-testid="space-editor">
      {drafts.length === 0 && <p className="muted" data-testid="space-empty">Add the settings to search; the others stay fixed (below).</p>}
      {drafts.map((d) => {
        const t = byName.get(d.name)
        if (!t) return null
        return <ParamCard key={d.name} tunable={t} draft={d} errors={errors[d.name] ?? []} onChange={replace} onRemove={() => onChange(drafts.filter((x) => x.name !== d.name))} />
      })}
      <div className="space-add">
        <label htmlFor="add-param">Tune a setting</label>
        <select
          id="add-param"
          data-testid="add-param"
          value=""
          disabled={addable.length === 0}
          onChange={(e) => {
            const t = byName.get(e.target.value)
            if (t) onChange([...drafts, newDraft(t)])
          }}
        >
          <option value="">{addable.length ? 'choose a setting…' : 'every setting is tuned'}</option>
          {addable.map((t) => (
            <option key={t.field.name} value={t.field.name}>
              {t.field.title} ({t.field.name})
            </option>
          ))}
        </select>
      </div>
    </div>
  )
}

function ParamCard({
  tunable: t,
  draft,
  errors,
  onChange,
  onRemove,
}: {
  tunable: TunableField
  draft: ParamDraft
  errors: string[]
  onChange: (d: ParamDraft) => void
  onRemove: () => void
}) {
  const name = t.field.name
  const id = (part: string) => `${part}-${name}`
  const bounds = describeBounds(t.field)
  const set = (changes: Partial<ParamDraft>) => onChange({ ...draft, ...changes })
  const offered = offeredValues(t.field)
  const errId = `error-space-${name}`
  const invalid = errors.length > 0 || undefined
  return (
    <div className={`param-card ${errors.length ? 'field-invalid' : ''}`} data-testid={`param-${name}`} role="group" aria-label={`search ${t.field.title}`}>
      <div className="param-head">
        <span className="param-title">{t.field.title}</span>
        <code className="field-key">{name}</code>
        {bounds && <span className="muted small">({bounds})</span>}
        <span className="muted small">default {formatValue(t.default)}</span>
        <span className="spacer" />
        <button type="button" className="btn btn-small" data-testid={id('remove')} onClick={onRemove} aria-label={`stop tuning ${name}`}>
          Remove
        </button>
      </div>
      <div className="param-row">
        {t.kinds.length > 1 && (
          <label>
            search
            <select data-testid={id('kind')} value={draft.type} onChange={(e) => onChange(changeKind(t, draft, e.target.value as ParamKind))}>
              {t.kinds.map((k) => (
                <option key={k} value={k}>
                  {KIND_LABEL[k]}
                </option>
              ))}
            </select>
          </label>
        )}
        {draft.type !== 'choice' ? (
          <>
            <label>
              low
              <input type="number" step="any" data-testid={id('low')} value={draft.low} aria-invalid={invalid} aria-describedby={errors.length ? errId : undefined} onChange={(e) => set({ low: e.target.value })} />
            </label>
            <label>
              high
              <input type="number" step="any" data-testid={id('high')} value={draft.high} aria-invalid={invalid} aria-describedby={errors.length ? errId : undefined} onChange={(e) => set({ high: e.target.value })} />
            </label>
            <label className="inline">
              <input type="checkbox" data-testid={id('log')} checked={draft.log} onChange={(e) => set({ log: e.target.checked })} />
              log scale
            </label>
            <label>
              step (optional)
              <input type="number" step="any" min={0} data-testid={id('step')} value={draft.step} placeholder={draft.type === 'int' ? '1' : 'continuous'} onChange={(e) => set({ step: e.target.value })} />
            </label>
          </>
        ) : offered ? (
          <div className="choice-list" role="group" aria-label={`values of ${name} to try`}>
            {offered.map((v, i) => (
              <label key={i}>
                <input
                  type="checkbox"
                  data-testid={`choice-${name}-${i}`}
                  checked={draft.picked[i] ?? false}
                  onChange={(e) => set({ picked: offered.map((_, k) => (k === i ? e.target.checked : (draft.picked[k] ?? false))) })}
                />
                {v === null ? '(none)' : formatValue(v)}
              </label>
            ))}
          </div>
        ) : (
          <label>
            {choicesAsJson(t.field) ? 'values to try, as a JSON array' : 'values to try, comma-separated'}
            <input
              type="text"
              className="choices-text"
              data-testid={id('choices')}
              value={draft.choicesText}
              aria-invalid={invalid}
              aria-describedby={errors.length ? errId : undefined}
              placeholder={choicesAsJson(t.field) ? '[[16, 32], [32, 64]]' : t.field.kind === 'string' ? 'a, b' : `e.g. 32, 64${t.field.nullable ? ', none' : ''}`}
              onChange={(e) => set({ choicesText: e.target.value })}
            />
          </label>
        )}
      </div>
      {errors.length > 0 && (
        <p className="field-error" id={errId} role="alert" data-testid={errId}>
          {errors.join('; ')}
        </p>
      )}
    </div>
  )
}
