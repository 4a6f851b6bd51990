/**
 * Values the codecs produce and consume. Identities are "binary strings": one character per byte
 * (code 0–255), the form the WebTorrent protocol already uses on the wire, so map keys need no
 * hex conversion. Hex appears only in the public API.
 */

/** A string whose every character is one byte (latin1). Info hashes and peer ids are 20 long. */
export type BinaryString = string

/** Announce events, numbered as in BEP 15 (UDP) with `paused` (BEP 21) appended. */
export const EVENT_NONE = 0
export const EVENT_COMPLETED = 1
export const EVENT_STARTED = 2
export const EVENT_STOPPED = 3
export const EVENT_PAUSED = 4
export type AnnounceEvent = 0 | 1 | 2 | 3 | 4

/** The names HTTP and WS use for each event (index = AnnounceEvent). */
export const EVENT_WIRE_NAMES = ['', 'completed', 'started', 'stopped', 'paused'] as const

/** A decoded announce, whatever the transport. Numbers are already range-checked. */
export interface AnnounceRequest {
  infoHash: BinaryString
  peerId: BinaryString
  /** The peer's listening port (1–65535; 0 only over WS, where there is none). */
  port: number
  uploaded: number
  downloaded: number
  /** Bytes left; 0 means seeder. Unknown/absent: Infinity (a leecher). */
  left: number
  event: AnnounceEvent
  /** Peers wanted; -1 when the client did not say (the tracker's default applies). */
  numwant: number
  /** HTTP `compact=1` (UDP and WS: always their own form). */
  compact: boolean
  /** HTTP `no_peer_id=1`. */
  noPeerId: boolean
  /** Client key (HTTP `key`, UDP key as decimal); undefined when absent. */
  key?: string
  /** An address the client claims (HTTP `ip`, UDP `ip` field); used only if the server allows. */
  ip?: string
  /** HTTP `trackerid`. */
  trackerId?: string
}

export interface ScrapeRequest {
  /** Info hashes asked for; empty means "all" (a full scrape). */
  infoHashes: BinaryString[]
}

/**
 * One peer in an answer. `addr` is the compact form (BEP 23/7): 4-byte IPv4 or 16-byte IPv6
 * address followed by the 2-byte port, big-endian, as a binary string of 6 or 18 characters.
 */
export interface PeerEntry {
  peerId: BinaryString
  addr: BinaryString
}

export interface ScrapeEntry {
  infoHash: BinaryString
  /** Seeders. */
  complete: number
  /** Leechers. */
  incomplete: number
  /** `completed` events ever seen. */
  downloaded: number
}
