import type { AnnounceEvent, BinaryString, ScrapeEntry } from '../../protocol/common/types.js'
import type { TrackerStats } from '../stats/peer-stats.js'

/**
 * The one interface between the tracker core and swarm state. The in-memory store is the
 * default; a networked store (Redis) plugs in behind the same contract.
 *
 * Contract (every store passes test/server/store/conformance.ts):
 * - A swarm is identified by its 20-byte info hash (binary string). It exists while it has
 *   peers; when its last peer leaves it is dropped, but its `downloaded` count is kept.
 * - A peer is identified within a swarm by `key`: its compact address for HTTP/UDP peers (so no
 *   one can overwrite another's entry by reusing its peer id), its peer id for WebSocket peers.
 * - Seeders are peers whose `left` is 0. `complete` counts seeders, `incomplete` leechers.
 *   A `completed` event counts one download when it turns a leecher into a seeder, and when it
 *   brings in a peer not yet in the swarm with `left` 0 (it finished elsewhere: its earlier
 *   announces expired or went to another tracker). A seeder repeating `completed` counts nothing,
 *   and neither does `left` reaching 0 in an announce without `completed`.
 * - `stopped` removes the peer. Any other event adds or refreshes it.
 * - An announce returns min(`numwant`, eligible) distinct peers picked uniformly at random among
 *   the eligible ones: those whose kind is in `want` (IPv4, IPv6 and WebSocket peers are kept
 *   apart), never the announcing peer itself, and to a seeder only leechers.
 * - HTTP/UDP peers silent for longer than `peerTtl` seconds are removed by `sweep`; WebSocket
 *   peers live as long as their connection (the WS frontend removes them when it closes).
 * - Time is integer seconds, passed in, so tests never sleep.
 * - A store may reject (networked stores, when their backend is away): the rejection is a
 *   TrackerError fit for clients (STORE_UNAVAILABLE), never a hang (calls are time-bounded).
 *
 * Stores whose state lives elsewhere (Redis, shared by several instances) cannot answer the
 * synchronous members (`counts`, `swarmInfo`, `infoHashes`) from the source: they serve a
 * snapshot, reloaded by `refresh()`, which the server calls periodically. Their counts are
 * exact as of the last refresh; their swarm view may be partial (a bounded number of swarms).
 */
export interface SwarmStore {
  announce (a: StoreAnnounce, now: number): StoreAnnounceResult | Promise<StoreAnnounceResult>
  scrape (infoHashes: readonly BinaryString[]): ScrapeEntry[] | Promise<ScrapeEntry[]>
  /** Every known torrent (full scrape), bounded by `limit`. */
  scrapeAll (limit: number): ScrapeEntry[] | Promise<ScrapeEntry[]>
  /**
   * Removes one peer (WS socket closed). Returns whether it was there. `conn`, when given: the
   * closing socket's number; a store shared by several nodes (worker threads, Redis instances)
   * may keep an entry a connection of another node holds, and refuse (PEER_ID_BOUND) a WS
   * announce for one. Within one node the signalling binds each peer id to one socket.
   */
  remove (infoHash: BinaryString, key: BinaryString, conn?: number): boolean | Promise<boolean>
  /**
   * Expires silent HTTP/UDP peers. Works incrementally: visits at most `budget` peers per call
   * and resumes where it stopped; returns true when a full pass has completed.
   */
  sweep (now: number, budget: number): boolean | Promise<boolean>
  /** The live view behind `server.torrents`. */
  swarmInfo (infoHash: BinaryString): SwarmInfo | undefined
  infoHashes (): IterableIterator<BinaryString>
  /** Counters kept on every change — never computed by walking peers. */
  readonly counts: StoreCounts
  /**
   * Optional: whether the store can serve requests now (a networked store returns false while
   * its connection is down). Absent means always ready. `GET /health` answers 503 when false.
   */
  ready? (): boolean
  close (): void | Promise<void>

  // ---- State file (restarts without loss). Optional so a store without them still plugs in;
  // the server refuses `stateFile` with a store that lacks any of them.

