import { expect, type Page } from '@playwright/test'

export const BASE = () => {
  const url = process.env.E2E_BASE_URL
  if (!url) throw new Error('E2E_BASE_URL is unset: run through `npm run e2e` (global setup starts the server)')
  return url
}

/** The admin global setup created and signed in (AZURAFORGE_E2E_USER / _PASSWORD). */
export const E2E_USER = () => process.env.AZURAFORGE_E2E_USER || 'e2e-admin'
export const E2E_PASSWORD = () => {
  const pw = process.env.AZURAFORGE_E2E_PASSWORD
  if (!pw) throw new Error('AZURAFORGE_E2E_PASSWORD is unset: run through `npm run e2e` (global setup sets it)')
  return pw
}

/** The API refuses state-changing requests whose Origin is not its own (browsers send it). */
export const ORIGIN = () => ({ Origin: BASE() })

/** Signs in through the login page (which any page shows without a session). */
export async function signIn(page: Page, username: string, password: string) {
  await expect(page.getByTestId('login-page')).toBeVisible()
  await page.getByTestId('login-username').fill(username)
  await page.getByTestId('login-password').fill(password)
  await page.getByTestId('login-submit').click()
}

export const shot = (page: Page, name: string) =>
  page.screenshot({ path: `e2e/screenshots/${name}.png`, fullPage: true })

interface Created {
  id: string
}

/** Queue an experiment through the HTTP API (for runs the test does not launch from the form). */
export async function createExperiment(page: Page, body: Record<string, unknown>): Promise<string> {
  const r = await page.request.post(`${BASE()}/api/v1/experiments`, { data: body, headers: ORIGIN() })
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
