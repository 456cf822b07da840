import { expect, test, type Page } from '@playwright/test'
import { BASE, shot } from './helpers'

// The Pipelines page at a laptop, a tablet and a phone width: every card's action (the launch
// link, or what stands in for it) must lie inside its card, measured from the element boxes.
// Besides the real catalog, the API's answer gains one pipeline with a long unbroken id, name and
// description, so the layout is checked with text it cannot wrap at spaces.
const WIDTHS = [1400, 1024, 390]
const LONG = {
  id: 'a_pipeline_with_an_exceptionally_long_identifier_that_never_breaks',
  name: 'Multivariate Hierarchical Probabilistic Forecaster With A Very Long Name',
  description: `Checks the layout: ${'Supercalifragilisticexpialidocious'.repeat(3)} and an ordinary sentence after it.`,
  version: '12.345.6789',
  installed: true,
  official: false,
  category: 'a-rather-long-category',
  package: null,
}

interface Box {
  x: number
  y: number
  width: number
  height: number
}

const inside = (inner: Box, outer: Box) =>
  inner.x >= outer.x - 0.5 &&
  inner.y >= outer.y - 0.5 &&
  inner.x + inner.width <= outer.x + outer.width + 0.5 &&
  inner.y + inner.height <= outer.y + outer.height + 0.5

async function checkCards(page: Page, width: number) {
  const cards = page.locator('.pipeline-card')
  const count = await cards.count()
  expect(count).toBeGreaterThanOrEqual(5) // the catalog's four and the long one
  for (let i = 0; i < count; i += 1) {
    const card = cards.nth(i)
    const id = (await card.getAttribute('data-testid'))!.replace(/^pipeline-/, '')
    const cardBox = (await card.boundingBox())!
    // the action: the launch link for an installed pipeline, the pip hint otherwise
    const action = card.locator('footer > :last-child')
    await expect(action).toBeVisible()
    const actionBox = (await action.boundingBox())!
    expect(inside(actionBox, cardBox), `${width}px: the action of ${id} ${JSON.stringify(actionBox)} lies outside its card ${JSON.stringify(cardBox)}`).toBe(true)
    // and nothing else in the card spills over its edges (text that cannot wrap, the id)
    for (const part of ['header h2', 'header .chips', ':scope > p', 'footer code']) {
      const el = card.locator(part)
      const box = (await el.boundingBox())!
      expect(inside(box, cardBox), `${width}px: ${part} of ${id} lies outside its card`).toBe(true)
    }
    const overflow = await card.evaluate((el) => el.scrollWidth - el.clientWidth)
    expect(overflow, `${width}px: card ${id} overflows by ${overflow}px`).toBeLessThanOrEqual(0)
  }
  // the cards stay within the window: no sideways scrolling
  const sideways = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
  expect(sideways, `${width}px: the page scrolls sideways by ${sideways}px`).toBeLessThanOrEqual(0)
}

for (const width of WIDTHS) {
  test(`pipeline cards hold their buttons at ${width}px`, async ({ page }) => {
    await page.setViewportSize({ width, height: 900 })
    await page.route('**/api/v1/pipelines', async (route) => {
      const response = await route.fetch()
      const body = (await response.json()) as { items: unknown[] }
      await route.fulfill({ response, json: { ...body, items: [...body.items, LONG] } })
    })
    await page.goto(`${BASE()}/pipelines`)
    await expect(page.getByTestId('launch-weather_forecaster')).toBeVisible()
    await expect(page.getByTestId(`pipeline-${LONG.id}`)).toBeVisible()
    await shot(page, `20-pipelines-${width}`)
    await checkCards(page, width)
  })
}
