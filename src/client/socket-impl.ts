/**
 * The WebSocket implementation of the client in Node: the `ws` package. The browser bundle
 * replaces this module with socket-impl-browser.ts (the global WebSocket); both export the same
 * names. This is the only client module that imports `ws`.
 */
import WebSocket from 'ws'
import { CLIENT_WS_HANDSHAKE_TIMEOUT_MS, CLIENT_WS_MAX_PAYLOAD } from '../constants.js'
import type { ClientSocket } from './socket-pool.js'


export function openSocket (url: string, userAgent: string | undefined): ClientSocket {
  const headers = userAgent !== undefined ? { 'user-agent': userAgent } : undefined
  return new WebSocket(url, { maxPayload: CLIENT_WS_MAX_PAYLOAD, handshakeTimeout: CLIENT_WS_HANDSHAKE_TIMEOUT_MS, headers }) as unknown as ClientSocket
}

/** Drop the connection now, without waiting for the closing handshake. */
export function abortSocket (socket: ClientSocket): void {
  (socket as unknown as WebSocket).terminate()
}
