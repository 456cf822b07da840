// The search-space editor's model: which settings of a target pipeline can be tuned and how
// (from its config JSON Schema), a draft per tuned setting, and the `space` JSON a study's
// config takes (hyper_tuner's ParamSpec: {type: int|float|choice, low, high, log, step,
// choices}). Like the launch form, the browser only reports what it cannot read (text that is
// not a number, broken JSON); ranges and bounds are the API's to judge, with its messages.
import type { FieldError, JsonSchema } from '../api/types'
import { buildFields, type FieldSpec } from './schema'

export type ParamKind = 'int' | 'float' | 'choice'

/** A top-level setting of the target that a study may tune, and the kinds it takes. */
export interface TunableField {
  field: FieldSpec
  kinds: ParamKind[]
  /** The pipeline's default for it (prefills ranges and choices). */
  default: unknown
}

/** What the editor holds for one tuned setting; numbers stay text while the user types. */
export interface ParamDraft {
  name: string
  type: ParamKind
  low: string
  high: string
  log: boolean
  step: string
  /** enum/boolean settings: the offered values that are chosen (by index into `options`). */
  picked: boolean[]
  /** Other settings: the choices as text ("32, 64" or, for lists, a JSON array of values). */
  choicesText: string
}

export interface ParamSpecJson {
  type: ParamKind
  low?: number
  high?: number
  log?: boolean
  step?: number
  choices?: unknown[]
}

/**
 * The settings a study can tune: the target's top-level fields (the tuner sets top-level
 * fields only), nested groups left out. Integer fields take an int range or choices, number
 * fields a float range or choices, everything else a list of choices.
 */
export function tunableFields(schema: JsonSchema, defaults: Record<string, unknown> = {}): TunableField[] {
  return buildFields(schema)
    .filter((f) => f.kind !== 'group')
    .map((field) => ({
      field,
      kinds: field.kind === 'integer' ? ['int', 'choice'] : field.kind === 'number' ? ['float', 'choice'] : ['choice'],
      default: field.name in defaults ? defaults[field.name] : field.default,
    }))
}

/** The values an enum or boolean setting offers as checkboxes; null for free-form choices. */
export function offeredValues(field: FieldSpec): unknown[] | null {
  if (field.kind === 'boolean') return [true, false]
  if (field.kind === 'enum') return [...(field.options ?? []), ...(field.nullable ? [null] : [])]
  return null
}

/** Choices typed as one JSON array (lists and other structured values) rather than "a, b". */
export function choicesAsJson(field: FieldSpec): boolean {
  return field.kind === 'array' || field.kind === 'json'
}

const numberText = (n: number) => String(Number(n.toPrecision(12)))

/**
 * Range ends from the schema's bounds: minimum/maximum as they are, an exclusive minimum of a
 * float (learning_rate > 0) a tenth of the way to the default (a log range cannot start at 0),
 * and a missing end from the default. Wide positive float ranges (two decades or more) start on a
 * log scale.
 */
function rangeDraft(t: TunableField, type: 'int' | 'float'): Pick<ParamDraft, 'low' | 'high' | 'log'> {
  const f = t.field
  const def = typeof t.default === 'number' && Number.isFinite(t.default) ? t.default : null
  let low: number | null = f.minimum ?? null
  let high: number | null = f.maximum ?? null
  if (low === null && f.exclusiveMinimum !== undefined) {
    if (type === 'int') low = Math.floor(f.exclusiveMinimum) + 1
    else low = def !== null && def > f.exclusiveMinimum ? f.exclusiveMinimum + (def - f.exclusiveMinimum) / 10 : f.exclusiveMinimum + 1e-6
  }
  if (high === null && f.exclusiveMaximum !== undefined) {
    high = type === 'int' ? Math.ceil(f.exclusiveMaximum) - 1 : f.exclusiveMaximum - 1e-6
  }
  if (low === null) low = def !== null ? (def > 0 ? def / (type === 'int' ? 2 : 10) : def) : 0
  if (high === null) high = def !== null && def > low ? def * (type === 'int' ? 2 : 10) : low + (type === 'int' ? 10 : 1)
  if (type === 'int') {
    low = Math.ceil(low)
    high = Math.floor(high)
  }
  const log = type === 'float' && low > 0 && high / low >= 100
  return { low: numberText(low), high: numberText(high), log }
}

function choicesDraft(t: TunableField): Pick<ParamDraft, 'picked' | 'choicesText'> {
  const offered = offeredValues(t.field)
  if (offered) return { picked: offered.map(() => true), choicesText: '' }
  const def = t.default
  if (choicesAsJson(t.field)) return { picked: [], choicesText: def === undefined || def === null ? '' : JSON.stringify([def]) }
  return { picked: [], choicesText: def === undefined || def === null ? '' : String(def) }
}

/** A fresh draft for tuning `t` as `type` (its first kind unless given). */
export function newDraft(t: TunableField, type: ParamKind = t.kinds[0]): ParamDraft {
  const base: ParamDraft = { name: t.field.name, type, low: '', high: '', log: false, step: '', picked: [], choicesText: '' }
  return type === 'choice' ? { ...base, ...choicesDraft(t) } : { ...base, ...rangeDraft(t, type) }
}

/** The same setting switched to another kind (a new draft for that kind). */
export function changeKind(t: TunableField, draft: ParamDraft, type: ParamKind): ParamDraft {
  return draft.type === type ? draft : newDraft(t, type)
}

function readNumber(text: string, what: string, whole: boolean): number | string {
  const trimmed = text.trim()
  const n = Number(trimmed)
  if (trimmed === '' || !Number.isFinite(n)) return `${what}: enter a number`
  if (whole && !Number.isInteger(n)) return `${what}: enter a whole number`
  return n
}

