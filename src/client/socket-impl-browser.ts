/**
 * The WebSocket implementation of the client in the browser: the global WebSocket. Swapped in
 * for socket-impl.ts by the browser bundle (scripts/build-browser.mjs) and the package.json
 * `browser` field; exports the same names.
 */
import type { ClientSocket } from './socket-pool.js'

export function openSocket (url: string, _userAgent: string | undefined): ClientSocket {
  // Browsers set their own User-Agent; a page cannot choose it.
  return new WebSocket(url) as unknown as ClientSocket
}

/** Browsers have no abortive close: start the closing handshake and forget the socket. */
export function abortSocket (socket: ClientSocket): void {
  try { socket.close() } catch {}
}
