/**
 * The one catalog of errors a tracker sends to clients. Each has a stable `code` (for tests,
 * logs and metrics) and a message fit to put on the wire as a BitTorrent "failure reason".
 */

export const ERRORS = {
  INVALID_INFO_HASH: 'invalid info_hash',
  INVALID_PEER_ID: 'invalid peer_id',
  INVALID_PORT: 'invalid port',
  INVALID_EVENT: 'invalid event',
  INVALID_NUMBER: 'invalid numeric parameter',
  INVALID_QUERY: 'malformed query string',
  INVALID_ACTION: 'invalid action',
  INVALID_PACKET: 'malformed packet',
  INVALID_JSON: 'invalid JSON',
  INVALID_OFFER: 'invalid offer',
  INVALID_ANSWER: 'invalid answer',
  INVALID_TO_PEER_ID: 'invalid to_peer_id (required with answer)',
  URL_TOO_LONG: 'request URL too long',
  TOO_MANY_PARAMS: 'too many query parameters',
  TOO_MANY_HASHES: 'too many info_hash values in scrape',
  TOO_MANY_OFFERS: 'too many offers',
  TOO_MANY_SWARMS: 'too many swarms on this connection',
  PEER_ID_BOUND: 'peer_id is bound to another connection',
  PEER_ID_CHANGED: 'peer_id differs from the one this connection announced',
  UNKNOWN_OFFER: 'answer does not match an offer relayed to this peer',
  UNKNOWN_PEER: 'no peer with that to_peer_id',
  FULL_SCRAPE_DISABLED: 'scrape requires info_hash',
  RATE_LIMITED: 'too many requests from your address; slow down',
  TORRENT_DISALLOWED: 'disallowed torrent',
  TORRENT_NOT_ALLOWED: 'torrent not allowed on this tracker',
  CLIENT_NOT_ALLOWED: 'client not allowed on this tracker',
  FILTER_FAILED: 'torrent filter failed',
  PASSKEY_REQUIRED: 'this tracker is private: announce with your passkey in the URL (/announce/<passkey>)',
  UNKNOWN_PASSKEY: 'unknown passkey',
  UDP_SCRAPE_PRIVATE: 'this tracker is private: a UDP scrape cannot carry a passkey, scrape over HTTP at /scrape/<passkey>',
  STORE_UNAVAILABLE: 'tracker storage unavailable, try again later',
  NOT_FOUND: 'not found',
  WORKERS_BUSY: 'tracker busy, try again later',
  INTERNAL: 'internal tracker error'
} as const

export type ErrorCode = keyof typeof ERRORS

export class TrackerError extends Error {
  readonly code: ErrorCode
  /** Whether `message` may be sent to the client (false: send the catalog text instead). */
  readonly expose: boolean

  constructor (code: ErrorCode, message: string = ERRORS[code], expose = true) {
    super(message)
    this.name = 'TrackerError'
    this.code = code
    this.expose = expose
  }

  /** Text for the wire. */
  get clientMessage (): string {
    return this.expose ? this.message : ERRORS[this.code]
  }
}

export function trackerError (code: ErrorCode, detail?: string): TrackerError {
  return new TrackerError(code, detail === undefined ? ERRORS[code] : `${ERRORS[code]}: ${detail}`)
}

/** Any thrown value as a TrackerError; unexpected ones keep their text for logs, not for clients. */
export function internalError (err: unknown): TrackerError {
  if (err instanceof TrackerError) return err
  return new TrackerError('INTERNAL', err instanceof Error ? err.message : String(err), false)
}

/**
 * A Server option whose value cannot be used (a malformed address range, unusable TLS files):
 * thrown by the constructor, before anything starts. A TypeError, as Node's own bad-argument
 * errors are; the CLI reports it like a bad flag (exit 2).
 */
export class OptionError extends TypeError {}
