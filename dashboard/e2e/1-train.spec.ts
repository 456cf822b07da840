import { expect, test } from '@playwright/test'
import { BASE, setField, shot } from './helpers'

test('launch a real training from the form, watch it live, see the results', async ({ page }) => {
  await page.goto(`${BASE()}/pipelines`)
  await expect(page.getByTestId('installed-image_classifier')).toHaveText('installed · v0.1.0')
  await shot(page, '01-pipelines')
  await page.getByTestId('launch-image_classifier').click()

  // the form is generated from the schema, with defaults
  await expect(page.getByTestId('field-epochs')).toHaveValue('30')
  await expect(page.getByTestId('field-augment')).toBeChecked()
  await setField(page, 'dataset', 'digits_8x8')
  await setField(page, 'epochs', '60')
  await page.getByTestId('exp-name').fill('e2e digits')
  await page.getByTestId('exp-tags').fill('e2e, live')
  await shot(page, '02-launch-form')
  await page.getByTestId('submit').click()

  await expect(page).toHaveURL(/\/experiments\/[0-9a-f]{32}$/)
  await expect(page.getByTestId('experiment-name')).toHaveText('e2e digits')
  await expect(page.getByTestId('experiment-status')).toHaveText('running', { timeout: 60_000 })

  // live: the loss chart gains points and the progress bar moves while it is still running
  const points = page.getByTestId('loss-chart')
  await expect.poll(async () => Number(await points.getAttribute('data-points')), { timeout: 60_000 }).toBeGreaterThanOrEqual(2)
  const firstPoints = Number(await points.getAttribute('data-points'))
  const firstProgress = Number(await page.getByTestId('progress-bar').getAttribute('data-value'))
  await shot(page, '03-training-live')
  await expect.poll(async () => Number(await points.getAttribute('data-points')), { timeout: 60_000 }).toBeGreaterThan(firstPoints)
  const laterProgress = Number(await page.getByTestId('progress-bar').getAttribute('data-value'))
  expect(laterProgress).toBeGreaterThan(firstProgress)
  await expect(page.getByTestId('connection')).toHaveText('● live')
  await expect(page.getByTestId('experiment-status')).toHaveText('running')
  await expect(page.getByTestId('eta')).toHaveText(/^ETA \d+(m \d\d)?s$/)
  await shot(page, '04-training-later')

  // finished: final results next to the baselines, the confusion matrix, inline plots
  await expect(page.getByTestId('experiment-status')).toHaveText('succeeded', { timeout: 150_000 })
  await expect(points).toHaveAttribute('data-points', '60')
  await expect(page.getByTestId('progress-text')).toHaveText('100.0%')
  await expect(page.getByTestId('summary-accuracy')).toBeVisible()
  await expect(page.getByTestId('baselines-table')).toContainText('logistic_regression')
  await expect(page.getByTestId('confusion-matrix')).toBeVisible()
  await expect(page.getByTestId('artifact-model.safetensors')).toBeVisible()
  const plot = page.locator('img[alt="confusion_matrix.png"]')
  await plot.scrollIntoViewIfNeeded()
  await expect.poll(() => plot.evaluate((el: HTMLImageElement) => el.naturalWidth)).toBeGreaterThan(100)
  await page.evaluate(() => window.scrollTo(0, 0))
  const accuracy = await page.getByTestId('summary-accuracy').locator('.tile-value').innerText()
  expect(Number(accuracy)).toBeGreaterThan(0.8)
  await shot(page, '05-training-finished')

  // opened again later: the same charts from history
  await page.reload()
  await expect(page.getByTestId('experiment-status')).toHaveText('succeeded')
  await expect(page.getByTestId('loss-chart')).toHaveAttribute('data-points', '60')
  await expect(page.getByTestId('loss-chart')).toHaveAttribute('data-series', '2')
  await expect(page.getByTestId('confusion-matrix')).toBeVisible()

  // and it is in the table
  await page.getByTestId('nav-experiments').click()
  await expect(page.locator('[data-testid^="status-"]').first()).toHaveText('succeeded')
  await shot(page, '06-experiments-table')
})

test('a forecaster from its form: live prediction-vs-actual chart, metrics next to the baselines', async ({ page }) => {
  await page.goto(`${BASE()}/pipelines/weather_forecaster`)
  await expect(page.getByTestId('field-dataset')).toBeVisible()
  // the CSV file applies only to the dataset csv (x-applies-when): offered once it is chosen
  await expect(page.getByTestId('field-csv_path')).toHaveCount(0)
  await setField(page, 'dataset', 'csv')
  await expect(page.getByRole('button', { name: 'Upload a file for CSV file' })).toBeVisible()
  await setField(page, 'dataset', 'seattle')
  await expect(page.getByTestId('field-csv_path')).toHaveCount(0)
  await setField(page, 'epochs', '25')
  await setField(page, 'patience', '100')
  await page.getByTestId('exp-name').fill('e2e weather')
  await page.getByTestId('submit').click()
  await expect(page).toHaveURL(/\/experiments\/[0-9a-f]{32}$/)
  await expect(page.getByTestId('predictions-chart')).toBeVisible({ timeout: 90_000 })
  await expect.poll(async () => Number(await page.getByTestId('predictions-chart').getAttribute('data-points')), { timeout: 30_000 }).toBeGreaterThan(50)
  await shot(page, '16-forecaster-live')
  await expect(page.getByTestId('experiment-status')).toHaveText('succeeded', { timeout: 150_000 })
  await expect(page.getByTestId('baselines-table')).toContainText('naive')
  await expect(page.getByTestId('predictions-section')).toContainText('Predicted vs actual')
  await shot(page, '17-forecaster-finished')
})
