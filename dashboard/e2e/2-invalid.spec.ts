import { expect, test } from '@playwright/test'
import { BASE, setField, shot } from './helpers'

test("an invalid form shows the API's field errors and starts nothing", async ({ page }) => {
  const before = await (await page.request.get(`${BASE()}/api/v1/experiments?with_total=true`)).json()
  await page.goto(`${BASE()}/pipelines/image_classifier`)
  await setField(page, 'epochs', '0')
  await page.getByTestId('submit').click()
  await expect(page.getByTestId('error-epochs')).toHaveText('Input should be greater than or equal to 1')
  await expect(page.getByTestId('field-epochs')).toHaveAttribute('aria-invalid', 'true')
  await expect(page).toHaveURL(/\/pipelines\/image_classifier$/)
  await shot(page, '07-invalid-form')

  // a rule across fields (the config's own validator) lands on the field it names
  await setField(page, 'epochs', '2')
  await setField(page, 'dataset', 'image_folder')
  await page.getByTestId('submit').click()
  await expect(page.getByTestId('error-data_path')).toHaveText("data_path is required for dataset 'image_folder'")
  await expect(page.getByTestId('error-epochs')).toHaveCount(0)
  await shot(page, '08-invalid-form-cross-field')

  const after = await (await page.request.get(`${BASE()}/api/v1/experiments?with_total=true`)).json()
  expect(after.total).toBe(before.total)
})
