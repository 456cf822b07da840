// The "signed in?" gate every API call goes through. Any 401 from the API (or a socket closed
// with 4401) marks a login as required; the app then shows the login page, and the requests
// that met the 401 wait here and run again once the user has signed in, so the page they were
// on carries on where it was.

type Listener = () => void

let required = false
let waiters: (() => void)[] = []
const listeners = new Set<Listener>()

function notify(): void {
  for (const fn of [...listeners]) fn()
}

/** True while the login page should be shown. */
export function isLoginRequired(): boolean {
  return required
}

/** For useSyncExternalStore: called whenever isLoginRequired() may have changed. */
export function subscribeLogin(fn: Listener): () => void {
  listeners.add(fn)
  return () => listeners.delete(fn)
}

/**
 * Asks for a login and resolves once someone has signed in. Rejects with an AbortError when
 * `signal` aborts first (the page that asked went away).
 */
export function requireLogin(signal?: AbortSignal): Promise<void> {
  if (!required) {
    required = true
    notify()
  }
  return waitForLogin(signal)
}

/** Resolves at the next successful login (at once when none is required). */
export function waitForLogin(signal?: AbortSignal): Promise<void> {
  if (!required) return Promise.resolve()
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DOMException('aborted', 'AbortError'))
      return
    }
    const done = () => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }
    const onAbort = () => {
      waiters = waiters.filter((w) => w !== done)
      reject(new DOMException('aborted', 'AbortError'))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    waiters.push(done)
  })
}

/** A login succeeded: hide the login page and let the waiting requests run again. */
export function loginSucceeded(): void {
  const pending = waiters
  waiters = []
  required = false
  notify()
  pending.forEach((w) => w())
}

/** Back to the start (tests). */
export function resetSession(): void {
  required = false
  waiters = []
  notify()
}
