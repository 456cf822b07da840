// The experiments table is pushed status changes over the status stream: a run launched
// elsewhere appears, then goes running and succeeded in its row, with no reload and without
// the table fetching its page again for those changes.
import { expect, test } from '@playwright/test'
import { BASE, createExperiment, shot } from './helpers'

test('the table shows a run change status without a reload', async ({ page }) => {
  const tag = `live-table-${Date.now()}`
  const listFetches: string[] = []
  page.on('request', (request) => {
    if (/\/api\/v1\/experiments\?/.test(request.url())) listFetches.push(request.url())
  })
  await page.goto(`${BASE()}/experiments?tag=${tag}`)
  await expect(page.getByTestId('empty')).toBeVisible()
  await expect(page.getByTestId('table-connection')).toHaveText('● live')
  // a mark on this document: a reload would lose it
  await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true))

  const id = await createExperiment(page, {
    pipeline_id: 'image_classifier',
    name: 'e2e live table',
    tags: [tag],
    config: { dataset: 'digits_8x8', epochs: 25 },
  })
  // announced as queued: the table fetches its page once and shows the new row
  await expect(page.getByTestId(`row-${id}`)).toBeVisible()
  const fetchesWhenShown = listFetches.length
  await expect(page.getByTestId(`status-${id}`)).toHaveText('running', { timeout: 90_000 })
  await shot(page, '15-table-live-running')
  await expect(page.getByTestId(`status-${id}`)).toHaveText('succeeded', { timeout: 150_000 })
  await shot(page, '16-table-live-succeeded')

  // the row changed in place: no reload, no refetch of the page for those changes
  expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true)
  expect(listFetches.length).toBe(fetchesWhenShown)
  const record = await (await page.request.get(`${BASE()}/api/v1/experiments/${id}`)).json()
  expect(record.status).toBe('succeeded')
})
