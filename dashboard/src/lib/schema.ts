// The form generator's model: a pipeline's config JSON Schema (as pydantic v2 writes it)
// turned into a tree of fields, the form's initial values, and back into a config object.
import type { FieldError, JsonSchema } from '../api/types'

/**
 * The schema extension a property uses to say it matters only for some values of its sibling
 * properties: `"x-applies-when": {"dataset": ["csv"]}` (azuraforge_pipeline.applies_when;
 * docs/writing-a-pipeline.md). The form hides such a field while it does not apply and leaves
 * it out of the config, so the pipeline gets its default.
 */
export const APPLIES_WHEN = 'x-applies-when'

export type FieldKind =
  | 'number'
  | 'integer'
  | 'string'
  | 'boolean'
  | 'enum'
  | 'array'
  | 'group'
  | 'json'

export interface FieldSpec {
  name: string
  /** Dotted path from the config root, e.g. "optimizer.lr". */
  path: string
  kind: FieldKind
  title: string
  description?: string
  required: boolean
  /** `X | None` in pydantic: the field may be left empty (sent as null). */
  nullable: boolean
  default?: unknown
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  options?: unknown[]
  /** For arrays: the kind of each item. */
  itemKind?: 'number' | 'integer' | 'string'
  minItems?: number
  maxItems?: number
  /** A path to user data on the server: the form offers a file upload next to it. */
  isPath?: boolean
  format?: string
  children?: FieldSpec[]
  /** From `x-applies-when`: sibling name -> the values for which this field applies (all must hold). */
  appliesWhen?: Record<string, unknown[]>
}

/** Form state: one entry per leaf path. Numbers stay text while the user types. */
export type FormValues = Record<string, string | boolean>

function mergeNodes(base: JsonSchema, extra: JsonSchema): JsonSchema {
  // the outer node's title/description/default win over the referenced definition's
  const merged: JsonSchema = { ...extra, ...base }
  delete merged.$ref
  delete merged.allOf
  return merged
}

/** Follow $ref and fold allOf, so the node says everything about itself. */
export function resolveNode(node: JsonSchema, root: JsonSchema, depth = 0): JsonSchema {
  if (depth > 32) return node
  let current = node
  if (current.$ref) {
    const target = lookupRef(current.$ref, root)
    current = mergeNodes(current, resolveNode(target, root, depth + 1))
  }
  if (current.allOf && current.allOf.length > 0) {
    const parts = current.allOf.map((part) => resolveNode(part, root, depth + 1))
    const base = { ...current }
    delete base.allOf
    current = parts.reduce<JsonSchema>((acc, part) => mergeNodes(acc, part), base)
  }
  return current
}

function lookupRef(ref: string, root: JsonSchema): JsonSchema {
  if (!ref.startsWith('#/')) return {}
  let node: unknown = root
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    node = node && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined
  }
  return (node as JsonSchema) ?? {}
}

// Where user data goes: csv_path, data_path, *_file (cache folders and the like are not uploads).
const PATH_NAME = /(^|_)(path|file|csv)$/i
const PATH_FORMATS = new Set(['path', 'file-path', 'directory-path', 'file', 'binary'])

function isNullType(n: JsonSchema): boolean {
  return n.type === 'null' || (Array.isArray(n.type) && n.type.length === 1 && n.type[0] === 'null')
}

function constOptions(variants: JsonSchema[]): unknown[] | null {
  if (variants.length === 0) return null
  const out: unknown[] = []
  for (const v of variants) {
    if ('const' in v) out.push(v.const)
    else if (Array.isArray(v.enum)) out.push(...v.enum)
    else return null
  }
  return out
}

/** The well-formed part of an `x-applies-when` value (sibling -> non-empty list), if any. */
function readConditions(raw: unknown): Record<string, unknown[]> | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined
  const entries = Object.entries(raw).filter(([, v]) => Array.isArray(v) && v.length > 0)
  return entries.length ? (Object.fromEntries(entries) as Record<string, unknown[]>) : undefined
}

function humanise(name: string): string {
  const s = name.replace(/_/g, ' ').trim()
  return s.charAt(0).toUpperCase() + s.slice(1)
}

