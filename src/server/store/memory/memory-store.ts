import { MAX_RETIRED_TORRENTS } from '../../../constants.js'
import { EVENT_COMPLETED, EVENT_STOPPED } from '../../../protocol/common/types.js'
import type { BinaryString, ScrapeEntry } from '../../../protocol/common/types.js'
import { KIND_WS } from '../store.js'
import type {
  PeerKind, PeerView, StoreAnnounce, StoreAnnounceResult, StoreCounts, StoreListener,
  StorePeer, SwarmInfo, SwarmStore
} from '../store.js'

/**
 * In-memory SwarmStore.
 *
 * Layout: `swarms` maps info hash → Swarm. A Swarm keeps its peers twice: in `byKey` (identity
 * → Peer, for O(1) announce) and in one of six dense arrays, one per (kind, seeder) pair, where
 * each Peer knows its own index. Random selection therefore samples indices of a virtual
 * concatenation of the wanted arrays (no copying, no per-request shuffle), removal is a
 * swap-with-last, and "seeders get only leechers" is just a choice of arrays. Arrays are created
 * on first use, so the common one- or two-peer swarm holds one small array.
 *
 * `downloaded` survives the swarm: when the last peer leaves, a non-zero count moves to
 * `completedOnly` so scrape stays truthful without keeping empty swarms.
 */
export class MemoryStore implements SwarmStore {
  readonly counts: StoreCounts = { torrents: 0, retired: 0, peers: 0, seeders: 0, leechers: 0 }
  private readonly swarms = new Map<BinaryString, Swarm>()
  private readonly completedOnly = new Map<BinaryString, number>()
  private readonly peerTtl: number
  private readonly listener: StoreListener | undefined
  private readonly maxRetired: number
  private sweepCursor: IterableIterator<Swarm> | undefined

  /** `maxRetired`: most peerless torrents remembered for their `downloaded` (default MAX_RETIRED_TORRENTS). */
  constructor (opts: { peerTtl: number, listener?: StoreListener, maxRetired?: number }) {
    this.peerTtl = opts.peerTtl
    this.listener = opts.listener
    this.maxRetired = opts.maxRetired ?? MAX_RETIRED_TORRENTS
  }

  announce (a: StoreAnnounce, now: number): StoreAnnounceResult {
    let swarm = this.swarms.get(a.infoHash)
    if (a.event === EVENT_STOPPED) {
      if (swarm !== undefined) {
        const peer = swarm.byKey.get(a.key)
        if (peer !== undefined) this.removePeer(swarm, peer)
      }
      return swarm === undefined
        ? { complete: 0, incomplete: 0, downloaded: this.completedOnly.get(a.infoHash) ?? 0, peers: [] }
        : { complete: swarm.complete, incomplete: swarm.incomplete, downloaded: swarm.downloaded, peers: [] }
    }

    if (swarm === undefined) {
      swarm = new Swarm(a.infoHash)
      const done = this.completedOnly.get(a.infoHash)
      if (done !== undefined) {
        swarm.downloaded = done
        this.completedOnly.delete(a.infoHash)
        this.counts.retired--
      }
      this.swarms.set(a.infoHash, swarm)
      this.counts.torrents++
    }

    let peer = swarm.byKey.get(a.key)
    if (peer === undefined) {
      peer = new Peer(a.key, a.peerId, a.addr, a.kind, a.conn, a.seeder, now)
      swarm.insert(peer)
      if (a.seeder) { swarm.complete++; this.counts.seeders++ } else { swarm.incomplete++; this.counts.leechers++ }
      this.counts.peers++
      // A peer that joins already complete through a `completed` event did download it.
      if (a.seeder && a.event === EVENT_COMPLETED) swarm.downloaded++
      this.listener?.peerChanged(a.peerId, a.kind, a.addr, -1, a.seeder ? 1 : 0)
    } else {
      peer.lastSeen = now
      if (peer.peerId !== a.peerId || peer.addr !== a.addr || peer.conn !== a.conn) {
        // Same identity, new details (client restarted with a new peer id): re-register for stats.
        this.listener?.peerChanged(peer.peerId, peer.kind, peer.addr, peer.seeder ? 1 : 0, -1)
        peer.peerId = a.peerId
        peer.addr = a.addr
        peer.conn = a.conn
        this.listener?.peerChanged(peer.peerId, peer.kind, peer.addr, -1, peer.seeder ? 1 : 0)
      }
      if (peer.seeder !== a.seeder) {
        swarm.remove(peer)
        const was = peer.seeder
        peer.seeder = a.seeder
        swarm.insert(peer)
        if (a.seeder) {
          swarm.complete++; swarm.incomplete--; this.counts.seeders++; this.counts.leechers--
          if (a.event === EVENT_COMPLETED) swarm.downloaded++
        } else {
          swarm.complete--; swarm.incomplete++; this.counts.seeders--; this.counts.leechers++
        }
        this.listener?.peerChanged(peer.peerId, peer.kind, peer.addr, was ? 1 : 0, a.seeder ? 1 : 0)
      }
    }

    return {
      complete: swarm.complete,
      incomplete: swarm.incomplete,
      downloaded: swarm.downloaded,
      peers: a.numwant > 0 ? swarm.pick(peer, a.numwant, a.want) : []
    }
  }

