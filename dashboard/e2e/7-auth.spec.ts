// Authentication end to end: the login page, a personal API token that works for scripts and
// stops working when revoked, logging out, and a viewer who is offered nothing to change.
import { expect, test } from '@playwright/test'
import { BASE, E2E_PASSWORD, E2E_USER, ORIGIN, shot, signIn } from './helpers'

const SIGNED_OUT = { cookies: [], origins: [] }

test.describe('signed out', () => {
  // its own session: logging out here must not end the one the other tests share
  test.use({ storageState: SIGNED_OUT })

  test('login page, an API token for scripts, log out', async ({ page, playwright }) => {
    const anonymous = await page.request.get(`${BASE()}/api/v1/experiments`)
    expect(anonymous.status()).toBe(401)
    expect((await anonymous.json()).error.code).toBe('unauthenticated')

    await page.goto(`${BASE()}/experiments?tag=e2e`)
    await signIn(page, E2E_USER(), 'not-the-password')
    await expect(page.getByTestId('login-error')).toHaveText('Wrong username or password.')
    await shot(page, '18-login-failed')
    await signIn(page, E2E_USER(), E2E_PASSWORD())
    // back where it started
    await expect(page.getByTestId('user-name')).toHaveText(E2E_USER())
    await expect(page.getByTestId('user-role')).toHaveText('admin')
    await expect(page).toHaveURL(/\/experiments\?tag=e2e$/)
    await expect(page.getByTestId('experiments-table')).toBeVisible()

    // a token, shown once, that works as a Bearer credential
    await page.getByTestId('user-menu').click()
    await page.getByTestId('menu-tokens').click()
    await page.getByTestId('token-name').fill('e2e script')
    await page.getByTestId('token-days').fill('7')
    await page.getByTestId('token-submit').click()
    const secret = await page.getByTestId('new-token-value').inputValue()
    expect(secret).toMatch(/^af_/)
    await shot(page, '19-token-created')
    const script = await playwright.request.newContext()
    const me = await script.get(`${BASE()}/api/v1/auth/me`, { headers: { Authorization: `Bearer ${secret}` } })
    expect(me.status()).toBe(200)
    expect(await me.json()).toMatchObject({ username: E2E_USER(), auth: 'token' })
    await page.getByTestId('new-token-done').click()
    await expect(page.getByTestId('new-token')).toHaveCount(0)
    await expect(page.getByText(secret)).toHaveCount(0)

    // revoked: refused from then on
    const row = page.locator('tr', { hasText: 'e2e script' })
    page.once('dialog', (d) => d.accept())
    await row.getByRole('button', { name: 'Revoke' }).click()
    await expect(row.locator('[data-testid^="token-state-"]')).toHaveText(/^revoked /)
    const after = await script.get(`${BASE()}/api/v1/auth/me`, { headers: { Authorization: `Bearer ${secret}` } })
    expect(after.status()).toBe(401)
    await script.dispose()

    // log out: the login page, and the session is over for the server too
    await page.getByTestId('user-menu').click()
    await page.getByTestId('menu-logout').click()
    await expect(page.getByTestId('login-page')).toBeVisible()
    await page.reload()
    await expect(page.getByTestId('login-page')).toBeVisible()
    expect((await page.request.get(`${BASE()}/api/v1/auth/me`)).status()).toBe(401)
  })
})

test('a viewer made by the admin is offered nothing to change, and the API agrees', async ({ page, browser }) => {
  await page.goto(`${BASE()}/users`)
  await page.getByTestId('new-username').fill('e2e-viewer')
  await page.getByTestId('new-role').selectOption('viewer')
  await page.getByTestId('new-user-submit').click()
  const password = await page.getByTestId('user-password-value').inputValue()
  expect(password.length).toBeGreaterThan(7)
  await expect(page.getByTestId('user-e2e-viewer')).toBeVisible()
  await shot(page, '20-users')
  await page.getByTestId('user-password-done').click()

  const context = await browser.newContext({ storageState: SIGNED_OUT })
  const viewer = await context.newPage()
  await viewer.goto(`${BASE()}/pipelines`)
  await signIn(viewer, 'e2e-viewer', password)
  await expect(viewer.getByTestId('user-role')).toHaveText('viewer')
  await expect(viewer.getByTestId('pipeline-image_classifier')).toBeVisible()
  await expect(viewer.getByTestId('launch-image_classifier')).toHaveCount(0)
  await viewer.goto(`${BASE()}/experiments`)
  await expect(viewer.getByTestId('experiments-table')).toBeVisible()
  await expect(viewer.getByTestId('delete-selected')).toHaveCount(0)
  await expect(viewer.getByTestId('new-experiment')).toHaveCount(0)
  await shot(viewer, '21-viewer')
  const refused = await viewer.request.post(`${BASE()}/api/v1/experiments`, {
    data: { pipeline_id: 'image_classifier', config: { dataset: 'digits_8x8', epochs: 1 } },
    headers: ORIGIN(),
  })
  expect(refused.status()).toBe(403)
  await context.close()

  // the audit log has the admin's doing
  await page.goto(`${BASE()}/audit?action=user.create`)
  await expect(page.getByTestId('audit-table')).toContainText('user.create')
  await expect(page.getByTestId('audit-table')).toContainText(E2E_USER())
  await shot(page, '22-audit')
})
