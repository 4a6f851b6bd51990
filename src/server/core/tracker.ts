import { MAX_UDP_PEERS } from '../../constants.js'
import { EVENT_COMPLETED } from '../../protocol/common/types.js'
import type { AnnounceEvent, AnnounceRequest, BinaryString, ScrapeEntry } from '../../protocol/common/types.js'
import { KIND_V4, KIND_V6, WANT_V4, WANT_V6 } from '../store/store.js'
import type { CompactAnnounceResult, StoreAnnounce, StoreAnnounceResult, SwarmStore } from '../store/store.js'
import { jitterInterval } from './jitter.js'
import type { Maybe } from './maybe.js'

export interface CoreOptions {
  /** Announce interval told to HTTP/UDP clients, seconds. */
  interval: number
  /** Interval told to WebSocket clients, seconds. */
  wsInterval: number
  /** `min interval` for HTTP, seconds. */
  minInterval: number
  defaultNumwant: number
  maxNumwant: number
  /** Most torrents in a full scrape; 0 disables full scrape. */
  fullScrapeLimit: number
  /** Random spread of the interval told to clients, as a fraction (0: none). */
  intervalJitter?: number
}

/**
 * Announce and scrape logic for HTTP and UDP peers over a SwarmStore. It never touches a socket:
 * frontends hand it decoded, sanitized requests with the peer's compact address.
 */
export class TrackerCore {
  /**
   * Whether the store answers announces and scrapes synchronously into a caller's buffer
   * (`announceCompact` / `scrapeCompact`): the UDP frontend then writes replies in place.
   */
  readonly compact: boolean
  /** Most peers in one UDP reply. */
  readonly udpNumwantCap: number
  /** The store's `compactServes`, if it serves the compact paths for some hashes only. */
  private readonly serves: ((infoHash: BinaryString) => boolean) | undefined

  constructor (readonly store: SwarmStore, readonly opts: CoreOptions) {
    this.compact = store.announceCompact !== undefined && store.scrapeCompact !== undefined
    this.udpNumwantCap = Math.min(MAX_UDP_PEERS, opts.maxNumwant)
    this.serves = store.compactServes?.bind(store)
  }

  /**
   * Whether `announceCompact` / `scrapeCompact` may take this hash (`compact` stores only): a
   * sharded store serves them for the swarms it owns; the rest take `announce` / `scrape`.
   */
  compactServes (infoHash: BinaryString): boolean {
    return this.serves === undefined || this.serves(infoHash)
  }

  /** The interval to tell one HTTP/UDP client, seconds (jittered if configured). */
  announceInterval (): number {
    return jitterInterval(this.opts.interval, this.opts.intervalJitter ?? 0)
  }

  /** Clamps a client's numwant: absent (-1) → default, never above `cap`. */
  numwant (requested: number, cap: number): number {
    const n = requested < 0 ? this.opts.defaultNumwant : requested
    return n < cap ? n : cap
  }

  /**
   * An HTTP or UDP announce. `addr` is the compact address peers will be given (6 or 18 chars).
   * HTTP answers both families (BEP 7 `peers6`); UDP only the family the request came over, and
   * never more than fit one datagram.
   */
  announce (req: AnnounceRequest, addr: BinaryString, udp: boolean, now: number): Maybe<StoreAnnounceResult> {
    const kind = addr.length === 6 ? KIND_V4 : KIND_V6
    const want = udp ? (kind === KIND_V4 ? WANT_V4 : WANT_V6) : WANT_V4 | WANT_V6
    return this.store.announce({
      infoHash: req.infoHash,
      key: addr,
      peerId: req.peerId,
      addr,
      kind,
      conn: 0,
      event: req.event,
      seeder: isSeeder(req.left, req.event),
      numwant: this.numwant(req.numwant, udp ? this.udpNumwantCap : this.opts.maxNumwant),
      want
    }, now)
  }

  /**
   * A UDP announce into a reply buffer (`compact` stores only): `a` is filled by the caller
   * (reused between calls; numwant already clamped with `numwant(…, udpNumwantCap)`), the peers'
   * addresses go to `out` from `offset`.
   */
  announceCompact (a: StoreAnnounce, now: number, out: Uint8Array, offset: number): CompactAnnounceResult {
    // Callers asked compactServes(a.infoHash) first.
    return this.store.announceCompact!(a, now, out, offset)
  }

  /** Scrape of the given hashes; an empty list is a full scrape, if enabled. */
  scrape (infoHashes: readonly BinaryString[]): Maybe<ScrapeEntry[]> {
    if (infoHashes.length === 0) return this.store.scrapeAll(this.opts.fullScrapeLimit)
    return this.store.scrape(infoHashes)
  }
}

/**
 * Whether an announce makes its peer a seeder: `left` 0, or a `completed` event whatever `left`
 * says (SPEC §5; the reference client's `complete()` sends its default `left`, and the reference
 * server counts such a peer as a seeder).
 */
export function isSeeder (left: number, event: AnnounceEvent): boolean {
  return left === 0 || event === EVENT_COMPLETED
}