  scrape (infoHashes: readonly BinaryString[]): ScrapeEntry[] {
    const out: ScrapeEntry[] = new Array(infoHashes.length)
    for (let i = 0; i < infoHashes.length; i++) {
      const infoHash = infoHashes[i]
      const swarm = this.swarms.get(infoHash)
      out[i] = swarm === undefined
        ? { infoHash, complete: 0, incomplete: 0, downloaded: this.completedOnly.get(infoHash) ?? 0 }
        : { infoHash, complete: swarm.complete, incomplete: swarm.incomplete, downloaded: swarm.downloaded }
    }
    return out
  }

  scrapeAll (limit: number): ScrapeEntry[] {
    const out: ScrapeEntry[] = []
    for (const [infoHash, swarm] of this.swarms) {
      if (out.length >= limit) break
      out.push({ infoHash, complete: swarm.complete, incomplete: swarm.incomplete, downloaded: swarm.downloaded })
    }
    return out
  }

  remove (infoHash: BinaryString, key: BinaryString): boolean {
    const swarm = this.swarms.get(infoHash)
    const peer = swarm?.byKey.get(key)
    if (swarm === undefined || peer === undefined) return false
    this.removePeer(swarm, peer)
    return true
  }

  sweep (now: number, budget: number): boolean {
    const cutoff = now - this.peerTtl
    if (this.sweepCursor === undefined) this.sweepCursor = this.swarms.values()
    let visited = 0
    // Map iterators stay valid when entries are deleted, so the cursor survives between calls.
    for (;;) {
      if (visited >= budget) return false
      const next = this.sweepCursor.next()
      if (next.done === true) { this.sweepCursor = undefined; return true }
      const swarm = next.value
      // The swarm may have been dropped since the cursor was made; its peers are gone then.
      if (swarm.complete + swarm.incomplete === 0) continue
      visited += swarm.complete + swarm.incomplete
      for (let l = 0; l < swarm.lists.length; l++) {
        const list = swarm.lists[l]
        if (list === undefined || (l >> 1) === KIND_WS) continue
        // Walk backwards: removal swaps the last element into the hole.
        for (let i = list.length - 1; i >= 0; i--) {
          const peer = list[i]
          if (peer.lastSeen < cutoff) this.removePeer(swarm, peer)
        }
      }
    }
  }

  swarmInfo (infoHash: BinaryString): SwarmInfo | undefined {
    const swarm = this.swarms.get(infoHash)
    if (swarm === undefined) return undefined
    return {
      complete: swarm.complete,
      incomplete: swarm.incomplete,
      downloaded: swarm.downloaded,
      peers: () => swarm.byKey.entries() as IterableIterator<[BinaryString, PeerView]>
    }
  }

  infoHashes (): IterableIterator<BinaryString> {
    return this.swarms.keys()
  }

  retired (): IterableIterator<[BinaryString, number]> {
    return this.completedOnly.entries()
  }

  restorePeer (infoHash: BinaryString, key: BinaryString, p: Omit<PeerView, 'conn'>): void {
    let swarm = this.swarms.get(infoHash)
    if (swarm?.byKey.has(key) === true) return
    if (swarm === undefined) {
      swarm = new Swarm(infoHash)
      const done = this.completedOnly.get(infoHash)
      if (done !== undefined) { swarm.downloaded = done; this.completedOnly.delete(infoHash); this.counts.retired-- }
      this.swarms.set(infoHash, swarm)
      this.counts.torrents++
    }
    swarm.insert(new Peer(key, p.peerId, p.addr, p.kind, 0, p.seeder, p.lastSeen))
    if (p.seeder) { swarm.complete++; this.counts.seeders++ } else { swarm.incomplete++; this.counts.leechers++ }
    this.counts.peers++
    this.listener?.peerChanged(p.peerId, p.kind, p.addr, -1, p.seeder ? 1 : 0)
  }

