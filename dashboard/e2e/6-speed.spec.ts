// Speed readouts (printed and saved to e2e/screenshots/speed.json, not asserted: timings
// depend on the machine): first paint of the experiments page over 10,000 experiments, a
// 100,000-point history drawn downsampled, and live latency from the server to the chart.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, test } from '@playwright/test'
import { BASE, createExperiment, E2E_USER, shot } from './helpers'

const results: Record<string, number | string> = {}

test.afterAll(() => {
  writeFileSync('e2e/screenshots/speed.json', JSON.stringify(results, null, 2))
  console.log('speed:', JSON.stringify(results))
})

test('speed: 10,000 experiments, a 100,000-point chart, live latency', async ({ page }) => {
  const db = join(process.env.E2E_DATA_DIR as string, 'azuraforge.db')
  const longId = execFileSync('python3', ['e2e/seed.py', db, '10000', '100000', E2E_USER()], { encoding: 'utf8' }).trim()

  // Record when elements first appear, in ms since navigation start.
  await page.addInitScript(() => {
    const seen: Record<string, number> = {}
    ;(window as unknown as { __seen: Record<string, number> }).__seen = seen
    new MutationObserver(() => {
      if (!seen.row && document.querySelector('[data-testid^="row-"]')) seen.row = performance.now()
      const chart = document.querySelector('[data-testid="loss-chart"] canvas')
      const pts = Number(document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-points') ?? 0)
      if (!seen.chart && chart && pts > 0) seen.chart = performance.now()
    }).observe(document, { subtree: true, childList: true, attributes: true })
  })
  const seen = () => page.evaluate(() => (window as unknown as { __seen: Record<string, number> }).__seen)

  await page.goto(`${BASE()}/experiments`)
  await expect(page.getByTestId('result-count')).toHaveText(/^10,0\d\d experiments$/)
  await expect(page.getByTestId('page-info')).toHaveText(/^Page 1 of 20\d$/)
  results.experiments_first_rows_ms = Math.round((await seen()).row)
  const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1)
  results.experiments_first_contentful_paint_ms = Math.round(fcp)
  await shot(page, '13-ten-thousand')
  // the last page of a filtered view stays quick: a keyset page, from the cursor after row
  // 9,950 (as "next" would reach it)
  const before = await (await page.request.get(`${BASE()}/api/v1/experiments?tag=seeded&offset=9949&limit=1`)).json()
  const t0 = Date.now()
  await page.goto(`${BASE()}/experiments?tag=seeded&page=200&cursor=${encodeURIComponent(before.next_cursor)}`)
  await expect(page.locator('[data-testid^="row-"]')).toHaveCount(50)
  await expect(page.getByTestId('page-info')).toHaveText(/^Page 200 of 20\d$/)
  results.experiments_page_200_ms = Date.now() - t0

  await page.goto(`${BASE()}/experiments/${longId}`)
  await expect(page.getByTestId('loss-chart')).toHaveAttribute('data-points', /^\d+$/)
  await expect.poll(async () => (await seen()).chart ?? 0).toBeGreaterThan(0)
  const metricsEnd = await page.evaluate(
    () => (performance.getEntriesByType('resource') as PerformanceResourceTiming[]).find((e) => e.name.includes('/metrics'))?.responseEnd ?? -1,
  )
  results.chart_points_drawn = Number(await page.getByTestId('loss-chart').getAttribute('data-points'))
  results.chart_100k_metrics_response_ms = Math.round(metricsEnd)
  results.chart_100k_drawn_after_response_ms = Math.round((await seen()).chart - metricsEnd)
  await shot(page, '14-long-history')

  // live: server-stored time to chart drawn, per point, while a real run trains
  const id = await createExperiment(page, {
    pipeline_id: 'image_classifier',
    name: 'latency',
    config: { dataset: 'digits_8x8', epochs: 12 },
  })
  await page.goto(`${BASE()}/experiments/${id}`)
  const latencies: number[] = []
  await expect(page.getByTestId('connection')).toHaveText('● live', { timeout: 90_000 })
  let last = ''
  for (let i = 0; i < 600; i += 1) {
    // one atomic read: the live indicator goes away when the run ends
    const now = await page.evaluate(() => ({
      latency: document.querySelector('[data-testid="connection"]')?.getAttribute('data-latency-ms') ?? '',
      points: document.querySelector('[data-testid="loss-chart"]')?.getAttribute('data-points') ?? '',
      status: document.querySelector('[data-testid="experiment-status"]')?.textContent ?? '',
    }))
    if (now.status === 'succeeded') break
    if (now.latency && now.points !== last) {
      latencies.push(Number(now.latency))
      last = now.points
    }
    await page.waitForTimeout(50)
  }
  latencies.sort((a, b) => a - b)
  results.live_points_measured = latencies.length
  results.live_latency_median_ms = latencies[Math.floor(latencies.length / 2)] ?? -1
  results.live_latency_max_ms = latencies[latencies.length - 1] ?? -1
  expect(latencies.length).toBeGreaterThan(2)
})
