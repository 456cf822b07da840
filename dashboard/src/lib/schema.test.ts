import { describe, expect, it } from 'vitest'
import { CLASSIFIER_SCHEMA, NESTED_SCHEMA } from '../test/fixtures'
import { assignErrors, buildConfig, buildFields, describeBounds, initialValues, leaves, valuesFromConfig } from './schema'

describe('buildFields', () => {
  const fields = buildFields(CLASSIFIER_SCHEMA)
  const byName = Object.fromEntries(fields.map((f) => [f.name, f]))

  it('keeps schema order and picks an input kind per type', () => {
    expect(fields.map((f) => `${f.name}:${f.kind}`)).toEqual([
      'dataset:enum',
      'data_path:string',
      'max_samples:integer',
      'epochs:integer',
      'learning_rate:number',
      'augment:boolean',
      'conv_channels:array',
    ])
  })

  it('reads bounds, titles, help and nullability', () => {
    expect(byName.epochs).toMatchObject({ minimum: 1, maximum: 200, title: 'Epochs', description: 'Passes over the training set.', nullable: false })
    expect(byName.learning_rate.exclusiveMinimum).toBe(0)
    expect(byName.max_samples).toMatchObject({ nullable: true, minimum: 30, maximum: 1000000 })
    expect(byName.conv_channels).toMatchObject({ itemKind: 'integer', minItems: 1, maxItems: 4 })
    expect(describeBounds(byName.epochs)).toBe('1 – 200')
    expect(describeBounds(byName.learning_rate)).toBe('> 0, ≤ 1')
  })

  it('offers an upload for data paths only', () => {
    expect(byName.data_path.isPath).toBe(true)
    expect(buildFields({ properties: { cache_dir: { type: 'string' }, csv_path: { type: 'string' } } }).map((f) => f.isPath)).toEqual([false, true])
  })

  it('resolves $ref, allOf and anyOf-with-null into nested groups and enums', () => {
    const nested = buildFields(NESTED_SCHEMA)
    const [optimizer, activation, head, mode, seed] = nested
    expect(optimizer.kind).toBe('group')
    expect(optimizer.title).toBe('Optimizer')
    expect(optimizer.description).toBe('How weights move.')
    expect(optimizer.children?.map((c) => `${c.path}:${c.kind}:${c.required}`)).toEqual(['optimizer.name:enum:false', 'optimizer.lr:number:true'])
    expect(activation).toMatchObject({ kind: 'enum', options: ['relu', 'tanh'], default: 'relu', description: 'Non-linearity.' })
    expect(head).toMatchObject({ kind: 'enum', nullable: true, options: ['relu', 'tanh'], title: 'Head activation' })
    expect(mode).toMatchObject({ kind: 'enum', options: ['fast', 'slow'], title: 'Mode' })
    expect(seed).toMatchObject({ kind: 'integer', required: true })
    expect(leaves(nested).map((f) => f.path)).toEqual(['optimizer.name', 'optimizer.lr', 'activation', 'head', 'mode', 'seed'])
  })
})

describe('form values', () => {
  const fields = buildFields(CLASSIFIER_SCHEMA)
  const defaults = { dataset: 'mnist_5k', data_path: null, max_samples: null, epochs: 15, learning_rate: 0.003, augment: true, conv_channels: [16, 32] }

  it('fills defaults from the pipeline, then the schema', () => {
    expect(initialValues(fields, defaults)).toEqual({
      dataset: '0',
      data_path: '',
      max_samples: '',
      epochs: '15',
      learning_rate: '0.003',
      augment: true,
      conv_channels: '16, 32',
    })
    const nested = buildFields(NESTED_SCHEMA)
    expect(initialValues(nested)).toEqual({ 'optimizer.name': '0', 'optimizer.lr': '0.001', activation: '0', head: '', mode: '0', seed: '' })
  })

  it('round-trips to the same config', () => {
    const { config, errors } = buildConfig(fields, initialValues(fields, defaults))
    expect(errors).toEqual([])
    expect(config).toEqual(defaults)
  })

  it('builds nested configs and leaves empty required numbers to the API', () => {
    const nested = buildFields(NESTED_SCHEMA)
    const values = { ...initialValues(nested), 'optimizer.lr': '0.1', head: '1' }
    expect(buildConfig(nested, values).config).toEqual({ optimizer: { name: 'adam', lr: 0.1 }, activation: 'relu', head: 'tanh', mode: 'fast' })
  })

  it('reports text that is not a number without asking the API', () => {
    const values = { ...initialValues(fields, defaults), epochs: '2.5', conv_channels: '16, x' }
    expect(buildConfig(fields, values).errors).toEqual([
      { path: 'epochs', message: 'enter a whole number' },
      { path: 'conv_channels', message: '"x": enter a number' },
    ])
  })

  it('prefills from an existing config for a re-run', () => {
    const values = valuesFromConfig(fields, { epochs: 3, dataset: 'digits_8x8', augment: false }, defaults)
    expect(values.epochs).toBe('3')
    expect(values.dataset).toBe('1')
    expect(values.augment).toBe(false)
    expect(values.learning_rate).toBe('0.003')
  })
})

describe('assignErrors', () => {
  const fields = buildFields(NESTED_SCHEMA)
  it('puts each API error next to the deepest field it names', () => {
    const { byField, form } = assignErrors(fields, [
      { path: 'optimizer.lr', message: 'Input should be greater than 0' },
      { path: 'seed', message: 'Field required' },
      { path: 'mode.extra', message: 'odd' },
      { path: 'unknown', message: 'Extra inputs are not permitted' },
      { path: '', message: "Value error, head must be set when mode is 'slow'" },
      { path: '', message: 'Value error, the whole thing is off' },
    ])
    expect(byField).toEqual({
      'optimizer.lr': ['Input should be greater than 0'],
      seed: ['Field required'],
      mode: ['odd'],
      head: ["head must be set when mode is 'slow'"],
    })
    expect(form).toEqual(['unknown: Extra inputs are not permitted', 'the whole thing is off'])
  })
})