  setDownloaded (infoHash: BinaryString, downloaded: number): void {
    const swarm = this.swarms.get(infoHash)
    if (swarm !== undefined) { swarm.downloaded = downloaded; return }
    if (!this.completedOnly.has(infoHash)) this.counts.retired++
    this.completedOnly.set(infoHash, downloaded)
  }

  close (): void {
    this.swarms.clear()
    this.completedOnly.clear()
    this.counts.torrents = this.counts.retired = this.counts.peers = this.counts.seeders = this.counts.leechers = 0
  }

  private removePeer (swarm: Swarm, peer: Peer): void {
    swarm.remove(peer)
    swarm.byKey.delete(peer.key)
    if (peer.seeder) { swarm.complete--; this.counts.seeders-- } else { swarm.incomplete--; this.counts.leechers-- }
    this.counts.peers--
    this.listener?.peerChanged(peer.peerId, peer.kind, peer.addr, peer.seeder ? 1 : 0, -1)
    if (swarm.complete + swarm.incomplete === 0) {
      this.swarms.delete(swarm.infoHash)
      if (swarm.downloaded > 0) {
        this.completedOnly.set(swarm.infoHash, swarm.downloaded)
        this.counts.retired++
        if (this.completedOnly.size > this.maxRetired) {
          // Map iteration order is insertion order: forget the longest-retired torrent.
          this.completedOnly.delete(this.completedOnly.keys().next().value!)
          this.counts.retired--
        }
      }
      this.counts.torrents--
    }
  }
}

class Peer implements PeerView {
  /** Index in its swarm list. */
  idx = -1
  constructor (
    readonly key: BinaryString,
    public peerId: BinaryString,
    public addr: BinaryString,
    readonly kind: PeerKind,
    public conn: number,
    public seeder: boolean,
    public lastSeen: number
  ) {}
}

class Swarm {
  complete = 0
  incomplete = 0
  downloaded = 0
  readonly byKey = new Map<BinaryString, Peer>()
  /** Index kind * 2 + (seeder ? 1 : 0). */
  readonly lists: Array<Peer[] | undefined> = []

  constructor (readonly infoHash: BinaryString) {}

  insert (peer: Peer): void {
    const l = peer.kind * 2 + (peer.seeder ? 1 : 0)
    let list = this.lists[l]
    if (list === undefined) list = this.lists[l] = []
    peer.idx = list.length
    list.push(peer)
    this.byKey.set(peer.key, peer)
  }

  remove (peer: Peer): void {
    const list = this.lists[peer.kind * 2 + (peer.seeder ? 1 : 0)]!
    const last = list.pop()!
    if (last !== peer) {
      list[peer.idx] = last
      last.idx = peer.idx
    }
    peer.idx = -1
  }

  /** Up to `n` distinct random peers of the wanted kinds, never `self`; seeders get leechers. */
  pick (self: Peer, n: number, want: number): StorePeer[] {
    // Gather the candidate arrays (at most 6) and their total length, noting where self is.
    const sources: Peer[][] = []
    const selfList = this.lists[self.kind * 2 + (self.seeder ? 1 : 0)]
    let total = 0
    let selfAt = -1
    for (let kind = 0; kind < 3; kind++) {
      if ((want & (1 << kind)) === 0) continue
      const leechers = this.lists[kind * 2]
      if (leechers !== undefined && leechers.length > 0) {
        if (leechers === selfList) selfAt = total + self.idx
        sources.push(leechers); total += leechers.length
      }
      if (!self.seeder) {
        const seeders = this.lists[kind * 2 + 1]
        if (seeders !== undefined && seeders.length > 0) {
          if (seeders === selfList) selfAt = total + self.idx
          sources.push(seeders); total += seeders.length
        }
      }
    }
    // Candidates are the virtual concatenation of the sources without self.
    const others = selfAt < 0 ? total : total - 1
    const out: StorePeer[] = []
    if (others <= n) {
      // Everyone fits: take all but self.
      for (const list of sources) for (let i = 0; i < list.length; i++) if (list[i] !== self) out.push(list[i])
      return out
    }
    // Floyd's sampling of n distinct indices among the others; indices from self's on shift by one.
    const chosen = new Set<number>()
    for (let j = others - n; j < others; j++) {
      const t = Math.floor(Math.random() * (j + 1))
      const idx = chosen.has(t) ? j : t
      chosen.add(idx)
      out.push(at(sources, selfAt >= 0 && idx >= selfAt ? idx + 1 : idx))
    }
    return out
  }
}

function at (sources: Peer[][], idx: number): Peer {
  for (const list of sources) {
    if (idx < list.length) return list[idx]
    idx -= list.length
  }
  throw new RangeError('index outside candidate lists')
}
