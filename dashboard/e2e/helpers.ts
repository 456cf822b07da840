import { expect, type Page } from '@playwright/test'

export const BASE = () => {
  const url = process.env.E2E_BASE_URL
  if (!url) throw new Error('E2E_BASE_URL is unset: run through `npm run e2e` (global setup starts the server)')
  return url
}

export const shot = (page: Page, name: string) =>
  page.screenshot({ path: `e2e/screenshots/${name}.png`, fullPage: true })

interface Created {
  id: string
}

/** Queue an experiment through the HTTP API (for runs the test does not launch from the form). */
export async function createExperiment(page: Page, body: Record<string, unknown>): Promise<string> {
  const r = await page.request.post(`${BASE()}/api/v1/experiments`, { data: body })
  expect(r.status(), await r.text()).toBe(201)
  return ((await r.json()) as Created).id
}

export async function waitForStatus(page: Page, id: string, statuses: string[], timeoutMs = 150_000): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const r = await page.request.get(`${BASE()}/api/v1/experiments/${id}`)
    const status = ((await r.json()) as { status: string }).status
    if (statuses.includes(status)) return status
    if (Date.now() > deadline) throw new Error(`experiment ${id} still ${status} after ${timeoutMs} ms`)
    await page.waitForTimeout(500)
  }
}

/** Set a form field by its config path. */
export async function setField(page: Page, path: string, value: string) {
  const field = page.getByTestId(`field-${path}`)
  const tag = await field.evaluate((el) => el.tagName)
  if (tag === 'SELECT') await field.selectOption({ label: value })
  else await field.fill(value)
}
