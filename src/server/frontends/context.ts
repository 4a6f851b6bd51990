import type { TrackerError } from '../../errors.js'
import { formatAddr } from '../../protocol/common/address.js'
import { binaryToHex } from '../../protocol/common/binary.js'
import type { AnnounceEvent, AnnounceRequest, BinaryString, ScrapeEntry } from '../../protocol/common/types.js'
import type { Passkeys } from '../core/passkeys.js'
import type { Signalling } from '../core/signalling.js'
import type { TrackerCore } from '../core/tracker.js'
import type { RequestMetrics } from '../stats/metrics.js'
import type { RateLimiter, StrikeTable } from './abuse.js'

/**
 * The request parameters handed to `filter` and to the announce events, in the reference
 * package's shape (hex ids, snake_case, custom query params kept).
 */
export interface RequestParams {
  type: 'http' | 'udp' | 'ws'
  action: 'announce' | 'scrape'
  info_hash: string
  peer_id: string
  port: number
  ip: string
  addr: string
  left: number
  uploaded: number
  downloaded: number
  event: 'started' | 'completed' | 'stopped' | 'paused' | 'update'
  numwant: number
  compact?: number
  key?: string
  headers?: Record<string, string | string[] | undefined>
  /** BEP 41 URL data of a UDP request (path and query of the announce URL). */
  url?: string
  [extra: string]: unknown
}

export interface FrontendLimits {
  http?: RateLimiter
  udp?: RateLimiter
  ws?: RateLimiter
  /** Sources of bad UDP connection ids, ignored for a while once they send too many. */
  udpBadIds?: StrikeTable
}

/** What a frontend needs from the server: the core, the policy hooks and the event sinks. */
export interface FrontendContext {
  readonly core: TrackerCore
  readonly signalling: Signalling
  /** Request counters: each frontend counts every request it finishes, once. */
  readonly metrics: RequestMetrics
  /** Whether a request that came from this socket address may name its client in X-Forwarded-For. */
  trustsProxy (socketIp: string): boolean
  /** Per-address abuse controls in force (absent: off). */
  readonly limits: FrontendLimits
  /** Use the address a client claims (HTTP `ip`, UDP `ip` field) instead of the source's. */
  readonly acceptClientIp: boolean
  /** Private tracker mode: the valid passkeys and their accounting; undefined when open. */
  readonly passkeys: Passkeys | undefined
  /** Seconds, refreshed by the server's timer. */
  now (): number
  /** Whether `filter` or announce-event listeners need a params object built. */
  needsParams (): boolean
  /**
   * null when allowed; a TrackerError when the access list refuses (synchronous, cheap);
   * otherwise the `filter`'s verdict as a Promise (null: allowed).
   */
  check (infoHash: BinaryString, peerId: BinaryString, params: RequestParams | undefined): null | TrackerError | Promise<TrackerError | null>
  /** The access list's refusal of a scrape naming a torrent it does not serve, or null. */
  checkScrape (infoHashes: readonly BinaryString[]): TrackerError | null
  /** A full scrape's entries without the torrents the access list does not serve. */
  visible (entries: ScrapeEntry[]): ScrapeEntry[]
  warning (err: Error): void
  announced (event: AnnounceEvent, addr: string, params: RequestParams | undefined): void
}

/** Server event name for each AnnounceEvent (update, complete, start, stop, and pause → update). */
export const EVENT_NAMES = ['update', 'complete', 'start', 'stop', 'update'] as const
export const PARAM_EVENT_NAMES = ['update', 'completed', 'started', 'stopped', 'paused'] as const

/** The announce fields every transport's params share; each frontend adds its own extras. */
export function announceParams (type: RequestParams['type'], a: AnnounceRequest, ip: string, port: number): RequestParams {
  return {
    type,
    action: 'announce',
    info_hash: binaryToHex(a.infoHash),
    peer_id: binaryToHex(a.peerId),
    port,
    ip,
    addr: formatAddr(ip, port),
    left: a.left,
    uploaded: a.uploaded,
    downloaded: a.downloaded,
    event: PARAM_EVENT_NAMES[a.event],
    numwant: a.numwant,
    key: a.key
  }
}

/**
 * The action and passkey of a private tracker's path (query cut off): `/announce/<key>` or
 * `/scrape/<key>`, and also `/<key>/announce` or `/<key>/scrape` — the form whose last segment is
 * `announce`, from which clients derive the scrape URL (BEP 48). A prefix before either form is
 * allowed (a tracker mounted under `/tracker/`). undefined when the path has neither form.
 */
export function passkeyInPath (path: string): { action: 'announce' | 'scrape', key: string } | undefined {
  const q = path.indexOf('?')
  const p = q === -1 ? path : path.slice(0, q)
  const m = KEY_LAST.exec(p)
  if (m !== null) return { action: m[1] as 'announce' | 'scrape', key: m[2] }
  const n = KEY_FIRST.exec(p)
  if (n !== null) return { action: n[2] as 'announce' | 'scrape', key: n[1] }
  return undefined
}
const KEY_LAST = /\/(announce|scrape)\/([^/]+)$/
const KEY_FIRST = /\/([^/]+)\/(announce|scrape)$/
