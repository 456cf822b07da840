import { expect, test } from '@playwright/test'
import { BASE, setField, shot } from './helpers'

// The real pipelines' schemas carry x-applies-when: the form shows a field only for the
// values it applies to and never sends a hidden one.
test('the stock form offers a ticker only for Yahoo Finance and sends none for the S&P 500', async ({ page }) => {
  await page.goto(`${BASE()}/pipelines/stock_predictor`)
  await expect(page.getByTestId('field-dataset')).toHaveValue('0') // sp500
  for (const hidden of ['ticker', 'start_date', 'end_date', 'cache_dir', 'csv_path']) {
    await expect(page.getByTestId(`field-${hidden}`)).toHaveCount(0)
  }
  await shot(page, '21-stock-form-sp500')

  await setField(page, 'dataset', 'yfinance')
  await expect(page.getByTestId('field-ticker')).toHaveValue('MSFT')
  await expect(page.getByTestId('field-start_date')).toHaveValue('2010-01-01')
  await expect(page.getByTestId('field-csv_path')).toHaveCount(0)
  await setField(page, 'ticker', 'AAPL')
  await shot(page, '22-stock-form-yfinance')

  await setField(page, 'dataset', 'csv')
  await expect(page.getByTestId('field-ticker')).toHaveCount(0)
  await expect(page.getByRole('button', { name: 'Upload a file for CSV file' })).toBeVisible()

  // back to the index: what goes to the API has no ticker, dates or file (no run is started)
  await setField(page, 'dataset', 'sp500')
  let sent: { config: Record<string, unknown> } | null = null
  await page.route('**/api/v1/experiments', async (route) => {
    if (route.request().method() !== 'POST') return route.fallback()
    sent = route.request().postDataJSON()
    await route.fulfill({ status: 503, json: { error: { code: 'unavailable', message: 'not in this test', fields: [] } } })
  })
  await page.getByTestId('submit').click()
  await expect.poll(() => sent).not.toBeNull()
  const config = sent!.config
  expect(config.dataset).toBe('sp500')
  for (const hidden of ['ticker', 'start_date', 'end_date', 'cache_dir', 'csv_path']) expect(config).not.toHaveProperty(hidden)
  expect(config).toHaveProperty('window', 20)
})

test('the classifier shows its data folder for the datasets that read one, the warp while augmenting', async ({ page }) => {
  await page.goto(`${BASE()}/pipelines/image_classifier`)
  await expect(page.getByTestId('field-data_path')).toHaveCount(0) // mnist_5k ships offline
  await expect(page.getByTestId('field-max_shift')).toBeVisible()
  await setField(page, 'dataset', 'mnist_idx')
  await expect(page.getByTestId('field-data_path')).toBeVisible()
  await expect(page.getByTestId('field-download')).toBeVisible()
  await setField(page, 'dataset', 'image_folder')
  await expect(page.getByTestId('field-data_path')).toBeVisible()
  await expect(page.getByTestId('field-download')).toHaveCount(0)
  await page.getByTestId('field-augment').uncheck()
  for (const hidden of ['max_shift', 'max_rotation', 'max_zoom']) await expect(page.getByTestId(`field-${hidden}`)).toHaveCount(0)
  await shot(page, '23-classifier-form-folder-no-augment')
})