  /** Torrents without peers remembered for their `downloaded` count: [info hash, downloaded]. */
  retired? (): IterableIterator<[BinaryString, number]>
  /**
   * Puts back one HTTP/UDP peer saved earlier, as if it had last announced at `peer.lastSeen`:
   * creates the swarm if needed, counts no download, fires no event. A peer already there under
   * `key` is left as it is (a live announce beats a saved one).
   */
  restorePeer? (infoHash: BinaryString, key: BinaryString, peer: Omit<PeerView, 'conn'>): void
  /** Sets the `downloaded` count of a torrent, live or retired (a retired one is remembered). */
  setDownloaded? (infoHash: BinaryString, downloaded: number): void
  /**
   * Optional: a walk over the live torrents that may last many event-loop turns while the store
   * changes (the state file is saved in slices). Without it a save walks `infoHashes()`, which
   * may name a torrent dropped and re-created meanwhile twice, or miss it.
   */
  torrentWalk? (): TorrentWalk

  // ---- Compact fast paths (optional, synchronous; the UDP frontend uses them when present and
  // falls back to `announce` / `scrape` otherwise — see announceCompact / scrapeCompact below).

  /**
   * `announce`, with the picked peers written as compact addresses (6 bytes each for WANT_V4,
   * 18 for WANT_V6: `a.want` names exactly one of the two) into `out` from `offset` instead of
   * returned as StorePeers — same update, same peers, same counts. `out` has room for
   * `a.numwant` addresses. The result object may be reused by the next call, and the store must
   * not keep `a` (callers may reuse it).
   */
  announceCompact? (a: StoreAnnounce, now: number, out: Uint8Array, offset: number): CompactAnnounceResult
  /** One torrent's scrape entry as BEP 15 writes it: seeders, completed, leechers, u32 big-endian. */
  scrapeCompact? (infoHash: BinaryString, out: Uint8Array, offset: number): void
  /**
   * Optional, with the two above: whether they may be called for this info hash now. A store
   * that holds only part of the swarms in this thread (the sharded store of `--workers`) serves
   * the compact paths for its own swarms only; callers take `announce` / `scrape` for the others.
   * Absent: every hash.
   */
  compactServes? (infoHash: BinaryString): boolean

  /**
   * Optional: the reference's `/stats` numbers over unique peer ids (`clients` included), for a
   * store whose server cannot keep them itself from a StoreListener (the sharded store of
   * `--workers`). undefined: not kept.
   */
  trackerStats? (torrents: number, activeTorrents: number): TrackerStats | undefined

  /** Reloads the snapshot behind the synchronous members (stores that keep one). */
  refresh? (): Promise<void>
  /** Connects; the server awaits it before listening. Rejects when the backend is unreachable. */
  connect? (): Promise<void>
}

/**
 * A walk over the torrents (`SwarmStore.torrentWalk`). `next` names each torrent at most once,
 * and, by the time it returns undefined, every torrent live then has been named (one created
 * behind the walk is named at the end). The caller reads a named torrent before the store changes
 * again. `close` when done or abandoned (the store stops tracking changes for it).
 */
export interface TorrentWalk {
  next (): BinaryString | undefined
  /** The torrent `next` named last, as `swarmInfo` would give it (without a second lookup). */
  info (): SwarmInfo
  close (): void
}

/** Peer kinds: announces only ever see peers of the kinds they ask for. */
export const KIND_V4 = 0
export const KIND_V6 = 1
export const KIND_WS = 2
export type PeerKind = 0 | 1 | 2
/** Bit masks for `StoreAnnounce.want`. */
export const WANT_V4 = 1 << KIND_V4
export const WANT_V6 = 1 << KIND_V6
export const WANT_WS = 1 << KIND_WS

export interface StoreAnnounce {
  infoHash: BinaryString
  /** Identity within the swarm: compact address (HTTP/UDP) or peer id (WS). */
  key: BinaryString
  peerId: BinaryString
  /** Compact address (6 or 18 chars) of the peer, or of the WS socket's remote end. */
  addr: BinaryString
  kind: PeerKind
  /** WS connection number; 0 for HTTP/UDP. */
  conn: number
  event: AnnounceEvent
  seeder: boolean
  /** Already clamped: 0 ≤ numwant ≤ the server's cap. */
  numwant: number
  /** Which kinds may be returned (WANT_* bits). */
  want: number
}

