/**
 * The WebSocket implementation of the client in Node: the `ws` package. The browser bundle
 * replaces this module with socket-impl-browser.ts (the global WebSocket); both export the same
 * names. This is the only client module that imports `ws`.
 */
import WebSocket from 'ws'
import type { ClientSocket } from './socket-pool.js'

/** Largest tracker message accepted, in bytes (an announce with a few offers is a few KB). */
const MAX_PAYLOAD = 1024 * 1024
/** Longest wait for the opening handshake, in ms. */
const HANDSHAKE_TIMEOUT_MS = 15_000

export function openSocket (url: string, userAgent: string | undefined): ClientSocket {
  const headers = userAgent !== undefined ? { 'user-agent': userAgent } : undefined
  return new WebSocket(url, { maxPayload: MAX_PAYLOAD, handshakeTimeout: HANDSHAKE_TIMEOUT_MS, headers }) as unknown as ClientSocket
}

/** Drop the connection now, without waiting for the closing handshake. */
export function abortSocket (socket: ClientSocket): void {
  (socket as unknown as WebSocket).terminate()
}
