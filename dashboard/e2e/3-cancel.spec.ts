import { expect, test } from '@playwright/test'
import { BASE, createExperiment, shot } from './helpers'

test('cancel a running experiment', async ({ page }) => {
  const id = await createExperiment(page, {
    pipeline_id: 'image_classifier',
    name: 'e2e to cancel',
    tags: ['e2e'],
    config: { dataset: 'digits_8x8', epochs: 200 },
  })
  await page.goto(`${BASE()}/experiments/${id}`)
  await expect(page.getByTestId('experiment-status')).toHaveText('running', { timeout: 90_000 })
  await expect.poll(async () => Number(await page.getByTestId('loss-chart').getAttribute('data-points')), { timeout: 60_000 }).toBeGreaterThanOrEqual(1)
  await page.getByTestId('cancel').click()
  await expect(page.getByTestId('experiment-status')).toHaveText(/^(cancelling|cancelled)$/)
  await expect(page.getByTestId('experiment-status')).toHaveText('cancelled', { timeout: 60_000 })
  await expect(page.getByTestId('cancel')).toHaveCount(0)
  await shot(page, '09-cancelled')
  const record = await (await page.request.get(`${BASE()}/api/v1/experiments/${id}`)).json()
  expect(record.status).toBe('cancelled')
})