const NONE = /^(none|null)$/i

/** "32, 64" -> [32, 64] for the setting's type; a JSON array for lists. */
function readChoices(t: TunableField, draft: ParamDraft): unknown[] | string {
  const f = t.field
  const offered = offeredValues(f)
  if (offered) return offered.filter((_, i) => draft.picked[i])
  const text = draft.choicesText.trim()
  if (text === '') return []
  if (choicesAsJson(f)) {
    try {
      const parsed: unknown = JSON.parse(text)
      return Array.isArray(parsed) ? parsed : 'enter a JSON array of values, e.g. [[16, 32], [32, 64]]'
    } catch {
      return 'enter a JSON array of values, e.g. [[16, 32], [32, 64]]'
    }
  }
  const out: unknown[] = []
  for (const part of text.split(',').map((p) => p.trim())) {
    if (part === '') continue
    if (f.nullable && NONE.test(part)) out.push(null)
    else if (f.kind === 'integer' || f.kind === 'number') {
      const n = readNumber(part, `"${part}"`, f.kind === 'integer')
      if (typeof n === 'string') return n
      out.push(n)
    } else out.push(part)
  }
  return out
}

/** One draft -> its ParamSpec JSON, or the error to show beside it. */
export function paramSpec(t: TunableField, draft: ParamDraft): ParamSpecJson | { error: string } {
  if (draft.type === 'choice') {
    const choices = readChoices(t, draft)
    if (typeof choices === 'string') return { error: choices }
    if (choices.length === 0) return { error: 'choose at least one value' }
    return { type: 'choice', choices }
  }
  const whole = draft.type === 'int'
  const low = readNumber(draft.low, 'low', whole)
  if (typeof low === 'string') return { error: low }
  const high = readNumber(draft.high, 'high', whole)
  if (typeof high === 'string') return { error: high }
  const spec: ParamSpecJson = { type: draft.type, low, high }
  if (draft.log) spec.log = true
  if (draft.step.trim() !== '') {
    const step = readNumber(draft.step, 'step', whole)
    if (typeof step === 'string') return { error: step }
    spec.step = step
  }
  return spec
}

/** The study config's `space` from the drafts (in the order they were added), plus errors on `space.<name>`. */
export function buildSpace(
  tunable: TunableField[],
  drafts: ParamDraft[],
): { space: Record<string, ParamSpecJson>; errors: FieldError[] } {
  const byName = new Map(tunable.map((t) => [t.field.name, t]))
  const space: Record<string, ParamSpecJson> = {}
  const errors: FieldError[] = []
  for (const draft of drafts) {
    const t = byName.get(draft.name)
    if (!t) {
      errors.push({ path: `space.${draft.name}`, message: `the pipeline has no setting ${draft.name}` })
      continue
    }
    const spec = paramSpec(t, draft)
    if ('error' in spec) errors.push({ path: `space.${draft.name}`, message: spec.error })
    else space[draft.name] = spec
  }
  return { space, errors }
}

/** The drafts that describe an existing `space` (a study launched again with edits). */
export function draftsFromSpace(tunable: TunableField[], space: Record<string, unknown>): ParamDraft[] {
  const byName = new Map(tunable.map((t) => [t.field.name, t]))
  const out: ParamDraft[] = []
  for (const [name, raw] of Object.entries(space)) {
    const t = byName.get(name)
    if (!t || raw === null || typeof raw !== 'object') continue
    const spec = raw as ParamSpecJson
    if (spec.type === 'choice' && Array.isArray(spec.choices)) {
      const offered = offeredValues(t.field)
      const draft = newDraft(t, 'choice')
      if (offered) draft.picked = offered.map((v) => spec.choices!.some((c) => JSON.stringify(c) === JSON.stringify(v)))
      else draft.choicesText = choicesAsJson(t.field) ? JSON.stringify(spec.choices) : spec.choices.map((c) => (c === null ? 'none' : String(c))).join(', ')
      out.push(draft)
    } else if ((spec.type === 'int' || spec.type === 'float') && t.kinds.includes(spec.type)) {
      out.push({
        ...newDraft(t, spec.type),
        low: spec.low === undefined ? '' : String(spec.low),
        high: spec.high === undefined ? '' : String(spec.high),
        log: spec.log === true,
        step: spec.step === undefined || spec.step === null ? '' : String(spec.step),
      })
    }
  }
  return out
}

/**
 * Split the API's field errors of a study config by where they belong: `space.<name>...` to
 * that parameter, `space` itself to the editor, `base_config.<path>` to the fixed settings'
 * form (paths relative to it), and the rest (the study's own settings) as they are.
 */
export function routeStudyErrors(errors: FieldError[]): {
  space: Record<string, string[]>
  spaceForm: string[]
  base: FieldError[]
  study: FieldError[]
} {
  const space: Record<string, string[]> = {}
  const spaceForm: string[] = []
  const base: FieldError[] = []
  const study: FieldError[] = []
  for (const e of errors) {
    const message = e.message.replace(/^Value error,\s*/, '')
    const parts = e.path.split('.')
    if (parts[0] === 'space') {
      if (parts.length > 1) (space[parts[1]] ??= []).push(parts.length > 2 ? `${parts.slice(2).join('.')}: ${message}` : message)
      else spaceForm.push(message)
    } else if (parts[0] === 'base_config') base.push({ path: parts.slice(1).join('.'), message })
    else study.push({ path: e.path, message })
  }
  return { space, spaceForm, base, study }
}
