// Starts a real `azuraforge up` on a free port with a temporary data folder, serving the built
// dashboard (dist/), and stops it after the run. Tests read its address from E2E_BASE_URL.
// With E2E_WORKERS=N it starts the distributed topology instead: `azuraforge api` and N
// `azuraforge worker` processes (Celery on the Redis at AZURAFORGE_REDIS_URL, default
// 127.0.0.1:6379, on a queue and event channels of this run's own) sharing the data folder.
// Authentication: before `up` it creates an admin (AZURAFORGE_E2E_USER, default e2e-admin;
// password AZURAFORGE_E2E_PASSWORD, generated when unset) with `azuraforge users create`, then
// signs in through the login page once and saves the session for every test (storageState).
import { chromium, type FullConfig } from '@playwright/test'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync, mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { STORAGE_STATE } from './auth'

const here = dirname(fileURLToPath(import.meta.url))
const dashboard = resolve(here, '..')
const repo = resolve(dashboard, '..')

/** Runs the CLI to the end with `input` on stdin; throws with its output when it fails. */
function runCli(cmd: string, args: string[], env: NodeJS.ProcessEnv, input: string): Promise<void> {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { cwd: repo, env, stdio: ['pipe', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d) => (output += String(d)))
    child.stderr.on('data', (d) => (output += String(d)))
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
    child.on('error', (err) => {
      clearTimeout(timer)
      fail(err)
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      if (code === 0) ok()
      else fail(new Error(`\`azuraforge ${args.slice(-5).join(' ')}\` exited with ${code}:\n${output.slice(-4000)}`))
    })
    child.stdin.end(input)
  })
}

/** Signs in through the dashboard's login page and saves the session cookie for the tests. */
async function signIn(config: FullConfig, url: string, username: string, password: string): Promise<void> {
  const browser = await chromium.launch(config.projects[0]?.use?.launchOptions)
  try {
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(`${url}/pipelines`)
    await page.getByTestId('login-username').fill(username)
    await page.getByTestId('login-password').fill(password)
    await page.getByTestId('login-submit').click()
    try {
      await page.getByTestId('user-menu').waitFor({ timeout: 30_000 })
    } catch {
      const error = await page.getByTestId('login-error').textContent().catch(() => null)
      throw new Error(`e2e sign-in as ${username} failed${error ? `: ${error}` : ''}`)
    }
    await context.storageState({ path: STORAGE_STATE })
  } finally {
    await browser.close()
  }
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', fail)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => ok(port))
    })
  })
}

async function waitHealthy(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 120_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}:\n${log()}`)
    try {
      const r = await fetch(`${url}/api/v1/health`)
      if (r.ok || r.status === 401) return // listening (401: health behind the login)
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error(`the server did not answer at ${url} within 120 s:\n${log()}`)
}

export default async function globalSetup(config: FullConfig): Promise<() => Promise<void>> {
  if (!existsSync(join(dashboard, 'dist', 'index.html'))) {
    throw new Error('dashboard/dist is missing: run `npm run build` first (`npm run e2e` does)')
  }
  mkdirSync(join(dashboard, 'e2e', 'screenshots'), { recursive: true })
  const dataDir = mkdtempSync(join(tmpdir(), 'azuraforge-e2e-'))
  const port = await freePort()
  const venvBin = join(repo, '.venv', 'bin', 'azuraforge')
  const [cmd, args] = existsSync(venvBin)
    ? [venvBin, [] as string[]]
    : ['uv', ['run', '--locked', 'azuraforge']]
  const workers = Number(process.env.E2E_WORKERS || 0)
  const tag = randomBytes(4).toString('hex')
  const env: NodeJS.ProcessEnv = { ...process.env, AZURAFORGE_DATA_DIR: dataDir, PYTHONUNBUFFERED: '1' }
  if (workers > 0) {
    env.AZURAFORGE_REDIS_URL = process.env.AZURAFORGE_REDIS_URL || 'redis://127.0.0.1:6379/0'
    env.AZURAFORGE_CELERY_QUEUE = `e2e-${tag}`
    env.AZURAFORGE_EVENT_CHANNEL_PREFIX = `e2e-${tag}:`
    env.AZURAFORGE_DASHBOARD_DIR = join(dashboard, 'dist')
  }
  const username = process.env.AZURAFORGE_E2E_USER || 'e2e-admin'
  const password = process.env.AZURAFORGE_E2E_PASSWORD || randomBytes(18).toString('base64url')
  process.env.AZURAFORGE_E2E_USER = username
  process.env.AZURAFORGE_E2E_PASSWORD = password
  // the admin first, in the same data folder `up` then serves (the password never in argv)
  try {
    await runCli(cmd, [...args, 'users', 'create', username, '--admin', '--password-stdin'], env, `${password}\n`)
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true })
    throw err
  }
  let output = ''
  const start = (argv: string[]) => {
    const proc = spawn(cmd, [...args, ...argv], {
      cwd: repo,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, so teardown stops the training children too
    })
    proc.stdout?.on('data', (d) => (output += String(d)))
    proc.stderr?.on('data', (d) => (output += String(d)))
    return proc
  }
  const children =
    workers > 0
      ? [
          start(['api', '--port', String(port)]),
          ...Array.from({ length: workers }, (_, i) =>
            start(['worker', '--concurrency', '1', '--name', `e2e${i + 1}@%h`, '--loglevel', 'WARNING']),
          ),
        ]
      : [start(['up', '--port', String(port), '--dashboard', join(dashboard, 'dist')])]
  const stop = async () => {
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      for (const child of children) {
        if (child.pid && child.exitCode === null) {
          try {
            process.kill(-child.pid, signal)
          } catch {
            /* already gone */
          }
        }
      }
      if (signal === 'SIGTERM') await new Promise((r) => setTimeout(r, 1500))
    }
    rmSync(dataDir, { recursive: true, force: true })
    rmSync(STORAGE_STATE, { force: true })
  }
  const url = `http://127.0.0.1:${port}`
  try {
    await waitHealthy(url, children[0], () => output.slice(-4000))
  } catch (err) {
    await stop()
    throw err
  }
  process.env.E2E_BASE_URL = url
  process.env.E2E_DATA_DIR = dataDir
  try {
    mkdirSync(dirname(STORAGE_STATE), { recursive: true })
    await signIn(config, url, username, password)
  } catch (err) {
    await stop()
    throw err
  }
  return stop
}
