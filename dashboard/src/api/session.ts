// The "signed in?" gate every API call goes through. Any 401 from the API (or a socket closed
// with 4401) marks a login as required; the app then shows the login page, and the requests
// that met the 401 wait here and run again once the user has signed in, so the page they were
// on carries on where it was.

type Listener = () => void

interface Waiter {
  resume: () => void
  drop: () => void
}

let required = false
let waiters: Waiter[] = []
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
    const waiter: Waiter = {
      resume: () => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      },
      drop: () => {
        signal?.removeEventListener('abort', onAbort)
        reject(new DOMException('signed in as someone else: not sent again', 'AbortError'))
      },
    }
    const onAbort = () => {
      waiters = waiters.filter((w) => w !== waiter)
      reject(new DOMException('aborted', 'AbortError'))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    waiters.push(waiter)
  })
}

/**
 * A login succeeded: hide the login page and let the waiting requests run again; with
 * `sameUser` false (someone else signed in) they are dropped instead, so nothing the last user
 * asked for (a delete, a launch) runs under the new user's name.
 */
export function loginSucceeded(sameUser = true): void {
  const pending = waiters
  waiters = []
  required = false
  notify()
  pending.forEach((w) => (sameUser ? w.resume() : w.drop()))
}

/** Back to the start (tests). */
export function resetSession(): void {
  required = false
  waiters = []
  notify()
}
