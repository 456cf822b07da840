import { expect, test, type Page } from '@playwright/test'
import { BASE, ORIGIN, shot } from './helpers'

/** A fixed setting of the target (the study form's base-config inputs have the `base-` prefix). */
async function setBase(page: Page, path: string, value: string) {
  const field = page.getByTestId(`base-field-${path}`)
  if ((await field.evaluate((el) => el.tagName)) === 'SELECT') await field.selectOption({ label: value })
  else await field.fill(value)
}

/** E2E_WORKERS=N: global setup started N Celery workers beside `azuraforge api`. */
const WORKERS = Number(process.env.E2E_WORKERS || 0)

test('launch a small study from the form, watch its trials, act on the best one', async ({ page }) => {
  if (WORKERS > 0) {
    // every worker is up before the study starts, so its parallel trials can spread
    await expect
      .poll(async () => (await (await page.request.get(`${BASE()}/api/v1/health`)).json()).workers_alive, {
        timeout: 90_000,
      })
      .toBeGreaterThanOrEqual(WORKERS)
  }
  await page.goto(`${BASE()}/pipelines`)
  await page.getByTestId('launch-hyper_tuner').click()
  await expect(page).toHaveURL(/\/studies\/new$/)

  await page.getByTestId('study-target').selectOption('image_classifier')
  await expect(page.getByTestId('study-objective')).toHaveValue('val_accuracy')
  await expect(page.getByTestId('study-direction')).toHaveValue('maximize')

  // the search space, from the classifier's schema: a float range (log scale prefilled) and an int range
  await page.getByTestId('add-param').selectOption('learning_rate')
  await expect(page.getByTestId('log-learning_rate')).toBeChecked()
  await page.getByTestId('low-learning_rate').fill('0.001')
  await page.getByTestId('high-learning_rate').fill('2')
  await page.getByTestId('add-param').selectOption('hidden_units')
  await expect(page.getByTestId('kind-hidden_units')).toHaveValue('int')
  await page.getByTestId('low-hidden_units').fill('16')
  await page.getByTestId('high-hidden_units').fill('64')
  // tuned settings leave the fixed-settings form
  await expect(page.getByTestId('base-field-learning_rate')).toHaveCount(0)
  await setBase(page, 'dataset', 'digits_8x8')
  await setBase(page, 'epochs', '2')
  await setBase(page, 'max_samples', '400')
  await page.getByTestId('base-field-augment').uncheck()
  await page.getByTestId('field-n_trials').fill('3')
  await page.getByTestId('field-parallel').fill('2')
  await page.getByTestId('study-name-input').fill('e2e study')

  // a bound the classifier refuses comes back from the API next to its parameter
  await page.getByTestId('submit-study').click()
  await expect(page.getByTestId('error-space-learning_rate')).toHaveText('2.0 is not a valid learning_rate: Input should be less than or equal to 1')
  await expect(page).toHaveURL(/\/studies\/new$/)
  await page.getByTestId('high-learning_rate').fill('0.05')
  await shot(page, '18-study-form')
  await page.getByTestId('submit-study').click()

  await expect(page).toHaveURL(/\/studies\/[0-9a-f]{32}$/)
  const studyId = page.url().split('/').pop() as string
  await expect(page.getByTestId('study-name')).toHaveText('e2e study')
  await expect(page.getByTestId('study-goal')).toHaveText('maximize val_accuracy of image_classifier')

  // trials appear live; the first one's result lands in the table and the history chart
  await expect(page.getByTestId('trial-row-0')).toBeVisible({ timeout: 60_000 })
  await expect(page.getByTestId('trial-state-0')).toHaveText('complete', { timeout: 90_000 })
  await expect(page.getByTestId('trial-value-0')).toHaveText(/^(0\.\d+|1)$/)
  await expect.poll(async () => Number(await page.getByTestId('history-chart').getAttribute('data-points'))).toBeGreaterThanOrEqual(1)

  await shot(page, '19-study-live')

  // a reload rebuilds the trials from the study's event backlog
  await page.reload()
  await expect(page.getByTestId('trial-state-0')).toHaveText('complete')

  await expect(page.getByTestId('study-status')).toHaveText('succeeded', { timeout: 120_000 })
  await expect(page.locator('[data-testid^="trial-row-"]')).toHaveCount(3)
  await expect(page.getByTestId('count-complete')).toHaveText('3')
  await expect(page.getByTestId('history-chart')).toHaveAttribute('data-points', '3')
  await expect(page.getByTestId('history-chart')).toHaveAttribute('data-series', '2')
  await expect(page.getByTestId('parallel-coords')).toBeVisible()
  await expect(page.locator('[data-testid^="pc-line-trial-"]')).toHaveCount(3)
  await expect(page.getByTestId('best-config-learning_rate')).toBeVisible()
  await expect(page.getByTestId('best-config-dataset')).toHaveText('datasetdigits_8x8')

  // the page's best is the study's summary
  const study = await (await page.request.get(`${BASE()}/api/v1/experiments/${studyId}`)).json()
  expect(study.summary.n_complete).toBe(3)
  const bestText = await page.getByTestId('best-value-number').innerText()
  expect(Number(bestText)).toBeCloseTo(study.summary.best_value, 3)
  await expect(page.getByTestId('best-trial')).toHaveText(`#${study.summary.best_trial}`)
  await page.evaluate(() => window.scrollTo(0, 0))
  await shot(page, WORKERS > 0 ? `20-study-finished-${WORKERS}-workers` : '20-study-finished')
  if (WORKERS > 1) {
    // the trials ran on more than one Celery worker (node names e2e1@host, e2e2@host)
    const trials = await (
      await page.request.get(`${BASE()}/api/v1/experiments?parent_id=${studyId}&limit=50`)
    ).json()
    const nodes = new Set<string>()
    for (const { id } of trials.items as { id: string }[]) {
      const trial = await (await page.request.get(`${BASE()}/api/v1/experiments/${id}`)).json()
      nodes.add(String(trial.worker).split('@')[0])
    }
    const started = Array.from({ length: WORKERS }, (_, i) => `e2e${i + 1}`)
    for (const node of nodes) expect(started).toContain(node)
    expect(nodes.size).toBeGreaterThanOrEqual(2)
  }

  // register the best trial's model
  page.once('dialog', (d) => d.accept('e2e-tuned'))
  await page.getByTestId('register-best').click()
  await expect(page.getByTestId('registered')).toHaveText('Registered as e2e-tuned')
  const models = await (await page.request.get(`${BASE()}/api/v1/models`)).json()
  const model = (models.items ?? models).find((m: { name: string }) => m.name === 'e2e-tuned')
  expect(model.experiment_id).toBe(study.summary.best_experiment_id)

  // re-run the best configuration: a new run of the target with the best trial's config
  await page.getByTestId('rerun-best').click()
  await expect(page).toHaveURL(/\/experiments\/[0-9a-f]{32}$/)
  const rerunId = page.url().split('/').pop() as string
  const rerun = await (await page.request.get(`${BASE()}/api/v1/experiments/${rerunId}`)).json()
  expect(rerun.pipeline_id).toBe('image_classifier')
  expect(rerun.parent_id).toBe(study.summary.best_experiment_id)
  expect(rerun.config.learning_rate).toBe(study.summary.best_params.learning_rate)
  expect(rerun.config.hidden_units).toBe(study.summary.best_params.hidden_units)
  // free the worker for the next specs
  await page.request.post(`${BASE()}/api/v1/experiments/${rerunId}/cancel`, { headers: ORIGIN() })
})
