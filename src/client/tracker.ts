/**
 * The contract between `Client` (client.ts) and its per-transport tracker classes
 * (http-tracker.ts, udp-tracker.ts, ws-tracker.ts). Browser-safe: no Node-only imports.
 */
import type { AnnounceEvent, BinaryString } from '../protocol/common/types.js'

/** What a tracker needs from the Client that owns it. */
export interface TrackerOwner {
  /** 20-byte info hash and peer id as binary strings (one char per byte). */
  readonly infoHashBinary: BinaryString
  readonly peerIdBinary: BinaryString
  /** Hex forms, as the public API reports them. */
  readonly infoHash: string
  readonly peerId: string
  /** The torrent client's listening port (0 in the browser). */
  readonly port: number
  readonly userAgent: string | undefined
  /** RTCPeerConnection configuration and implementation (WebSocket trackers only). */
  readonly rtcConfig: unknown
  readonly wrtc: unknown
  /** Defaults for a timer-driven announce: `getAnnounceOpts()` merged over the last values. */
  defaultAnnounceOpts (): AnnounceOpts
  /** Events surface on the Client: 'update', 'peer', 'scrape', 'warning'. */
  emit (event: string, ...args: unknown[]): boolean
}

/**
 * Options of `start/stop/complete/update(opts)`; unknown keys are custom params: HTTP query
 * params, fields of their own in WebSocket announces.
 */
export interface AnnounceOpts {
  uploaded?: number
  downloaded?: number
  left?: number
  numwant?: number
  event?: AnnounceEvent
  [custom: string]: unknown
}

/** The AnnounceOpts keys the trackers write as their protocol's own fields (not custom params). */
export const ANNOUNCE_OPT_NAMES: ReadonlySet<string> = new Set(['uploaded', 'downloaded', 'left', 'numwant', 'event', 'compact'])

export interface ScrapeOpts {
  /** Extra info hashes (binary strings) for a multi-scrape; default: the owner's. */
  infoHashes?: BinaryString[]
}

/** One tracker URL of a Client. */
export interface TrackerConnection {
  readonly announceUrl: string
  announce (opts: AnnounceOpts): void
  scrape (opts?: ScrapeOpts): void
  /** Re-announce every `ms` (0 or undefined: the tracker's own interval). */
  setInterval (ms?: number): void
  destroy (cb?: (err?: Error | null) => void): void
}
