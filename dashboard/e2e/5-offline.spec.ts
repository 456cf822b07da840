import { expect, test } from '@playwright/test'
import { BASE, shot } from './helpers'

test('a readable error when the API cannot be reached', async ({ page }) => {
  await page.goto(`${BASE()}/pipelines`)
  await expect(page.getByTestId('pipeline-image_classifier')).toBeVisible()
  // the network to the API goes away (as when the server stops)
  await page.route('**/api/v1/**', (route) => route.abort('connectionrefused'))
  await page.getByTestId('nav-experiments').click()
  await expect(page.getByTestId('error-message')).toHaveText('Cannot reach the AzuraForge API. Is the server running (`azuraforge up`)?')
  await expect(page.getByTestId('api-offline')).toBeVisible({ timeout: 20_000 })
  await shot(page, '12-api-unreachable')
  // it comes back: the page recovers by itself
  await page.unroute('**/api/v1/**')
  await expect(page.getByTestId('api-offline')).toHaveCount(0, { timeout: 20_000 })
})
