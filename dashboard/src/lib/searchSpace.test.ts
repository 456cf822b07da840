import { describe, expect, it } from 'vitest'
import { CLASSIFIER_SCHEMA, NESTED_SCHEMA } from '../test/fixtures'
import {
  buildSpace,
  changeKind,
  draftsFromSpace,
  newDraft,
  offeredValues,
  routeStudyErrors,
  tunableFields,
  type ParamDraft,
  type TunableField,
} from './searchSpace'

const DEFAULTS = { dataset: 'mnist_5k', data_path: null, max_samples: null, epochs: 15, learning_rate: 0.003, augment: true, conv_channels: [16, 32] }
const tunable = tunableFields(CLASSIFIER_SCHEMA, DEFAULTS)
const byName = Object.fromEntries(tunable.map((t) => [t.field.name, t])) as Record<string, TunableField>

describe('tunable settings from the schema', () => {
  it('lists every top-level field with the kinds its type takes', () => {
    expect(tunable.map((t) => `${t.field.name}:${t.kinds.join('|')}`)).toEqual([
      'dataset:choice',
      'data_path:choice',
      'max_samples:int|choice',
      'epochs:int|choice',
      'learning_rate:float|choice',
      'augment:choice',
      'conv_channels:choice',
    ])
  })

  it('leaves nested groups out (the tuner sets top-level fields only)', () => {
    expect(tunableFields(NESTED_SCHEMA).map((t) => t.field.name)).toEqual(['activation', 'head', 'mode', 'seed'])
  })

  it('takes the default from the pipeline defaults before the schema', () => {
    expect(byName.conv_channels.default).toEqual([16, 32])
    expect(byName.epochs.default).toBe(15)
  })
})

describe('drafts prefilled from the schema', () => {
  it('an integer range spans its bounds', () => {
    expect(newDraft(byName.epochs)).toMatchObject({ type: 'int', low: '1', high: '200', log: false, step: '' })
    expect(newDraft(byName.max_samples)).toMatchObject({ type: 'int', low: '30', high: '1000000' })
  })

  it('a float with an exclusive minimum of 0 starts at a tenth of its default, on a log scale', () => {
    expect(newDraft(byName.learning_rate)).toMatchObject({ type: 'float', low: '0.0003', high: '1', log: true })
  })

  it('a narrow float range is linear', () => {
    const dropout = tunableFields({ properties: { dropout: { type: 'number', minimum: 0, maximum: 0.9, default: 0.25 } } })[0]
    expect(newDraft(dropout)).toMatchObject({ low: '0', high: '0.9', log: false })
  })

  it('an unbounded end comes from the default', () => {
    const seed = tunableFields({ properties: { seed: { type: 'integer', minimum: 0, default: 7 } } })[0]
    expect(newDraft(seed)).toMatchObject({ low: '0', high: '14' })
  })

  it('enums and booleans offer each value, all picked', () => {
    expect(offeredValues(byName.dataset.field)).toEqual(['mnist_5k', 'digits_8x8', 'image_folder'])
    expect(newDraft(byName.dataset).picked).toEqual([true, true, true])
    expect(offeredValues(byName.augment.field)).toEqual([true, false])
  })

  it('free choices start from the default; lists as a JSON array', () => {
    expect(newDraft(byName.epochs, 'choice')).toMatchObject({ type: 'choice', choicesText: '15' })
    expect(newDraft(byName.conv_channels).choicesText).toBe('[[16,32]]')
  })

  it('switching the kind starts a fresh draft of that kind', () => {
    const range = { ...newDraft(byName.epochs), low: '3' }
    expect(changeKind(byName.epochs, range, 'int')).toBe(range)
    expect(changeKind(byName.epochs, range, 'choice')).toMatchObject({ type: 'choice', choicesText: '15' })
  })
})

