// Starts a real `azuraforge up` on a free port with a temporary data folder, serving the built
// dashboard (dist/), and stops it after the run. Tests read its address from E2E_BASE_URL.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const dashboard = resolve(here, '..')
const repo = resolve(dashboard, '..')

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
    if (child.exitCode !== null) throw new Error(`azuraforge up exited with ${child.exitCode}:\n${log()}`)
    try {
      const r = await fetch(`${url}/api/v1/health`)
      if (r.ok) return
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error(`azuraforge up did not answer at ${url} within 120 s:\n${log()}`)
}

export default async function globalSetup(): Promise<() => Promise<void>> {
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
  let output = ''
  const child = spawn(cmd, [...args, 'up', '--port', String(port), '--dashboard', join(dashboard, 'dist')], {
    cwd: repo,
    env: { ...process.env, AZURAFORGE_DATA_DIR: dataDir, PYTHONUNBUFFERED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so teardown stops the training children too
  })
  child.stdout?.on('data', (d) => (output += String(d)))
  child.stderr?.on('data', (d) => (output += String(d)))
  const url = `http://127.0.0.1:${port}`
  await waitHealthy(url, child, () => output.slice(-4000))
  process.env.E2E_BASE_URL = url
  process.env.E2E_DATA_DIR = dataDir
  return async () => {
    if (child.pid && child.exitCode === null) {
      try {
        process.kill(-child.pid, 'SIGTERM')
      } catch {
        /* already gone */
      }
      await new Promise((r) => setTimeout(r, 1500))
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {
        /* stopped */
      }
    }
    rmSync(dataDir, { recursive: true, force: true })
  }
}
