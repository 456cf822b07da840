import { expect, test } from '@playwright/test'
import { BASE, createExperiment, shot, waitForStatus } from './helpers'

test('compare two finished experiments', async ({ page }) => {
  const a = await createExperiment(page, {
    pipeline_id: 'image_classifier',
    name: 'cmp adam',
    tags: ['cmp'],
    config: { dataset: 'digits_8x8', epochs: 6, optimizer: 'adam', learning_rate: 0.003 },
  })
  const b = await createExperiment(page, {
    pipeline_id: 'image_classifier',
    name: 'cmp sgd',
    tags: ['cmp'],
    config: { dataset: 'digits_8x8', epochs: 6, optimizer: 'sgd', learning_rate: 0.01 },
  })
  await waitForStatus(page, a, ['succeeded'])
  await waitForStatus(page, b, ['succeeded'])

  await page.goto(`${BASE()}/experiments?tag=cmp`)
  await expect(page.getByTestId('result-count')).toHaveText('2 experiments')
  await page.getByTestId(`select-${a}`).check()
  await page.getByTestId(`select-${b}`).check()
  await page.getByTestId('compare-selected').click()
  await expect(page).toHaveURL(/\/compare\?ids=/)

  await expect(page.getByTestId('compare-chart-loss')).toHaveAttribute('data-series', '2')
  await expect(page.getByTestId('compare-chart-loss')).toHaveAttribute('data-points', '6')
  await expect(page.getByTestId('config-row-optimizer')).toHaveText('optimizeradamsgd')
  await expect(page.getByTestId('config-row-learning_rate')).toHaveText('learning_rate0.0030.01')
  await expect(page.getByTestId('best-accuracy')).toHaveCount(1)
  await expect(page.getByTestId('best-val_loss')).toHaveCount(1)
  await expect(page.getByTestId('parallel-coords')).toBeVisible()
  await expect(page.getByTestId(`pc-line-${a}`)).toHaveAttribute('points', /^(\d+(\.\d+)?,\d+(\.\d+)? ?){3}$/)
  await expect(page.locator('[data-testid^="pc-line-"][stroke-width="4"]')).toHaveCount(1)
  await shot(page, '10-compare')

  // dark theme and a tablet width
  await page.getByTestId('theme-toggle').click()
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark')
  await page.setViewportSize({ width: 820, height: 1100 })
  await page.goto(`${BASE()}/experiments/${a}`)
  await expect(page.getByTestId('loss-chart')).toHaveAttribute('data-points', '6')
  await shot(page, '11-detail-dark-tablet')
})

test('register a finished model and run a prediction', async ({ page }) => {
  const list = await (await page.request.get(`${BASE()}/api/v1/experiments?tag=cmp&status=succeeded`)).json()
  const id = list.items[0].id as string
  await page.goto(`${BASE()}/experiments/${id}`)
  page.once('dialog', (d) => d.accept('e2e-digits'))
  await page.getByTestId('register-model').click()
  await expect(page.getByTestId('registered')).toHaveText('Registered as e2e-digits')
  await page.getByTestId('registered').click()
  await expect(page.getByTestId('models-table')).toContainText('e2e-digits')
  await page.getByTestId('predict-e2e-digits').click()
  const blank = Array.from({ length: 8 }, () => Array(8).fill(0))
  await page.getByTestId('predict-input').fill(JSON.stringify({ inputs: [blank] }))
  await page.getByTestId('predict-submit').click()
  await expect(page.getByTestId('predict-output')).toContainText('"class_index"')
  await shot(page, '15-models-predict')
})
