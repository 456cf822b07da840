// Inputs generated from a pipeline's config schema (see lib/schema.ts for the model).
import { useRef, useState } from 'react'
import { applicableFields, describeBounds, type FieldSpec, type FormValues } from '../lib/schema'
import { formatValue } from '../lib/format'

export interface SchemaFieldsProps {
  fields: FieldSpec[]
  values: FormValues
  errors: Record<string, string[]>
  onChange: (path: string, value: string | boolean) => void
  /** Uploads a file and resolves to the server-side path to put in the field. */
  onUpload?: (file: File) => Promise<string>
  /** Prefix of the inputs' ids and test ids, for two generated forms on one page. */
  idPrefix?: string
}

/** The inputs of the fields that apply to the current values (`x-applies-when`); the others are not rendered. */
export function SchemaFields(props: SchemaFieldsProps) {
  return (
    <div className="form-grid">
      {applicableFields(props.fields, props.values).map((f) =>
        f.kind === 'group' ? (
          <fieldset key={f.path} className="form-group" data-testid={`group-${f.path}`}>
            <legend>{f.title}</legend>
            {f.description && <p className="help">{f.description}</p>}
            <SchemaFields {...props} fields={f.children ?? []} />
          </fieldset>
        ) : (
          <FieldInput key={f.path} field={f} {...props} />
        ),
      )}
    </div>
  )
}

function FieldInput({
  field: f,
  values,
  errors,
  onChange,
  onUpload,
  idPrefix = '',
}: SchemaFieldsProps & { field: FieldSpec }) {
  const id = `${idPrefix}field-${f.path}`
  const errs = errors[f.path] ?? []
  const helpId = `${id}-help`
  const errId = `${id}-error`
  const describedBy = [f.description || describeBounds(f) ? helpId : '', errs.length ? errId : '']
    .filter(Boolean)
    .join(' ')
  const value = values[f.path]
  const common = {
    id,
    name: f.path,
    'data-testid': id,
    'aria-invalid': errs.length > 0 || undefined,
    'aria-describedby': describedBy || undefined,
  }
  const bounds = describeBounds(f)

  let input: React.ReactNode
  switch (f.kind) {
    case 'boolean':
      input = (
        <input
          {...common}
          type="checkbox"
          checked={value === true}
          onChange={(e) => onChange(f.path, e.target.checked)}
        />
      )
      break
    case 'enum':
      input = (
        <select {...common} value={String(value ?? '')} onChange={(e) => onChange(f.path, e.target.value)}>
          {(f.nullable || value === '') && <option value="">{f.nullable ? '(none)' : '(choose)'}</option>}
          {(f.options ?? []).map((o, i) => (
            <option key={i} value={String(i)}>
              {formatValue(o)}
            </option>
          ))}
        </select>
      )
      break
    case 'number':
    case 'integer':
      input = (
        <input
          {...common}
          type="number"
          inputMode={f.kind === 'integer' ? 'numeric' : 'decimal'}
          step={f.kind === 'integer' ? 1 : 'any'}
          min={f.minimum ?? f.exclusiveMinimum}
          max={f.maximum ?? f.exclusiveMaximum}
          placeholder={f.nullable ? 'empty = none' : undefined}
          value={String(value ?? '')}
          onChange={(e) => onChange(f.path, e.target.value)}
        />
      )
      break
    case 'json':
      input = (
        <textarea
          {...common}
          rows={3}
          spellCheck={false}
          value={String(value ?? '')}
          onChange={(e) => onChange(f.path, e.target.value)}
        />
      )
      break
    default:
      input = (
        <div className="input-row">
          <input
            {...common}
            type={f.format === 'date' ? 'date' : 'text'}
            placeholder={f.kind === 'array' ? 'e.g. 16, 32' : f.nullable ? 'empty = none' : undefined}
            value={String(value ?? '')}
            onChange={(e) => onChange(f.path, e.target.value)}
          />
          {f.isPath && onUpload && <UploadButton field={f} onUpload={onUpload} onChange={onChange} />}
        </div>
      )
  }

  const isCheckbox = f.kind === 'boolean'
  return (
    <div className={`field ${isCheckbox ? 'field-check' : ''} ${errs.length ? 'field-invalid' : ''}`}>
      {isCheckbox ? (
        <label htmlFor={id} className="check-label">
          {input}
          <span>{f.title}</span>
        </label>
      ) : (
        <>
          <label htmlFor={id}>
            {f.title}
            {f.required && !f.nullable && <span className="req" aria-hidden="true"> *</span>}
            <code className="field-key">{f.name}</code>
          </label>
          {input}
        </>
      )}
      {(f.description || bounds) && (
        <p className="help" id={helpId}>
          {f.description}
          {bounds && <span className="bounds"> ({bounds})</span>}
        </p>
      )}
      {errs.length > 0 && (
        <p className="field-error" id={errId} role="alert" data-testid={`${idPrefix}error-${f.path}`}>
          {errs.join('; ')}
        </p>
      )}
    </div>
  )
}

function UploadButton({
  field,
  onUpload,
  onChange,
}: {
  field: FieldSpec
  onUpload: (file: File) => Promise<string>
  onChange: (path: string, value: string) => void
}) {
  const ref = useRef<HTMLInputElement>(null)
  const [state, setState] = useState<'idle' | 'busy' | string>('idle')
  return (
    <>
      <input
        ref={ref}
        type="file"
        hidden
        accept={/csv/i.test(field.name) ? '.csv,.tsv' : '.csv,.tsv,.json,.zip,.gz,.idx,.ubyte,.png,.npz'}
        data-testid={`upload-${field.path}`}
        onChange={async (e) => {
          const file = e.target.files?.[0]
          if (!file) return
          setState('busy')
          try {
            onChange(field.path, await onUpload(file))
            setState('idle')
          } catch (err) {
            setState(err instanceof Error ? err.message : String(err))
          }
          e.target.value = ''
        }}
      />
      <button
        type="button"
        className="btn btn-small"
        onClick={() => ref.current?.click()}
        disabled={state === 'busy'}
        aria-label={`Upload a file for ${field.title}`}
      >
        {state === 'busy' ? 'Uploading…' : 'Upload…'}
      </button>
      {state !== 'idle' && state !== 'busy' && <span className="field-error">{state}</span>}
    </>
  )
}
