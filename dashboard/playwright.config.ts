import { defineConfig } from '@playwright/test'
import { STORAGE_STATE } from './e2e/auth'

// End-to-end tests against a real `azuraforge up` (started by e2e/global-setup.ts on a free
// port with a temporary data folder) in Debian's Chromium; never a downloaded browser. Every
// test starts signed in as the admin global setup created (its saved session cookie).
export default defineConfig({
  testDir: './e2e',
  testMatch: '*.spec.ts',
  globalSetup: './e2e/global-setup.ts',
  fullyParallel: false,
  workers: 1, // one embedded worker runs one training at a time
  retries: 0,
  timeout: 180_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  outputDir: './test-results',
  use: {
    viewport: { width: 1280, height: 900 },
    storageState: STORAGE_STATE,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
    trace: 'off',
    screenshot: 'only-on-failure',
  },
})