/** One property -> its field spec (recursing into nested models). */
export function buildField(
  name: string,
  path: string,
  raw: JsonSchema,
  root: JsonSchema,
  required: boolean,
): FieldSpec {
  let node = resolveNode(raw, root)
  let nullable = false
  const variants = node.anyOf ?? node.oneOf
  if (variants && variants.length > 0) {
    const resolved = variants.map((v) => resolveNode(v, root))
    const nonNull = resolved.filter((v) => !isNullType(v))
    nullable = nonNull.length < resolved.length
    const outer = { ...node }
    delete outer.anyOf
    delete outer.oneOf
    const consts = constOptions(nonNull)
    if (nonNull.length === 1) node = mergeNodes(outer, nonNull[0])
    else if (consts) node = { ...outer, enum: consts }
    else node = { ...outer, type: nonNull.length ? undefined : 'null' }
  }
  if (Array.isArray(node.type)) {
    const types = node.type.filter((t) => t !== 'null')
    nullable = nullable || types.length < node.type.length
    node = { ...node, type: types.length === 1 ? types[0] : undefined }
  }
  const spec: FieldSpec = {
    name,
    path,
    kind: 'json',
    title: node.title ?? humanise(name),
    description: node.description,
    required,
    nullable,
    default: node.default,
    format: node.format,
  }
  const conditions = readConditions(node[APPLIES_WHEN])
  if (conditions) spec.appliesWhen = conditions
  if (node.enum || 'const' in node) {
    spec.kind = 'enum'
    spec.options = node.enum ?? [node.const]
    return spec
  }
  switch (node.type) {
    case 'integer':
    case 'number':
      spec.kind = node.type
      spec.minimum = node.minimum
      spec.maximum = node.maximum
      spec.exclusiveMinimum = node.exclusiveMinimum
      spec.exclusiveMaximum = node.exclusiveMaximum
      return spec
    case 'boolean':
      spec.kind = 'boolean'
      return spec
    case 'string':
      spec.kind = 'string'
      spec.isPath = PATH_NAME.test(name) || (node.format !== undefined && PATH_FORMATS.has(node.format))
      return spec
    case 'array': {
      const items = node.items ? resolveNode(node.items, root) : {}
      const t = items.type
      if (t === 'number' || t === 'integer' || t === 'string') {
        spec.kind = 'array'
        spec.itemKind = t
        spec.minItems = node.minItems
        spec.maxItems = node.maxItems
      }
      return spec
    }
    case 'object':
      if (node.properties) {
        spec.kind = 'group'
        spec.children = buildFields(node, root, path)
      }
      return spec
    default:
      return spec
  }
}

/**
 * Schema order, except that a field with `x-applies-when` follows the (last) sibling its
 * condition names, so what a choice reveals appears next to it: a base config's `csv_path`
 * beside the app's `dataset`, not at the other end of the form.
 */
function besideControllers(fields: FieldSpec[]): FieldSpec[] {
  const position = new Map(fields.map((f, i) => [f.name, i]))
  const after = new Map<string, FieldSpec[]>()
  const anchored = new Set<FieldSpec>()
  for (const f of fields) {
    const controllers = Object.keys(f.appliesWhen ?? {}).filter((n) => n !== f.name && position.has(n))
    if (!controllers.length) continue
    const anchor = controllers.reduce((a, b) => (position.get(a)! > position.get(b)! ? a : b))
    after.set(anchor, [...(after.get(anchor) ?? []), f])
    anchored.add(f)
  }
  const out: FieldSpec[] = []
  const placed = new Set<FieldSpec>()
  const place = (f: FieldSpec) => {
    if (placed.has(f)) return
    placed.add(f)
    out.push(f)
    for (const dependent of after.get(f.name) ?? []) place(dependent)
  }
  for (const f of fields) if (!anchored.has(f)) place(f)
  for (const f of fields) place(f) // fields whose conditions name each other in a circle
  return out
}

/** The fields of an object schema (the config root or a nested model), in schema order
 * (conditional fields beside the fields they depend on). */
export function buildFields(schema: JsonSchema, root: JsonSchema = schema, prefix = ''): FieldSpec[] {
  const node = resolveNode(schema, root)
  const required = new Set(node.required ?? [])
  return besideControllers(
    Object.entries(node.properties ?? {}).map(([name, prop]) =>
      buildField(name, prefix ? `${prefix}.${name}` : name, prop, root, required.has(name)),
    ),
  )
}

