// A WebSocket stand-in a test drives by hand, for the sockets that take a `factory`.
import type { SocketLike } from '../api/socket'

export class FakeSocket implements SocketLike {
  onopen: ((ev: Event) => unknown) | null = null
  onmessage: ((ev: MessageEvent) => unknown) | null = null
  onclose: ((ev: CloseEvent) => unknown) | null = null
  onerror: ((ev: Event) => unknown) | null = null
  closedByClient = false
  constructor(
    readonly url: string,
    readonly protocols?: string[],
  ) {}
  open() {
    this.onopen?.(new Event('open'))
  }
  send(obj: unknown) {
    this.onmessage?.({ data: JSON.stringify(obj) } as MessageEvent)
  }
  drop(code = 1006) {
    this.onclose?.({ code } as CloseEvent)
  }
  close() {
    this.closedByClient = true
  }
}

/** A factory that keeps every socket it made, newest last. */
export function socketFactory() {
  const sockets: FakeSocket[] = []
  const factory = (url: string, protocols?: string[]) => {
    const socket = new FakeSocket(url, protocols)
    sockets.push(socket)
    return socket
  }
  return { sockets, factory }
}
