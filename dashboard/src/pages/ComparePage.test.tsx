import { render, screen } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { MemoryRouter } from 'react-router'
import { describe, expect, it } from 'vitest'
import type { Experiment } from '../api/types'
import { CompareView } from './ComparePage'

const exp = (id: string, config: Record<string, unknown>, summary: Record<string, unknown>): Experiment => ({
  id,
  name: `run ${id}`,
  pipeline_id: 'image_classifier',
  config,
  status: 'succeeded',
  created_at: '2026-11-27T10:00:00Z',
  tags: [],
  summary,
})

describe('compare view', () => {
  const items = [
    { experiment: exp('a', { epochs: 2, learning_rate: 0.01, optimizer: 'adam' }, { accuracy: 0.97 }), metrics: [{ name: 'loss', steps: [1, 2], values: [2, 1] }, { name: 'val_loss', steps: [1, 2], values: [2.1, 1.4] }] },
    { experiment: exp('b', { epochs: 2, learning_rate: 0.003, optimizer: 'sgd' }, { accuracy: 0.95 }), metrics: [{ name: 'loss', steps: [1, 2, 3], values: [2, 0.9, 0.7] }, { name: 'val_loss', steps: [1, 2, 3], values: [2, 1.1, 1.2] }] },
  ]

  it('overlays curves, lists config differences and highlights the best metrics', async () => {
    render(
      <MemoryRouter>
        <CompareView items={items} />
      </MemoryRouter>,
    )
    expect(screen.getByTestId('compare-chart-loss')).toHaveAttribute('data-series', '2')
    expect(screen.getByTestId('compare-chart-loss')).toHaveAttribute('data-points', '3')
    expect(screen.getByTestId('config-row-learning_rate')).toHaveTextContent(/^learning_rate0\.010\.003$/)
    expect(screen.getByTestId('config-row-optimizer')).toHaveTextContent(/^optimizeradamsgd$/)
    expect(screen.queryByTestId('config-row-epochs')).toBeNull()
    expect(screen.getByTestId('best-accuracy')).toHaveTextContent(/^0\.97$/)
    expect(screen.getByTestId('best-loss')).toHaveTextContent(/^0\.7$/)
    expect(screen.getByTestId('best-val_loss')).toHaveTextContent(/^1\.2$/)
    expect(screen.getByTestId('pc-metric')).toHaveValue('val_loss')
    expect(screen.getByTestId('pc-line-b')).toHaveAttribute('stroke-width', '4')
    expect(screen.getByTestId('pc-line-a')).toHaveAttribute('stroke-width', '2')
    await userEvent.setup().selectOptions(screen.getByTestId('pc-metric'), 'accuracy')
    expect(screen.getByTestId('pc-line-a')).toHaveAttribute('stroke-width', '4')
    await userEvent.setup().click(screen.getByLabelText('show all keys'))
    expect(screen.getByTestId('config-row-epochs')).toHaveTextContent(/^epochs22$/)
  })
})
