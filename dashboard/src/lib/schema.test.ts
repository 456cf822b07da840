import { describe, expect, it } from 'vitest'
import type { JsonSchema } from '../api/types'
import { CLASSIFIER_SCHEMA, NESTED_SCHEMA, STOCK_DEFAULTS, STOCK_SCHEMA } from '../test/fixtures'
import {
  applicableFields,
  assignErrors,
  buildConfig,
  buildFields,
  describeBounds,
  initialValues,
  leaves,
  valuesFromConfig,
  type FormValues,
} from './schema'

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

describe('x-applies-when', () => {
  const fields = buildFields(STOCK_SCHEMA)
  const names = (list: ReturnType<typeof buildFields>) => leaves(list).map((f) => f.path)
  /** The form's state with the given option of `dataset` chosen. */
  const withDataset = (dataset: string, extra: FormValues = {}): FormValues => {
    const i = (fields.find((f) => f.name === 'dataset')!.options ?? []).indexOf(dataset)
    return { ...initialValues(fields, STOCK_DEFAULTS), dataset: String(i), ...extra }
  }

  it('reads the conditions wherever pydantic puts the property (plain, anyOf with null, $ref)', () => {
    const byName = Object.fromEntries(fields.map((f) => [f.name, f]))
    expect(byName.ticker.appliesWhen).toEqual({ dataset: ['yfinance'] })
    expect(byName.csv_path.appliesWhen).toEqual({ dataset: ['csv'] }) // anyOf + null
    expect(byName.window.appliesWhen).toBeUndefined()
    const viaRef = buildFields({
      $defs: { Mode: { enum: ['a', 'b'], type: 'string' } },
      properties: {
        kind: { type: 'string', enum: ['x', 'y'] },
        mode: { $ref: '#/$defs/Mode', default: 'a', 'x-applies-when': { kind: ['y'] } },
      },
    })
    expect(viaRef[1]).toMatchObject({ kind: 'enum', appliesWhen: { kind: ['y'] } })
  })

  it('ignores malformed conditions instead of hiding fields by accident', () => {
    const schema: JsonSchema = {
      properties: {
        a: { type: 'string', 'x-applies-when': { dataset: 'csv' } },
        b: { type: 'string', 'x-applies-when': { dataset: [] } },
        c: { type: 'string', 'x-applies-when': ['csv'] },
        d: { type: 'string', 'x-applies-when': { dataset: 'csv', other: [1] } },
      },
    }
    expect(buildFields(schema).map((f) => f.appliesWhen)).toEqual([undefined, undefined, undefined, { other: [1] }])
  })

  it('shows each data field only for the dataset that reads it', () => {
    expect(names(applicableFields(fields, withDataset('sp500')))).toEqual(['window', 'dataset'])
    expect(names(applicableFields(fields, withDataset('yfinance')))).toEqual(['window', 'dataset', 'ticker', 'start_date', 'end_date'])
    expect(names(applicableFields(fields, withDataset('csv')))).toEqual(['window', 'dataset', 'csv_path'])
  })

  it('puts a conditional field beside the (last) field its condition names, otherwise keeps schema order', () => {
    // csv_path comes first in the schema (a base config's field), dataset later (the app's)
    expect(Object.keys(STOCK_SCHEMA.properties!)).toEqual(['csv_path', 'window', 'dataset', 'ticker', 'start_date', 'end_date'])
    expect(fields.map((f) => f.name)).toEqual(['window', 'dataset', 'csv_path', 'ticker', 'start_date', 'end_date'])
    const loop = buildFields({
      properties: {
        x: { type: 'string' },
        a: { type: 'boolean', 'x-applies-when': { b: [true] } },
        b: { type: 'boolean', 'x-applies-when': { a: [true] } },
        c: { type: 'string', 'x-applies-when': { x: ['1'], a: [true] } },
      },
    })
    expect(loop.map((f) => f.name)).toEqual(['x', 'a', 'b', 'c']) // a circle keeps schema order
  })

  it('leaves the fields that do not apply out of the config (the pipeline gets their defaults)', () => {
    const sp500 = buildConfig(fields, withDataset('sp500', { ticker: 'AAPL' }))
    expect(sp500).toEqual({ config: { window: 20, dataset: 'sp500' }, errors: [] })
    const online = buildConfig(fields, withDataset('yfinance', { ticker: 'AAPL' }))
    expect(online.config).toEqual({ window: 20, dataset: 'yfinance', ticker: 'AAPL', start_date: '2010-01-01', end_date: null })
    const csv = buildConfig(fields, withDataset('csv', { csv_path: 'uploads/u1.csv' }))
    expect(csv.config).toEqual({ csv_path: 'uploads/u1.csv', window: 20, dataset: 'csv' })
  })

  it('does not judge what a hidden field holds', () => {
    const schema: JsonSchema = {
      properties: {
        augment: { type: 'boolean', default: true },
        max_shift: { type: 'number', default: 2, 'x-applies-when': { augment: [true] } },
      },
    }
    const aug = buildFields(schema)
    expect(buildConfig(aug, { augment: false, max_shift: 'lots' })).toEqual({ config: { augment: false }, errors: [] })
    expect(buildConfig(aug, { augment: true, max_shift: 'lots' }).errors).toEqual([{ path: 'max_shift', message: 'enter a number' }])
  })

  it('needs every condition, follows chains, and compares an empty field by its default', () => {
    const schema: JsonSchema = {
      properties: {
        source: { type: 'string', enum: ['file', 'web'], default: 'web' },
        retries: { type: 'integer', default: 3 },
        proxy: { type: 'boolean', default: false, 'x-applies-when': { source: ['web'] } },
        proxy_url: { type: 'string', default: '', 'x-applies-when': { proxy: [true] } },
        backoff: { type: 'number', default: 1, 'x-applies-when': { source: ['web'], retries: [3, 5] } },
        typo: { type: 'string', default: '', 'x-applies-when': { sorce: ['web'] } },
      },
    }
    const list = buildFields(schema)
    const shown = (values: FormValues) => names(applicableFields(list, values))
    // retries left empty: the pipeline's default (3) is what counts
    expect(shown({ source: '1', retries: '', proxy: false })).toEqual(['source', 'proxy', 'retries', 'backoff', 'typo'])
    expect(shown({ source: '1', retries: '4', proxy: true })).toEqual(['source', 'proxy', 'proxy_url', 'retries', 'typo'])
    // proxy does not apply to a file, so neither does proxy_url, whatever proxy still holds
    expect(shown({ source: '0', retries: '3', proxy: true })).toEqual(['source', 'retries', 'typo'])
  })

  it('applies conditions among the fields of a nested group, and survives a cycle', () => {
    const schema: JsonSchema = {
      properties: {
        optimizer: {
          type: 'object',
          properties: {
            name: { type: 'string', enum: ['adam', 'sgd'], default: 'adam' },
            momentum: { type: 'number', default: 0.9, 'x-applies-when': { name: ['sgd'] } },
          },
        },
        a: { type: 'boolean', default: true, 'x-applies-when': { b: [true] } },
        b: { type: 'boolean', default: true, 'x-applies-when': { a: [true] } },
      },
    }
    const list = buildFields(schema)
    expect(names(applicableFields(list, { 'optimizer.name': '0', 'optimizer.momentum': '0.9', a: true, b: true }))).toEqual(['optimizer.name', 'a', 'b'])
    const sgd = { 'optimizer.name': '1', 'optimizer.momentum': '0.5', a: true, b: true }
    expect(names(applicableFields(list, sgd))).toEqual(['optimizer.name', 'optimizer.momentum', 'a', 'b'])
    expect(buildConfig(list, sgd).config).toEqual({ optimizer: { name: 'sgd', momentum: 0.5 }, a: true, b: true })
  })
})