export interface StoreAnnounceResult {
  complete: number
  incomplete: number
  downloaded: number
  peers: StorePeer[]
}

export interface CompactAnnounceResult {
  complete: number
  incomplete: number
  downloaded: number
  /** Compact addresses written. */
  peers: number
}

/**
 * `store.announceCompact`, or the same through `store.announce` for a store without it: the
 * peers' addresses written into `out` from `offset`. `a.want` must be WANT_V4 or WANT_V6 alone.
 */
export function announceCompact (
  store: SwarmStore, a: StoreAnnounce, now: number, out: Uint8Array, offset: number
): CompactAnnounceResult | Promise<CompactAnnounceResult> {
  if (store.announceCompact !== undefined && (store.compactServes === undefined || store.compactServes(a.infoHash))) return store.announceCompact(a, now, out, offset)
  const r = store.announce(a, now)
  return isThenable(r) ? r.then(v => writeCompact(v, out, offset)) : writeCompact(r, out, offset)
}

function writeCompact (r: StoreAnnounceResult, out: Uint8Array, offset: number): CompactAnnounceResult {
  let o = offset
  for (const p of r.peers) {
    for (let k = 0; k < p.addr.length; k++) out[o + k] = p.addr.charCodeAt(k)
    o += p.addr.length
  }
  return { complete: r.complete, incomplete: r.incomplete, downloaded: r.downloaded, peers: r.peers.length }
}

/** Whether the store's compact methods may take every one of these hashes (see `compactServes`). */
function servesCompact (store: SwarmStore, infoHashes: readonly BinaryString[]): boolean {
  if (store.compactServes === undefined) return true
  for (let i = 0; i < infoHashes.length; i++) if (!store.compactServes(infoHashes[i])) return false
  return true
}

/** `store.scrapeCompact` of each hash, or the same through `store.scrape`: 12 bytes per hash from `offset`. */
export function scrapeCompact (store: SwarmStore, infoHashes: readonly BinaryString[], out: Uint8Array, offset: number): void | Promise<void> {
  if (store.scrapeCompact !== undefined && servesCompact(store, infoHashes)) {
    for (let i = 0; i < infoHashes.length; i++) store.scrapeCompact(infoHashes[i], out, offset + 12 * i)
    return
  }
  const write = (entries: ScrapeEntry[]): void => {
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]
      const o = offset + 12 * i
      writeU32BE(out, o, e.complete)
      writeU32BE(out, o + 4, e.downloaded)
      writeU32BE(out, o + 8, e.incomplete)
    }
  }
  const r = store.scrape(infoHashes)
  if (isThenable(r)) return r.then(write)
  write(r)
}

function isThenable<T> (v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function'
}

/** A count as a BEP 15 u32 field (clamped to 0..2^32-1). */
export function writeU32BE (b: Uint8Array, o: number, v: number): void {
  const n = !(v > 0) ? 0 : v >= 0xffffffff ? 0xffffffff : Math.floor(v)
  b[o] = n >>> 24
  b[o + 1] = n >>> 16
  b[o + 2] = n >>> 8
  b[o + 3] = n
}

export interface StorePeer {
  peerId: BinaryString
  addr: BinaryString
  kind: PeerKind
  conn: number
}

export interface PeerView extends StorePeer {
  seeder: boolean
  /** Seconds (store clock) of the last announce. */
  lastSeen: number
}

export interface SwarmInfo {
  complete: number
  incomplete: number
  downloaded: number
  peers (): IterableIterator<[BinaryString, PeerView]>
}

export interface StoreCounts {
  /** Swarms with at least one peer. */
  torrents: number
  /** Torrents with no peers left, remembered only for their `downloaded` count. */
  retired: number
  /** Peer entries over all swarms (a peer in two swarms counts twice). */
  peers: number
  seeders: number
  leechers: number
}

/**
 * Told of every peer state change, synchronously, by stores that hold state in process; used
 * for statistics that must not walk peers. `before`/`after`: -1 absent, 0 leecher, 1 seeder.
 */
export interface StoreListener {
  peerChanged (peerId: BinaryString, kind: PeerKind, addr: BinaryString, before: -1 | 0 | 1, after: -1 | 0 | 1): void
}