describe('the space JSON', () => {
  const draft = (name: string, changes: Partial<ParamDraft> = {}, kind?: ParamDraft['type']) => ({ ...newDraft(byName[name], kind), ...changes })

  it('builds ranges, log scales, steps and choices in the order they were added', () => {
    const { space, errors } = buildSpace(tunable, [
      draft('learning_rate', { low: '0.001', high: '0.1' }),
      draft('epochs', { low: '2', high: '10', step: '2' }),
      draft('dataset', { picked: [false, true, true] }),
      draft('augment'),
      draft('conv_channels', { choicesText: '[[8], [16, 32]]' }),
      draft('max_samples', { choicesText: '100, 200, none' }, 'choice'),
    ])
    expect(errors).toEqual([])
    expect(Object.keys(space)).toEqual(['learning_rate', 'epochs', 'dataset', 'augment', 'conv_channels', 'max_samples'])
    expect(space).toEqual({
      learning_rate: { type: 'float', low: 0.001, high: 0.1, log: true },
      epochs: { type: 'int', low: 2, high: 10, step: 2 },
      dataset: { type: 'choice', choices: ['digits_8x8', 'image_folder'] },
      augment: { type: 'choice', choices: [true, false] },
      conv_channels: { type: 'choice', choices: [[8], [16, 32]] },
      max_samples: { type: 'choice', choices: [100, 200, null] },
    })
  })

  it('reports what it cannot read on space.<name>, and leaves ranges to the API', () => {
    const { space, errors } = buildSpace(tunable, [
      draft('epochs', { low: '2.5' }),
      draft('learning_rate', { high: 'lots' }),
      draft('dataset', { picked: [false, false, false] }),
      draft('conv_channels', { choicesText: '[8, 16' }),
      draft('max_samples', { choicesText: '100, x' }, 'choice'),
      draft('epochs', { low: '50', high: '3' }, 'int'),
    ])
    expect(errors).toEqual([
      { path: 'space.epochs', message: 'low: enter a whole number' },
      { path: 'space.learning_rate', message: 'high: enter a number' },
      { path: 'space.dataset', message: 'choose at least one value' },
      { path: 'space.conv_channels', message: 'enter a JSON array of values, e.g. [[16, 32], [32, 64]]' },
      { path: 'space.max_samples', message: '"x": enter a number' },
    ])
    // low above high is the API's to refuse, with its message
    expect(space).toEqual({ epochs: { type: 'int', low: 50, high: 3 } })
  })

  it('round-trips through drafts (a study launched again)', () => {
    const space = {
      learning_rate: { type: 'float', low: 0.001, high: 0.1, log: true },
      epochs: { type: 'choice', choices: [2, 4] },
      dataset: { type: 'choice', choices: ['digits_8x8'] },
      conv_channels: { type: 'choice', choices: [[8], [16, 32]] },
    }
    const drafts = draftsFromSpace(tunable, space)
    expect(drafts.find((d) => d.name === 'dataset')?.picked).toEqual([false, true, false])
    expect(buildSpace(tunable, drafts).space).toEqual(space)
  })
})

describe("the API's errors, routed", () => {
  it('sends space, base_config and study errors where they belong', () => {
    const routed = routeStudyErrors([
      { path: 'space.learning_rate', message: 'Value error, a log scale needs low > 0' },
      { path: 'space.epochs.step', message: 'Input should be greater than 0' },
      { path: 'space', message: 'the grid has more than 10,000 points' },
      { path: 'base_config.epochs', message: 'Input should be greater than or equal to 1' },
      { path: 'n_trials', message: 'Input should be greater than or equal to 1' },
      { path: 'objective', message: 'tune on a validation metric' },
    ])
    expect(routed.space).toEqual({ learning_rate: ['a log scale needs low > 0'], epochs: ['step: Input should be greater than 0'] })
    expect(routed.spaceForm).toEqual(['the grid has more than 10,000 points'])
    expect(routed.base).toEqual([{ path: 'epochs', message: 'Input should be greater than or equal to 1' }])
    expect(routed.study.map((e) => e.path)).toEqual(['n_trials', 'objective'])
  })
})