/** Every leaf field (groups flattened). */
export function leaves(fields: FieldSpec[]): FieldSpec[] {
  return fields.flatMap((f) => (f.kind === 'group' ? leaves(f.children ?? []) : [f]))
}

function getPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<string, unknown>)[key]
  }
  return cur
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.')
  let cur = obj
  for (const key of keys.slice(0, -1)) {
    if (cur[key] === null || typeof cur[key] !== 'object') cur[key] = {}
    cur = cur[key] as Record<string, unknown>
  }
  cur[keys[keys.length - 1]] = value
}

/** The text/checkbox state for one value. */
export function toFormValue(field: FieldSpec, value: unknown): string | boolean {
  if (field.kind === 'boolean') return value === true
  if (value === undefined || value === null) return ''
  switch (field.kind) {
    case 'enum': {
      const i = (field.options ?? []).findIndex((o) => o === value)
      return i >= 0 ? String(i) : ''
    }
    case 'array':
      return Array.isArray(value) ? value.join(', ') : String(value)
    case 'json':
      return typeof value === 'string' ? value : JSON.stringify(value)
    default:
      return String(value)
  }
}

/** Initial form state: the pipeline's defaults, else each field's schema default. */
export function initialValues(
  fields: FieldSpec[],
  defaults: Record<string, unknown> = {},
): FormValues {
  const values: FormValues = {}
  for (const f of leaves(fields)) {
    const fromDefaults = getPath(defaults, f.path)
    values[f.path] = toFormValue(f, fromDefaults !== undefined ? fromDefaults : f.default)
  }
  return values
}

/** Form state for an existing config (re-run with edits): the config wins over defaults. */
export function valuesFromConfig(
  fields: FieldSpec[],
  config: Record<string, unknown>,
  defaults: Record<string, unknown> = {},
): FormValues {
  const values = initialValues(fields, defaults)
  for (const f of leaves(fields)) {
    const v = getPath(config, f.path)
    if (v !== undefined) values[f.path] = toFormValue(f, v)
  }
  return values
}

function parseNumber(text: string, integer: boolean): number | string {
  const n = Number(text.trim())
  if (text.trim() === '' || !Number.isFinite(n)) return 'enter a number'
  if (integer && !Number.isInteger(n)) return 'enter a whole number'
  return n
}

/** One leaf's value for the config: a value, an error, or nothing (left out of the config). */
type Parsed = { value: unknown } | { error: string } | null

function parseLeaf(f: FieldSpec, raw: string | boolean | undefined): Parsed {
  if (f.kind === 'boolean') return { value: raw === true }
  const text = typeof raw === 'string' ? raw : ''
  if (text.trim() === '') {
    if (f.nullable) return { value: null }
    if (f.kind === 'string' && f.required) return { value: '' }
    if (f.kind === 'array') return { value: [] }
    return null // the API applies the default or reports the field as required
  }
  switch (f.kind) {
    case 'number':
    case 'integer': {
      const n = parseNumber(text, f.kind === 'integer')
      return typeof n === 'string' ? { error: n } : { value: n }
    }
    case 'enum':
      return { value: (f.options ?? [])[Number(text)] }
    case 'array': {
      const parts = text.split(/[,\s]+/).filter((p) => p !== '')
      if (f.itemKind === 'string') return { value: parts }
      const items: number[] = []
      let bad: string | null = null
      for (const p of parts) {
        const n = parseNumber(p, f.itemKind === 'integer')
        if (typeof n === 'string') bad = `"${p}": ${n}`
        else items.push(n)
      }
      return bad ? { error: bad } : { value: items }
    }
    case 'json':
      try {
        return { value: JSON.parse(text) }
      } catch {
        return { value: text } // plain text for str-or-other unions
      }
    default:
      return { value: text }
  }
}

/** What the pipeline would get for a field: the form's value, else the field's default. */
function effectiveValue(f: FieldSpec, values: FormValues): unknown {
  const parsed = parseLeaf(f, values[f.path])
  return parsed && 'value' in parsed ? parsed.value : f.default
}

const sameValue = (a: unknown, b: unknown) => a === b || JSON.stringify(a) === JSON.stringify(b)

/**
 * The fields that apply to the form's current values (`x-applies-when`), groups filtered
 * likewise, in schema order. A field applies when each sibling it names applies itself and
 * holds one of the listed values; a condition naming no sibling field is ignored.
 */
export function applicableFields(fields: FieldSpec[], values: FormValues): FieldSpec[] {
  const byName = new Map(fields.map((f) => [f.name, f]))
  const memo = new Map<string, boolean>()
  const applies = (f: FieldSpec, visiting: Set<string>): boolean => {
    const known = memo.get(f.name)
    if (known !== undefined) return known
    if (visiting.has(f.name)) return true // a cycle decides nothing: show the field
    visiting.add(f.name)
    let ok = true
    for (const [name, allowed] of Object.entries(f.appliesWhen ?? {})) {
      const sibling = byName.get(name)
      if (!sibling || sibling === f || sibling.kind === 'group') continue
      if (!applies(sibling, visiting) || !allowed.some((v) => sameValue(v, effectiveValue(sibling, values)))) {
        ok = false
        break
      }
    }
    visiting.delete(f.name)
    memo.set(f.name, ok)
    return ok
  }
  return fields
    .filter((f) => applies(f, new Set()))
    .map((f) => (f.kind === 'group' && f.children ? { ...f, children: applicableFields(f.children, values) } : f))
}

/**
 * The config object the form's state describes, plus the errors the browser can tell
 * without asking the API (text that is not a number, invalid JSON). Bounds and cross-field
 * rules are the API's to judge, so its messages are the ones a user sees. Fields that do
 * not apply to the current values (`x-applies-when`) are left out: the pipeline gets their
 * defaults.
 */
export function buildConfig(
  fields: FieldSpec[],
  values: FormValues,
): { config: Record<string, unknown>; errors: FieldError[] } {
  const config: Record<string, unknown> = {}
  const errors: FieldError[] = []
  for (const f of leaves(applicableFields(fields, values))) {
    const parsed = parseLeaf(f, values[f.path])
    if (parsed === null) continue
    if ('error' in parsed) errors.push({ path: f.path, message: parsed.error })
    else setPath(config, f.path, parsed.value)
  }
  return { config, errors }
}

/**
 * Attach each error to the deepest field its path names ("conv_channels.1" -> conv_channels);
 * errors that name no field (model-level rules) go to `form`.
 */
export function assignErrors(
  fields: FieldSpec[],
  errors: FieldError[],
): { byField: Record<string, string[]>; form: string[] } {
  const paths = new Set<string>()
  const collect = (list: FieldSpec[]) =>
    list.forEach((f) => {
      paths.add(f.path)
      if (f.children) collect(f.children)
    })
  collect(fields)
  const byField: Record<string, string[]> = {}
  const form: string[] = []
  for (const e of errors) {
    const message = e.message.replace(/^Value error,\s*/, '')
    const parts = e.path ? e.path.split('.') : []
    let target: string | null = null
    for (let n = parts.length; n > 0; n -= 1) {
      const candidate = parts.slice(0, n).join('.')
      if (paths.has(candidate)) {
        target = candidate
        break
      }
    }
    if (target === null) {
      // pydantic model validators say which field in the message ("csv_path is required ...")
      const named = [...paths].find((p) => new RegExp(`^${p.replace(/\./g, '\\.')}\\b`).test(message))
      if (named && parts.length === 0) target = named
    }
    if (target === null) form.push(e.path ? `${e.path}: ${message}` : message)
    else (byField[target] ??= []).push(message)
  }
  return { byField, form }
}

/** "1 – 200", "> 0, ≤ 1" ... for help text. */
export function describeBounds(f: FieldSpec): string | null {
  const parts: string[] = []
  if (f.exclusiveMinimum !== undefined) parts.push(`> ${f.exclusiveMinimum}`)
  if (f.exclusiveMaximum !== undefined) parts.push(`< ${f.exclusiveMaximum}`)
  if (f.minimum !== undefined && f.maximum !== undefined && parts.length === 0)
    return `${f.minimum} – ${f.maximum}`
  if (f.minimum !== undefined) parts.push(`≥ ${f.minimum}`)
  if (f.maximum !== undefined) parts.push(`≤ ${f.maximum}`)
  if (f.kind === 'array' && (f.minItems !== undefined || f.maxItems !== undefined)) {
    parts.push(`${f.minItems ?? 0}–${f.maxItems ?? '∞'} values, comma-separated`)
  }
  return parts.length ? parts.join(', ') : null
}
