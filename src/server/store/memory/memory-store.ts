import { MAX_RETIRED_TORRENTS } from '../../../constants.js'
import { EVENT_COMPLETED, EVENT_STOPPED } from '../../../protocol/common/types.js'
import type { BinaryString, ScrapeEntry } from '../../../protocol/common/types.js'
import { KIND_V4, KIND_WS, writeU32BE } from '../store.js'
import type {
  CompactAnnounceResult, PeerKind, PeerView, StoreAnnounce, StoreAnnounceResult, StoreCounts, StoreListener,
  StorePeer, SwarmInfo, SwarmStore, TorrentWalk
} from '../store.js'
import { Arena, RECORD_BYTES } from './arena.js'
import type { Chunk } from './arena.js'
import { B_TAG, ENTRY_BYTES, ENTRY_MASK, ENTRY_SHIFT, ENTRY_WORDS, TAG_FREE, TorrentTable, W_AREA } from './torrent-table.js'
import type { EntryChunk } from './torrent-table.js'

/**
 * In-memory SwarmStore.
 *
 * Layout. Torrents live in a TorrentTable (torrent-table.ts): one 52-byte entry each in chunks of
 * typed arrays, found by info hash through an open-addressing Int32Array index (4 bytes a slot,
 * at most 0.7 full), with no JS object, Map entry or string per torrent. An entry, byte by byte:
 *
 *     0..19  info hash
 *     20..23 inline peer's IPv4 address (uint32, first octet in the low byte) — or, tag TAG_OBJ,
 *            the slot of the torrent's Swarm object in `objs` — or, free, the free-list link
 *     24..25 inline peer's port (uint16, first wire byte in the low byte)
 *     26     downloaded (0..255) of an inline torrent
 *     27     tag: 0 free, 1 one inline leecher, 2 one inline seeder, 3 Swarm object
 *     28..47 inline peer's peer id (always 20 bytes inline)
 *     48..51 inline peer's lastSeen, store seconds (uint32)
 *
 * A torrent whose one peer is an HTTP/UDP IPv4 peer with a 20-byte id — most torrents of a big
 * tracker — is that entry and nothing else: 52 bytes, plus ~7–9 of index. It becomes a Swarm
 * object (`promote`) when a second peer, an object peer (below) or a 256th download comes, and
 * goes back inline (`settle`) when one such peer is left; it is freed when none is left.
 *
 * A Swarm object holds the counts, `downloaded` (any size) and the peers. HTTP/UDP IPv4 peers —
 * nearly all peers — are not objects: each is one 32-byte record in a shared arena of large
 * Buffers (arena.ts), byte by byte:
 *
 *     0..3   IPv4 address (uint32, first octet in the low byte)
 *     4..5   port (uint16, first wire byte in the low byte)
 *     6      peer id length (≤ 20)
 *     7      unused
 *     8..27  peer id (4-byte aligned: copied as five uint32 words)
 *     28..31 lastSeen, store seconds (uint32)
 *
 * A swarm owns one block of 2^k records: leechers fill it from the front, seeders from the back,
 * so "seeders get only leechers" and "leechers get everyone" are each one or two contiguous
 * ranges to sample from, and a leecher ↔ seeder change is a move between the ends. Removal moves
 * the last record of its range into the hole. A full block moves to one twice the size; a block
 * at most a quarter full moves to one half the size (so a shrunk swarm gives its memory back).
 * Seeder-ness is the record's position, the key is its address (the contract keys HTTP/UDP peers
 * by compact address), so nothing else is stored per peer.
 *
 * Finding a peer: blocks of up to 8 records are scanned (two integer compares per record);
 * larger blocks have an open-addressing index (Int32Array of 2 slots per record, linear probing,
 * slot = position + 1, deletion by backward shift) rebuilt when the block moves.
 *
 * IPv6 and WebSocket peers (few, and WS peers carry a connection number) use the object layout:
 * per swarm an `Extra` with a Map key → Peer and six dense arrays, one per (kind, seeder) pair,
 * each Peer knowing its index. So do the unusual HTTP/UDP IPv4 peers the record cannot hold
 * (a key other than the address, a peer id over 20 bytes, a non-zero conn).
 *
 * Random selection (`pick`) samples indices of a virtual concatenation of the wanted ranges and
 * arrays (Floyd's algorithm over a reusable scratch set: no copying, no per-request shuffle). An
 * inline torrent's only peer is the asker, so it answers with no peers without picking.
 *
 * Expiry walks the table's entries in order, `budget` peers a call: an inline torrent is one
 * compare (dropping it costs the budget 4: it writes a random index slot); a Swarm object's
 * ranges are compacted in one pass (order kept), then its block resized or its index rebuilt once.
 *
 * Costs per IPv4 peer (bench/memory.mjs, heap + array buffers). One peer per torrent: the entry,
 * 52 B; the index, 8 B at 1M torrents (2^21 slots) and 6.7 B at 10M (2^24); the chunk partly used
 * at the end (≤ 208 KiB) — ≈ 61 B per peer at 1M. 100 peers per torrent: the record, 32 B, in a
 * block 1/2 to 1 full (~40 B at 128-record blocks); the block index, 8 B per block slot (~10 B);
 * the arena's free-block byte per record (1 B); the swarm's entry, index slot and Swarm object
 * (~170 B, under 2 B per peer) — ≈ 57 B per peer.
 *
 * `downloaded` survives the torrent: when the last peer leaves, a non-zero count moves to
 * `completedOnly` so scrape stays truthful without keeping empty torrents.
 */
export class MemoryStore implements SwarmStore {
  readonly counts: StoreCounts = { torrents: 0, retired: 0, peers: 0, seeders: 0, leechers: 0 }
  private readonly table = new TorrentTable()
  /** Swarm objects (entries tagged TAG_OBJ hold their slot), and the free slots. */
  private readonly objs: Array<Swarm | undefined> = []
  private readonly freeObjs: number[] = []
  private readonly completedOnly = new Map<BinaryString, number>()
  private readonly peerTtl: number
  private readonly listener: StoreListener | undefined
  private readonly maxRetired: number
  private readonly arena = new Arena()
  /** The next entry the sweep visits. */
  private sweepAt = 0
  /** Walks under way (state-file saves): told of torrents created and dropped behind them. */
  private walks: Walk[] = []

  /** `maxRetired`: most peerless torrents remembered for their `downloaded` (default MAX_RETIRED_TORRENTS). */
  constructor (opts: { peerTtl: number, listener?: StoreListener, maxRetired?: number }) {
    this.peerTtl = opts.peerTtl
    this.listener = opts.listener
    this.maxRetired = opts.maxRetired ?? MAX_RETIRED_TORRENTS
  }

  announce (a: StoreAnnounce, now: number): StoreAnnounceResult {
    const swarm = this.update(a, now)
    if (swarm === undefined) return { complete: this.resComplete, incomplete: this.resIncomplete, downloaded: this.resDownloaded, peers: [] }
    return {
      complete: swarm.complete,
      incomplete: swarm.incomplete,
      downloaded: swarm.downloaded,
      peers: a.numwant > 0 ? pick(swarm, this.selfPos, this.selfPeer, a.seeder, a.numwant, a.want) : []
    }
  }

  /**
   * The announce with the picked peers' compact addresses written into `out` at `offset` (see
   * SwarmStore.announceCompact): the same update and the same pick as `announce`, without a
   * StorePeer per peer. Returns the store's reused result object.
   */
  announceCompact (a: StoreAnnounce, now: number, out: Uint8Array, offset: number): CompactAnnounceResult {
    const r = this.compactResult
    const swarm = this.update(a, now)
    if (swarm === undefined) {
      r.complete = this.resComplete
      r.incomplete = this.resIncomplete
      r.downloaded = this.resDownloaded
      r.peers = 0
      return r
    }
    r.complete = swarm.complete
    r.incomplete = swarm.incomplete
    r.downloaded = swarm.downloaded
    r.peers = a.numwant > 0 ? pickInto(swarm, this.selfPos, this.selfPeer, a.seeder, a.numwant, a.want, out, offset) : 0
    return r
  }

  /** Counts of one torrent written as a BEP 15 scrape entry (see SwarmStore.scrapeCompact). */
  scrapeCompact (infoHash: BinaryString, out: Uint8Array, offset: number): void {
    const e = this.table.find(infoHash)
    if (e < 0) {
      writeU32BE(out, offset, 0)
      writeU32BE(out, offset + 4, this.completedOnly.get(infoHash) ?? 0)
      writeU32BE(out, offset + 8, 0)
      return
    }
    const chunk = this.table.chunks[e >>> ENTRY_SHIFT]
    const w = (e & ENTRY_MASK) * ENTRY_WORDS
    const tag = chunk.u8[w * 4 + B_TAG]
    if (tag !== TAG_OBJ) {
      writeU32BE(out, offset, tag === TAG_SEED ? 1 : 0)
      writeU32BE(out, offset + 4, chunk.u8[w * 4 + B_DL])
      writeU32BE(out, offset + 8, tag === TAG_LEECH ? 1 : 0)
      return
    }
    const swarm = this.objs[chunk.u32[w + W_SLOT]]!
    writeU32BE(out, offset, swarm.complete)
    writeU32BE(out, offset + 4, swarm.downloaded)
    writeU32BE(out, offset + 8, swarm.incomplete)
  }

  private readonly compactResult: CompactAnnounceResult = { complete: 0, incomplete: 0, downloaded: 0, peers: 0 }
  /** The asker's place after `update` (a record position, or its object), for the pick. */
  private selfPos = -1
  private selfPeer: Peer | undefined = undefined
  /** The counts of an announce `update` answered without a Swarm object (no peers to pick). */
  private resComplete = 0
  private resIncomplete = 0
  private resDownloaded = 0

  /** Sets the counts of an answer that picks no peers; returns undefined for `update` to return. */
  private answered (complete: number, incomplete: number, downloaded: number): undefined {
    this.resComplete = complete
    this.resIncomplete = incomplete
    this.resDownloaded = downloaded
    return undefined
  }

  /**
   * Applies an announce to the torrent. Returns its Swarm object, with the asker's place in
   * `selfPos` / `selfPeer`, when peers may be picked; otherwise (a `stopped`, or an inline
   * torrent whose only peer is the asker) undefined, with the answer's counts in `res*`.
   */
  private update (a: StoreAnnounce, now: number): Swarm | undefined {
    const t = this.table
    let e = t.find(a.infoHash)
    if (a.event === EVENT_STOPPED) {
      if (e < 0) return this.answered(0, 0, this.completedOnly.get(a.infoHash) ?? 0)
      const downloaded = this.downloadedOf(e)
      this.removeKey(e, a.key)
      if (!t.live(e)) return this.answered(0, 0, downloaded)
      const s = this.entryScrape(e, a.infoHash)
      return this.answered(s.complete, s.incomplete, downloaded)
    }

    const record = isRecordPeer(a)
    const inline = record && a.peerId.length === 20
    if (e < 0) {
      e = this.newEntry(a.infoHash, inline)
      if (inline && t.chunks[e >>> ENTRY_SHIFT].u8[(e & ENTRY_MASK) * ENTRY_BYTES + B_TAG] !== TAG_OBJ) return this.addInline(e, a, now)
    }
    const chunk = t.chunks[e >>> ENTRY_SHIFT]
    const w = (e & ENTRY_MASK) * ENTRY_WORDS
    const tag = chunk.u8[w * 4 + B_TAG]
    if (tag !== TAG_OBJ) {
      if (inline && chunk.u32[w + W_IP] === keyIp(a.key) && chunk.u16[(w + W_PORT) * 2] === keyPort(a.key) &&
          // a download the inline byte cannot count: the torrent becomes an object first
          !(a.seeder && a.event === EVENT_COMPLETED && tag === TAG_LEECH && chunk.u8[w * 4 + B_DL] === MAX_INLINE_DL)) {
        return this.refreshInline(chunk, w, a, now)
      }
      this.promote(chunk, w, e)
    }
    const swarm = this.objs[chunk.u32[w + W_SLOT]]!

    let was: -1 | 0 | 1 = -1
    let selfPos = -1
    let selfPeer: Peer | undefined
    if (record) {
      const ip = keyIp(a.key)
      const port = keyPort(a.key)
      const p = swarm.cls >= 0 ? findRecord(swarm, ip, port) : -1
      if (p >= 0) {
        selfPos = this.refreshRecord(swarm, p, a, now)
        was = this.lastWas
      } else {
        // Not a record yet; it may be an object peer from an unusual earlier announce: replace it.
        const ep = swarm.extra?.byKey.get(a.key)
        if (ep !== undefined) { was = ep.seeder ? 1 : 0; this.detachExtra(swarm, ep) }
        selfPos = this.insertRecord(swarm, a.seeder, ip, port, a.peerId, now)
        this.added(swarm, a.seeder)
        this.listener?.peerChanged(a.peerId, KIND_V4, a.addr, -1, a.seeder ? 1 : 0)
      }
    } else {
      let ep = swarm.extra?.byKey.get(a.key)
      if (ep === undefined && a.kind === KIND_V4 && a.key.length === 6 && swarm.cls >= 0) {
        const p = findRecord(swarm, keyIp(a.key), keyPort(a.key))
        if (p >= 0) { was = p >= (1 << swarm.cls) - swarm.nS ? 1 : 0; this.detachRecord(swarm, p) }
      }
      if (ep === undefined) {
        ep = new Peer(a.key, a.peerId, a.addr, a.kind, a.conn, a.seeder, now)
        if (swarm.extra === undefined) swarm.extra = new Extra()
        swarm.extra.insert(ep)
        this.added(swarm, a.seeder)
        this.listener?.peerChanged(a.peerId, a.kind, a.addr, -1, a.seeder ? 1 : 0)
      } else {
        was = ep.seeder ? 1 : 0
        this.refreshExtra(swarm, ep, a, now)
      }
      selfPeer = ep
    }
    // A `completed` that makes a seeder of a leecher, or brings in a finished peer, is a download.
    if (a.seeder && a.event === EVENT_COMPLETED && was !== 1) swarm.downloaded++
    this.selfPos = selfPos
    this.selfPeer = selfPeer
    return swarm
  }

  /** Seeder state before the last refresh (set by refreshRecord / refreshExtra). */
  private lastWas: -1 | 0 | 1 = -1

  scrape (infoHashes: readonly BinaryString[]): ScrapeEntry[] {
    const out: ScrapeEntry[] = new Array(infoHashes.length)
    for (let i = 0; i < infoHashes.length; i++) {
      const infoHash = infoHashes[i]
      const e = this.table.find(infoHash)
      out[i] = e < 0
        ? { infoHash, complete: 0, incomplete: 0, downloaded: this.completedOnly.get(infoHash) ?? 0 }
        : this.entryScrape(e, infoHash)
    }
    return out
  }

  scrapeAll (limit: number): ScrapeEntry[] {
    const out: ScrapeEntry[] = []
    const t = this.table
    for (let e = 0; e < t.end && out.length < limit; e++) if (t.live(e)) out.push(this.entryScrape(e, t.key(e)))
    return out
  }

  remove (infoHash: BinaryString, key: BinaryString): boolean {
    const e = this.table.find(infoHash)
    return e >= 0 && this.removeKey(e, key)
  }

  /** The connection number of the WebSocket peer `key` of this swarm, or undefined (none, or not a WS peer). */
  wsConnOf (infoHash: BinaryString, key: BinaryString): number | undefined {
    const e = this.table.find(infoHash)
    if (e < 0) return undefined
    const chunk = this.table.chunks[e >>> ENTRY_SHIFT]
    const w = (e & ENTRY_MASK) * ENTRY_WORDS
    if (chunk.u8[w * 4 + B_TAG] !== TAG_OBJ) return undefined
    const p = this.objs[chunk.u32[w + W_SLOT]]!.extra?.byKey.get(key)
    return p === undefined || p.kind !== KIND_WS ? undefined : p.conn
  }

  /** Removes the peer with this key from a live entry, if there, dropping or demoting the swarm. */
  private removeKey (e: number, key: BinaryString): boolean {
    const chunk = this.table.chunks[e >>> ENTRY_SHIFT]
    const w = (e & ENTRY_MASK) * ENTRY_WORDS
    const tag = chunk.u8[w * 4 + B_TAG]
    if (tag !== TAG_OBJ) {
      if (key.length !== 6 || chunk.u32[w + W_IP] !== keyIp(key) || chunk.u16[(w + W_PORT) * 2] !== keyPort(key)) return false
      this.expireInline(chunk, w, e)
      return true
    }
    const swarm = this.objs[chunk.u32[w + W_SLOT]]!
    if (!this.removeFromSwarm(swarm, key)) return false
    this.settle(swarm)
    return true
  }

  /** Removes the peer with this key, if there, keeping the swarm (even empty). */
  private removeFromSwarm (swarm: Swarm, key: BinaryString): boolean {
    const ep = swarm.extra?.byKey.get(key)
    if (ep !== undefined) { this.detachExtra(swarm, ep); return true }
    if (key.length !== 6 || swarm.cls < 0) return false
    const p = findRecord(swarm, keyIp(key), keyPort(key))
    if (p < 0) return false
    this.detachRecord(swarm, p)
    return true
  }

  sweep (now: number, budget: number): boolean {
    const cutoff = now - this.peerTtl
    const t = this.table
    // A shrink of the index started by deletes is finished by inserts or here, a slice at a time.
    if (t.resizing) t.migrate(budget >> 2)
    let visited = 0
    // Walks the entries in order; entries freed or reused between calls are harmless to the walk
    // (a reused one is visited or not, like a Map entry added during iteration).
    while (visited < budget) {
      const e = this.sweepAt
      if (e >= t.end) { this.sweepAt = 0; return true }
      this.sweepAt = e + 1
      const chunk = t.chunks[e >>> ENTRY_SHIFT]
      const w = (e & ENTRY_MASK) * ENTRY_WORDS
      const tag = chunk.u8[w * 4 + B_TAG]
      // A free entry is one byte read: it costs the budget an eighth of a peer.
      if (tag === TAG_FREE) { visited += 0.125; continue }
      if (tag !== TAG_OBJ) {
        visited++
        if (chunk.u32[w + W_LAST] < cutoff) { this.expireInline(chunk, w, e); visited += EXPIRE_EXTRA }
        continue
      }
      const swarm = this.objs[chunk.u32[w + W_SLOT]]!
      visited += Math.max(1, swarm.complete + swarm.incomplete)
      if (swarm.cls >= 0) this.sweepRecords(swarm, cutoff)
      const extra = swarm.extra
      if (extra !== undefined) {
        for (let l = 0; l < extra.lists.length; l++) {
          const list = extra.lists[l]
          if (list === undefined || (l >> 1) === KIND_WS) continue
          for (let i = list.length - 1; i >= 0; i--) {
            const peer = list[i]
            if (peer.lastSeen < cutoff) this.detachExtra(swarm, peer)
          }
        }
      }
      this.settle(swarm)
    }
    return false
  }

  swarmInfo (infoHash: BinaryString): SwarmInfo | undefined {
    const e = this.table.find(infoHash)
    if (e < 0) return undefined
    const s = this.entryScrape(e, infoHash)
    return { complete: s.complete, incomplete: s.incomplete, downloaded: s.downloaded, peers: () => this.peersOf(infoHash) }
  }

  /** A live entry's SwarmInfo, its peers read at once (a walk reads them before anything changes). */
  private infoAt (e: number): SwarmInfo {
    const s = this.entryScrape(e, '')
    return { complete: s.complete, incomplete: s.incomplete, downloaded: s.downloaded, peers: () => this.peersAt(e) }
  }

  * infoHashes (): IterableIterator<BinaryString> {
    const t = this.table
    for (let e = 0; e < t.end; e++) if (t.live(e)) yield t.key(e)
  }

  torrentWalk (): TorrentWalk {
    const walk = new Walk(this.table, e => this.infoAt(e), w => { this.walks = this.walks.filter(x => x !== w) })
    this.walks = [...this.walks, walk]
    return walk
  }

  retired (): IterableIterator<[BinaryString, number]> {
    return this.completedOnly.entries()
  }

  restorePeer (infoHash: BinaryString, key: BinaryString, p: Omit<PeerView, 'conn'>): void {
    const t = this.table
    const record = p.kind === KIND_V4 && p.addr.length === 6 && p.peerId.length <= 20 && key === p.addr
    const inline = record && p.peerId.length === 20
    let e = t.find(infoHash)
    if (e < 0) {
      e = this.newEntry(infoHash, inline)
      const chunk = t.chunks[e >>> ENTRY_SHIFT]
      const w = (e & ENTRY_MASK) * ENTRY_WORDS
      if (chunk.u8[w * 4 + B_TAG] !== TAG_OBJ) {
        writeInline(chunk, w, p.seeder, keyIp(key), keyPort(key), p.peerId, p.lastSeen)
        this.countAdded(p.seeder)
        this.listener?.peerChanged(p.peerId, p.kind, p.addr, -1, p.seeder ? 1 : 0)
        return
      }
    }
    const chunk = t.chunks[e >>> ENTRY_SHIFT]
    const w = (e & ENTRY_MASK) * ENTRY_WORDS
    if (chunk.u8[w * 4 + B_TAG] !== TAG_OBJ) {
      // A live announce beats a saved one: a peer already there is left as it is.
      if (key.length === 6 && chunk.u32[w + W_IP] === keyIp(key) && chunk.u16[(w + W_PORT) * 2] === keyPort(key)) return
      this.promote(chunk, w, e)
    }
    const swarm = this.objs[chunk.u32[w + W_SLOT]]!
    if (swarm.extra?.byKey.has(key) === true) return
    if (key.length === 6 && swarm.cls >= 0 && findRecord(swarm, keyIp(key), keyPort(key)) >= 0) return
    if (record) {
      this.insertRecord(swarm, p.seeder, keyIp(key), keyPort(key), p.peerId, p.lastSeen)
    } else {
      if (swarm.extra === undefined) swarm.extra = new Extra()
      swarm.extra.insert(new Peer(key, p.peerId, p.addr, p.kind, 0, p.seeder, p.lastSeen))
    }
    this.added(swarm, p.seeder)
    this.listener?.peerChanged(p.peerId, p.kind, p.addr, -1, p.seeder ? 1 : 0)
  }

  setDownloaded (infoHash: BinaryString, downloaded: number): void {
    const e = this.table.find(infoHash)
    if (e >= 0) {
      const chunk = this.table.chunks[e >>> ENTRY_SHIFT]
      const w = (e & ENTRY_MASK) * ENTRY_WORDS
      if (chunk.u8[w * 4 + B_TAG] !== TAG_OBJ) {
        if (downloaded <= MAX_INLINE_DL) { chunk.u8[w * 4 + B_DL] = downloaded; return }
        this.promote(chunk, w, e)
      }
      this.objs[chunk.u32[w + W_SLOT]]!.downloaded = downloaded
      return
    }
    if (!this.completedOnly.has(infoHash)) this.counts.retired++
    this.completedOnly.set(infoHash, downloaded)
  }

  /**
   * How the torrents are held (tests and the memory probe): index slots, tombstones, whether the
   * index is being resized, entries handed out, torrents in the object form, bytes of the
   * table (entries and index) and of the record arena.
   */
  layout (): { slots: number, dead: number, resizing: boolean, entries: number, objects: number, tableBytes: number, arenaBytes: number } {
    const t = this.table
    return {
      slots: t.slots, dead: t.dead, resizing: t.resizing, entries: t.end,
      objects: this.objs.length - this.freeObjs.length, tableBytes: t.bytes, arenaBytes: this.arena.bytes
    }
  }

  close (): void {
    this.table.clear()
    this.objs.length = 0
    this.freeObjs.length = 0
    this.completedOnly.clear()
    this.arena.clear()
    this.sweepAt = 0
    this.counts.torrents = this.counts.retired = this.counts.peers = this.counts.seeders = this.counts.leechers = 0
  }

  // ---- torrents: entries, inline peers, swarm objects -----------------------------------------

  /**
   * A new entry for the info hash of the last `find`, with its `downloaded` back if it was
   * retired. Tagged TAG_LEECH (the caller writes the inline peer and its tag) when `inline` and the
   * count fits the inline byte, else it gets a Swarm object.
   */
  private newEntry (infoHash: BinaryString, inline: boolean): number {
    let done = 0
    if (this.counts.retired > 0) {
      const d = this.completedOnly.get(infoHash)
      if (d !== undefined) {
        done = d
        this.completedOnly.delete(infoHash)
        this.counts.retired--
      }
    }
    this.counts.torrents++
    let e: number
    if (inline && done <= MAX_INLINE_DL) {
      e = this.table.insert(TAG_LEECH)
      this.table.chunks[e >>> ENTRY_SHIFT].u8[(e & ENTRY_MASK) * ENTRY_BYTES + B_DL] = done
    } else {
      e = this.table.insert(TAG_OBJ)
      this.attachObj(e).downloaded = done
    }
    if (this.walks.length !== 0) for (const w of this.walks) w.created(e, infoHash)
    return e
  }

  /** A new torrent whose first peer goes inline: it is the only peer, so it gets none back. */
  private addInline (e: number, a: StoreAnnounce, now: number): undefined {
    const chunk = this.table.chunks[e >>> ENTRY_SHIFT]
    const w = (e & ENTRY_MASK) * ENTRY_WORDS
    writeInline(chunk, w, a.seeder, keyIp(a.key), keyPort(a.key), a.peerId, now)
    this.countAdded(a.seeder)
    this.listener?.peerChanged(a.peerId, KIND_V4, a.addr, -1, a.seeder ? 1 : 0)
    const b = w * 4 + B_DL
    // A count brought back from the retired may be full: one more needs the object form.
    if (a.seeder && a.event === EVENT_COMPLETED) {
      if (chunk.u8[b] === MAX_INLINE_DL) {
        this.promote(chunk, w, e)
        const swarm = this.objs[chunk.u32[w + W_SLOT]]!
        swarm.downloaded++
        return this.answered(swarm.complete, swarm.incomplete, swarm.downloaded)
      }
      chunk.u8[b]++
    }
    return this.answered(a.seeder ? 1 : 0, a.seeder ? 0 : 1, chunk.u8[b])
  }

  /** An announce from a torrent's inline peer: it is the only peer, so it gets none back. */
  private refreshInline (chunk: EntryChunk, w: number, a: StoreAnnounce, now: number): undefined {
    const u8 = chunk.u8
    const tb = w * 4 + B_TAG
    const was = u8[tb] === TAG_SEED
    chunk.u32[w + W_LAST] = now
    const ib = (w + W_INLINE_ID) * 4
    if (!sameId20(u8, ib, a.peerId)) {
      // Same address, new peer id (client restarted): re-register for stats.
      if (this.listener !== undefined) this.listener.peerChanged(u8.toString('latin1', ib, ib + 20), KIND_V4, a.addr, was ? 1 : 0, -1)
      for (let i = 0; i < 20; i++) u8[ib + i] = a.peerId.charCodeAt(i)
      this.listener?.peerChanged(a.peerId, KIND_V4, a.addr, -1, was ? 1 : 0)
    }
    if (was !== a.seeder) {
      u8[tb] = a.seeder ? TAG_SEED : TAG_LEECH
      if (a.seeder) { this.counts.seeders++; this.counts.leechers-- } else { this.counts.seeders--; this.counts.leechers++ }
      this.listener?.peerChanged(a.peerId, KIND_V4, a.addr, was ? 1 : 0, a.seeder ? 1 : 0)
    }
    // The caller made an object of a torrent whose count would overflow here.
    if (a.seeder && a.event === EVENT_COMPLETED && !was) u8[w * 4 + B_DL]++
    return this.answered(a.seeder ? 1 : 0, a.seeder ? 0 : 1, u8[w * 4 + B_DL])
  }

  /** Removes a torrent's inline peer, and with it the torrent. */
  private expireInline (chunk: EntryChunk, w: number, e: number): void {
    const seeder = chunk.u8[w * 4 + B_TAG] === TAG_SEED
    if (this.listener !== undefined) {
      const ib = (w + W_INLINE_ID) * 4
      this.listener.peerChanged(chunk.u8.toString('latin1', ib, ib + 20), KIND_V4, inlineAddr(chunk, w), seeder ? 1 : 0, -1)
    }
    if (seeder) this.counts.seeders--; else this.counts.leechers--
    this.counts.peers--
    this.dropEntry(e, chunk.u8[w * 4 + B_DL])
  }

  /** Gives an entry a new (empty) Swarm object. */
  private attachObj (e: number): Swarm {
    const swarm = new Swarm(e)
    const slot = this.freeObjs.length > 0 ? this.freeObjs.pop()! : this.objs.length
    this.objs[slot] = swarm
    const chunk = this.table.chunks[e >>> ENTRY_SHIFT]
    const w = (e & ENTRY_MASK) * ENTRY_WORDS
    chunk.u8[w * 4 + B_TAG] = TAG_OBJ
    chunk.u32[w + W_SLOT] = slot
    return swarm
  }

  /** Inline → object: the inline peer becomes the first record of a one-record block. */
  private promote (chunk: EntryChunk, w: number, e: number): void {
    const u32 = chunk.u32
    const seeder = chunk.u8[w * 4 + B_TAG] === TAG_SEED
    const downloaded = chunk.u8[w * 4 + B_DL]
    tmpRecord[0] = u32[w + W_IP]
    tmpRecord[1] = chunk.u16[(w + W_PORT) * 2] | 20 << 16
    for (let i = 0; i < 5; i++) tmpRecord[W_ID + i] = u32[w + W_INLINE_ID + i]
    tmpRecord[W_SEEN] = u32[w + W_LAST]
    const swarm = this.attachObj(e)
    swarm.downloaded = downloaded
    this.moveBlock(swarm, 0)
    const rw = swarm.off * WORDS
    const b = swarm.chunk!.u32
    for (let i = 0; i < WORDS; i++) b[rw + i] = tmpRecord[i]
    if (seeder) { swarm.nS = 1; swarm.complete = 1 } else { swarm.nL = 1; swarm.incomplete = 1 }
  }

  /**
   * After peers left a swarm object: an empty swarm is dropped; one left with a single record peer
   * that fits inline (20-byte peer id, `downloaded` within a byte) goes back inline, its block and
   * object freed.
   */
  private settle (swarm: Swarm): void {
    const n = swarm.complete + swarm.incomplete
    if (n > 1) return
    let r = -1
    if (n === 1) {
      if (swarm.extra !== undefined || swarm.cls < 0 || swarm.downloaded > MAX_INLINE_DL) return
      r = swarm.off + (swarm.nS === 1 ? (1 << swarm.cls) - 1 : 0)
      if (swarm.chunk!.u8[r * RECORD_BYTES + ID_LEN] !== 20) return
    }
    const e = swarm.entry
    const chunk = this.table.chunks[e >>> ENTRY_SHIFT]
    const w = (e & ENTRY_MASK) * ENTRY_WORDS
    const slot = chunk.u32[w + W_SLOT]
    if (n === 1) {
      const from = swarm.chunk!.u32
      const rw = r * WORDS
      const u32 = chunk.u32
      u32[w + W_IP] = from[rw]
      u32[w + W_PORT] = 0
      chunk.u16[(w + W_PORT) * 2] = swarm.chunk!.u16[rw * 2 + 2]
      chunk.u8[w * 4 + B_DL] = swarm.downloaded
      chunk.u8[w * 4 + B_TAG] = swarm.nS === 1 ? TAG_SEED : TAG_LEECH
      for (let i = 0; i < 5; i++) u32[w + W_INLINE_ID + i] = from[rw + W_ID + i]
      u32[w + W_LAST] = from[rw + W_SEEN]
      this.releaseBlock(swarm)
    } else {
      this.dropEntry(e, swarm.downloaded)
    }
    this.objs[slot] = undefined
    this.freeObjs.push(slot)
    swarm.entry = -1
  }

  /** Frees a torrent's entry, keeping its `downloaded` among the retired. */
  private dropEntry (e: number, downloaded: number): void {
    const t = this.table
    if (downloaded > 0) {
      this.completedOnly.set(t.key(e), downloaded)
      this.counts.retired++
      if (this.completedOnly.size > this.maxRetired) {
        // Map iteration order is insertion order: forget the longest-retired torrent.
        this.completedOnly.delete(this.completedOnly.keys().next().value!)
        this.counts.retired--
      }
    }
    if (this.walks.length !== 0) for (const w of this.walks) w.dropped(e, t.key(e))
    t.delete(e)
    this.counts.torrents--
  }

  private downloadedOf (e: number): number {
    const chunk = this.table.chunks[e >>> ENTRY_SHIFT]
    const w = (e & ENTRY_MASK) * ENTRY_WORDS
    return chunk.u8[w * 4 + B_TAG] === TAG_OBJ ? this.objs[chunk.u32[w + W_SLOT]]!.downloaded : chunk.u8[w * 4 + B_DL]
  }

  private entryScrape (e: number, infoHash: BinaryString): ScrapeEntry {
    const chunk = this.table.chunks[e >>> ENTRY_SHIFT]
    const w = (e & ENTRY_MASK) * ENTRY_WORDS
    const tag = chunk.u8[w * 4 + B_TAG]
    if (tag !== TAG_OBJ) return { infoHash, complete: tag === TAG_SEED ? 1 : 0, incomplete: tag === TAG_LEECH ? 1 : 0, downloaded: chunk.u8[w * 4 + B_DL] }
    const swarm = this.objs[chunk.u32[w + W_SLOT]]!
    return { infoHash, complete: swarm.complete, incomplete: swarm.incomplete, downloaded: swarm.downloaded }
  }

  /** The peers of a torrent as they are now (looked up again: the torrent may have changed form). */
  private * peersOf (infoHash: BinaryString): IterableIterator<[BinaryString, PeerView]> {
    const e = this.table.find(infoHash)
    if (e >= 0) yield * this.peersAt(e)
  }

  private * peersAt (e: number): IterableIterator<[BinaryString, PeerView]> {
    const chunk = this.table.chunks[e >>> ENTRY_SHIFT]
    const w = (e & ENTRY_MASK) * ENTRY_WORDS
    const tag = chunk.u8[w * 4 + B_TAG]
    if (tag === TAG_OBJ) { yield * swarmPeers(this.objs[chunk.u32[w + W_SLOT]]!); return }
    const addr = inlineAddr(chunk, w)
    const ib = (w + W_INLINE_ID) * 4
    yield [addr, {
      peerId: chunk.u8.toString('latin1', ib, ib + 20), addr, kind: KIND_V4, conn: 0, seeder: tag === TAG_SEED, lastSeen: chunk.u32[w + W_LAST]
    }]
  }

  // ---- counts -------------------------------------------------------------------------------

  private countAdded (seeder: boolean): void {
    if (seeder) this.counts.seeders++; else this.counts.leechers++
    this.counts.peers++
  }

  private added (swarm: Swarm, seeder: boolean): void {
    if (seeder) { swarm.complete++; this.counts.seeders++ } else { swarm.incomplete++; this.counts.leechers++ }
    this.counts.peers++
  }

  private removed (swarm: Swarm, seeder: boolean): void {
    if (seeder) { swarm.complete--; this.counts.seeders-- } else { swarm.incomplete--; this.counts.leechers-- }
    this.counts.peers--
  }

  private flipped (swarm: Swarm, seeder: boolean): void {
    if (seeder) {
      swarm.complete++; swarm.incomplete--; this.counts.seeders++; this.counts.leechers--
    } else {
      swarm.complete--; swarm.incomplete++; this.counts.seeders--; this.counts.leechers++
    }
  }

  // ---- record peers (HTTP/UDP IPv4) ---------------------------------------------------------

  /** Adds a record; returns its position in the block. */
  private insertRecord (swarm: Swarm, seeder: boolean, ip: number, port: number, peerId: BinaryString, now: number): number {
    if (swarm.cls < 0) this.moveBlock(swarm, 0)
    else if (swarm.nL + swarm.nS === 1 << swarm.cls) this.moveBlock(swarm, swarm.cls + 1)
    const p = seeder ? (1 << swarm.cls) - 1 - swarm.nS++ : swarm.nL++
    const chunk = swarm.chunk!
    const r = swarm.off + p
    const w = r * WORDS
    chunk.u32[w] = ip
    chunk.u16[w * 2 + 2] = port
    writeId(chunk.u8, r * RECORD_BYTES, peerId)
    chunk.u32[w + W_SEEN] = now
    if (swarm.index !== undefined) indexAdd(swarm, ip, port, p)
    return p
  }

  /** An announce from a known record peer; returns its position afterwards. */
  private refreshRecord (swarm: Swarm, p: number, a: StoreAnnounce, now: number): number {
    let chunk = swarm.chunk!
    const seederNow = p >= (1 << swarm.cls) - swarm.nS
    this.lastWas = seederNow ? 1 : 0
    const b = (swarm.off + p) * RECORD_BYTES
    chunk.u32[(swarm.off + p) * WORDS + W_SEEN] = now
    if (!sameId(chunk.u8, b, a.peerId)) {
      // Same address, new peer id (client restarted): re-register for stats.
      if (this.listener !== undefined) this.listener.peerChanged(readId(chunk.u8, b), KIND_V4, a.addr, this.lastWas, -1)
      writeId(chunk.u8, b, a.peerId)
      this.listener?.peerChanged(a.peerId, KIND_V4, a.addr, -1, this.lastWas)
    }
    if (seederNow === a.seeder) return p
    // Move between the leecher and seeder ends: take the record out, put it back at the other end.
    const w = (swarm.off + p) * WORDS
    for (let i = 0; i < WORDS; i++) tmpRecord[i] = chunk.u32[w + i]
    this.unlinkRecord(swarm, p, false)
    if (swarm.nL + swarm.nS === 1 << swarm.cls) this.moveBlock(swarm, swarm.cls + 1)
    chunk = swarm.chunk!
    const q = a.seeder ? (1 << swarm.cls) - 1 - swarm.nS++ : swarm.nL++
    const wq = (swarm.off + q) * WORDS
    for (let i = 0; i < WORDS; i++) chunk.u32[wq + i] = tmpRecord[i]
    if (swarm.index !== undefined) indexAdd(swarm, tmpRecord[0], chunk.u16[wq * 2 + 2], q)
    this.flipped(swarm, a.seeder)
    this.listener?.peerChanged(a.peerId, KIND_V4, a.addr, this.lastWas, a.seeder ? 1 : 0)
    return q
  }

  /**
   * Expires a swarm's stale records in one compacting pass over each range (order kept), then
   * resizes the block or rebuilds its index once — not per removed peer.
   */
  private sweepRecords (swarm: Swarm, cutoff: number): void {
    const chunk = swarm.chunk!
    const u32 = chunk.u32
    const cap = 1 << swarm.cls
    const base = swarm.off * WORDS
    const listener = this.listener
    let keep = 0
    for (let i = 0; i < swarm.nL; i++) {
      const w = base + i * WORDS
      if (u32[w + W_SEEN] >= cutoff) {
        if (keep !== i) copyRecord(u32, w, base + keep * WORDS)
        keep++
      } else {
        listener?.peerChanged(readId(chunk.u8, w * 4), KIND_V4, readAddr(chunk, swarm.off + i), 0, -1)
      }
    }
    const goneL = swarm.nL - keep
    swarm.nL = keep
    keep = 0
    // Seeders fill the block from its end: the k-th seeder sits at cap - 1 - k.
    for (let k = 0; k < swarm.nS; k++) {
      const w = base + (cap - 1 - k) * WORDS
      if (u32[w + W_SEEN] >= cutoff) {
        if (keep !== k) copyRecord(u32, w, base + (cap - 1 - keep) * WORDS)
        keep++
      } else {
        listener?.peerChanged(readId(chunk.u8, w * 4), KIND_V4, readAddr(chunk, swarm.off + cap - 1 - k), 1, -1)
      }
    }
    const goneS = swarm.nS - keep
    swarm.nS = keep
    if (goneL + goneS === 0) return
    swarm.incomplete -= goneL
    swarm.complete -= goneS
    this.counts.leechers -= goneL
    this.counts.seeders -= goneS
    this.counts.peers -= goneL + goneS
    const n = swarm.nL + swarm.nS
    if (n === 0) return this.releaseBlock(swarm)
    // The smallest class at most half full after the pass, if smaller than the block.
    let cls = 0
    while (1 << cls < n * 2) cls++
    if (cls < swarm.cls) this.moveBlock(swarm, cls)
    else if (swarm.index !== undefined) rebuildIndex(swarm)
  }

  /** Gives a swarm's emptied record block back to the arena. */
  private releaseBlock (swarm: Swarm): void {
    this.arena.free(swarm.chunk!, swarm.off, swarm.cls)
    swarm.chunk = undefined
    swarm.cls = -1
    swarm.off = 0
    swarm.index = undefined
  }

  /** Removes the record at `p` with its counts and listener call (the swarm is not dropped). */
  private detachRecord (swarm: Swarm, p: number): void {
    const seeder = p >= (1 << swarm.cls) - swarm.nS
    if (this.listener !== undefined) {
      const chunk = swarm.chunk!
      const r = swarm.off + p
      this.listener.peerChanged(readId(chunk.u8, r * RECORD_BYTES), KIND_V4, readAddr(chunk, r), seeder ? 1 : 0, -1)
    }
    this.unlinkRecord(swarm, p, true)
    this.removed(swarm, seeder)
  }

  /**
   * Takes the record at `p` out of its range (the range's last record fills the hole). With
   * `mayShrink` false the block stays as it is (the record is about to come back).
   */
  private unlinkRecord (swarm: Swarm, p: number, mayShrink: boolean): void {
    const cap = 1 << swarm.cls
    const chunk = swarm.chunk!
    const u32 = chunk.u32
    const seeder = p >= cap - swarm.nS
    const last = seeder ? cap - swarm.nS : swarm.nL - 1
    if (swarm.index !== undefined) {
      const w = (swarm.off + p) * WORDS
      indexDelete(swarm, u32[w], chunk.u16[w * 2 + 2], p)
    }
    if (last !== p) {
      const from = (swarm.off + last) * WORDS
      const to = (swarm.off + p) * WORDS
      for (let i = 0; i < WORDS; i++) u32[to + i] = u32[from + i]
      if (swarm.index !== undefined) indexMove(swarm, u32[to], chunk.u16[to * 2 + 2], last, p)
    }
    if (seeder) swarm.nS--; else swarm.nL--
    const n = swarm.nL + swarm.nS
    if (!mayShrink) return
    if (n === 0) {
      this.releaseBlock(swarm)
    } else if (swarm.cls > 0 && n <= cap >> 2) {
      this.moveBlock(swarm, swarm.cls - 1)
    }
  }

  /** Moves the swarm's records to a block of 2^cls records (leechers first, seeders last). */
  private moveBlock (swarm: Swarm, cls: number): void {
    const arena = this.arena
    arena.alloc(cls)
    const to = arena.chunk!
    const toOff = arena.off
    const from = swarm.chunk
    if (from !== undefined) {
      const cap = 1 << swarm.cls
      const ncap = 1 << cls
      const B = RECORD_BYTES
      to.u8.set(from.u8.subarray(swarm.off * B, (swarm.off + swarm.nL) * B), toOff * B)
      to.u8.set(from.u8.subarray((swarm.off + cap - swarm.nS) * B, (swarm.off + cap) * B), (toOff + ncap - swarm.nS) * B)
      arena.free(from, swarm.off, swarm.cls)
    }
    swarm.chunk = to
    swarm.off = toOff
    swarm.cls = cls
    if (cls >= INDEX_MIN_CLS) rebuildIndex(swarm)
    else swarm.index = undefined
  }

  // ---- object peers (IPv6, WebSocket, unusual IPv4) -----------------------------------------

  private refreshExtra (swarm: Swarm, peer: Peer, a: StoreAnnounce, now: number): void {
    this.lastWas = peer.seeder ? 1 : 0
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
      const extra = swarm.extra!
      extra.remove(peer)
      const was = peer.seeder
      peer.seeder = a.seeder
      extra.insert(peer)
      this.flipped(swarm, a.seeder)
      this.listener?.peerChanged(peer.peerId, peer.kind, peer.addr, was ? 1 : 0, a.seeder ? 1 : 0)
    }
  }

  private detachExtra (swarm: Swarm, peer: Peer): void {
    const extra = swarm.extra!
    extra.remove(peer)
    extra.byKey.delete(peer.key)
    if (extra.byKey.size === 0) swarm.extra = undefined
    this.removed(swarm, peer.seeder)
    this.listener?.peerChanged(peer.peerId, peer.kind, peer.addr, peer.seeder ? 1 : 0, -1)
  }
}

/** 32-bit words per record, and the word holding lastSeen. */
const WORDS = RECORD_BYTES >> 2
const W_SEEN = 7
const ID_LEN = 6
const ID_OFF = 8
const W_ID = 2
const tmpRecord = new Uint32Array(RECORD_BYTES >> 2)
/** Blocks of 2^3 = 8 records or fewer are scanned; larger ones get a hash index. */
const INDEX_MIN_CLS = 4
/**
 * The 32 bytes of an entry after its info hash (torrent-table.ts), as words of the entry:
 * an inline peer (tag TAG_LEECH or TAG_SEED), or the slot of the torrent's Swarm object (TAG_OBJ).
 */
const W_IP = W_AREA // IPv4 address, as in a record; for TAG_OBJ the Swarm object's slot
const W_SLOT = W_AREA
const W_PORT = W_AREA + 1 // low half: port; byte 2: downloaded (B_DL); byte 3: tag (B_TAG)
const B_DL = (W_AREA + 1) * 4 + 2
const W_INLINE_ID = W_AREA + 2 // 5 words: the peer id (always 20 bytes inline)
const W_LAST = W_AREA + 7 // lastSeen
/** Entry tags besides TAG_FREE: one inline leecher, one inline seeder, a Swarm object. */
const TAG_LEECH = 1
const TAG_SEED = 2
const TAG_OBJ = 3
/** The most downloads an inline torrent counts; one more makes it a Swarm object. */
const MAX_INLINE_DL = 255
/**
 * Budget a sweep charges for dropping a one-peer torrent on top of visiting it: dropping costs
 * ~4x a visit (a random index write: ~200 ns), so a step of 20,000 stays near 1 ms.
 */
const EXPIRE_EXTRA = 3

/** Writes the inline peer of the entry at word `w` (its `downloaded` byte is kept). */
function writeInline (chunk: EntryChunk, w: number, seeder: boolean, ip: number, port: number, peerId: BinaryString, now: number): void {
  chunk.u32[w + W_IP] = ip
  chunk.u16[(w + W_PORT) * 2] = port
  chunk.u8[w * 4 + B_TAG] = seeder ? TAG_SEED : TAG_LEECH
  const ib = (w + W_INLINE_ID) * 4
  for (let i = 0; i < 20; i++) chunk.u8[ib + i] = peerId.charCodeAt(i)
  chunk.u32[w + W_LAST] = now
}

function sameId20 (u8: Buffer, b: number, id: string): boolean {
  if (id.length !== 20) return false
  for (let i = 0; i < 20; i++) if (u8[b + i] !== id.charCodeAt(i)) return false
  return true
}

function inlineAddr (chunk: EntryChunk, w: number): BinaryString {
  return addrAt(chunk.u32, chunk.u16, w + W_IP)
}

function copyRecord (u32: Uint32Array, from: number, to: number): void {
  for (let i = 0; i < WORDS; i++) u32[to + i] = u32[from + i]
}

/** Whether an announce's peer fits a record: HTTP/UDP IPv4, keyed by its address. */
function isRecordPeer (a: StoreAnnounce): boolean {
  return a.kind === KIND_V4 && a.conn === 0 && a.addr.length === 6 && a.peerId.length <= 20 && a.key === a.addr
}

function keyIp (k: string): number {
  return (k.charCodeAt(0) | k.charCodeAt(1) << 8 | k.charCodeAt(2) << 16 | k.charCodeAt(3) << 24) >>> 0
}

function keyPort (k: string): number {
  return k.charCodeAt(4) | k.charCodeAt(5) << 8
}

function writeId (u8: Buffer, b: number, id: string): void {
  const n = id.length
  for (let i = 0; i < n; i++) u8[b + ID_OFF + i] = id.charCodeAt(i)
  u8[b + ID_LEN] = n
}

function sameId (u8: Buffer, b: number, id: string): boolean {
  const n = id.length
  if (u8[b + ID_LEN] !== n) return false
  for (let i = 0; i < n; i++) if (u8[b + ID_OFF + i] !== id.charCodeAt(i)) return false
  return true
}

function readId (u8: Buffer, b: number): BinaryString {
  return u8.toString('latin1', b + ID_OFF, b + ID_OFF + u8[b + ID_LEN])
}

function readAddr (chunk: Chunk, r: number): BinaryString {
  return addrAt(chunk.u32, chunk.u16, r * WORDS)
}

/** The compact address of the record starting at word `rw`. */
function addrAt (u32: Uint32Array, u16: Uint16Array, rw: number): BinaryString {
  const ip = u32[rw]
  const port = u16[rw * 2 + 2]
  return String.fromCharCode(ip & 0xff, ip >>> 8 & 0xff, ip >>> 16 & 0xff, ip >>> 24, port & 0xff, port >>> 8)
}

/** Position of the record with this address in the swarm's block, or -1. */
function findRecord (swarm: Swarm, ip: number, port: number): number {
  const u32 = swarm.chunk!.u32
  const u16 = swarm.chunk!.u16
  const off = swarm.off
  const index = swarm.index
  if (index !== undefined) {
    const mask = index.length - 1
    for (let s = slotOf(ip, port, mask); ; s = (s + 1) & mask) {
      const v = index[s]
      if (v === 0) return -1
      const w = (off + v - 1) * WORDS
      if (u32[w] === ip && u16[w * 2 + 2] === port) return v - 1
    }
  }
  const cap = 1 << swarm.cls
  for (let p = 0; p < swarm.nL; p++) {
    const w = (off + p) * WORDS
    if (u32[w] === ip && u16[w * 2 + 2] === port) return p
  }
  for (let p = cap - swarm.nS; p < cap; p++) {
    const w = (off + p) * WORDS
    if (u32[w] === ip && u16[w * 2 + 2] === port) return p
  }
  return -1
}

function slotOf (ip: number, port: number, mask: number): number {
  const h = Math.imul(ip ^ Math.imul(port + 0x7f4a7c15, 0x85ebca6b), 0x9e3779b1)
  return (h ^ h >>> 15) & mask
}

function indexAdd (swarm: Swarm, ip: number, port: number, p: number): void {
  const index = swarm.index!
  const mask = index.length - 1
  let s = slotOf(ip, port, mask)
  while (index[s] !== 0) s = (s + 1) & mask
  index[s] = p + 1
}

/** The index slot holding position `p` (which has this address). */
function indexSlot (index: Int32Array, ip: number, port: number, p: number): number {
  const mask = index.length - 1
  let s = slotOf(ip, port, mask)
  while (index[s] !== p + 1) s = (s + 1) & mask
  return s
}

function indexMove (swarm: Swarm, ip: number, port: number, from: number, to: number): void {
  const index = swarm.index!
  index[indexSlot(index, ip, port, from)] = to + 1
}

/** Backward-shift deletion keeps every probe chain unbroken without tombstones. */
function indexDelete (swarm: Swarm, ip: number, port: number, p: number): void {
  const index = swarm.index!
  const u32 = swarm.chunk!.u32
  const u16 = swarm.chunk!.u16
  const mask = index.length - 1
  let hole = indexSlot(index, ip, port, p)
  let s = hole
  for (;;) {
    s = (s + 1) & mask
    const v = index[s]
    if (v === 0) break
    const w = (swarm.off + v - 1) * WORDS
    const home = slotOf(u32[w], u16[w * 2 + 2], mask)
    // Move v into the hole unless its home lies cyclically in (hole, s].
    if (((s - home) & mask) >= ((s - hole) & mask)) {
      index[hole] = v
      hole = s
    }
  }
  index[hole] = 0
}

function rebuildIndex (swarm: Swarm): void {
  const cap = 1 << swarm.cls
  // 2 slots per record keeps linear-probing chains short.
  if (swarm.index === undefined || swarm.index.length !== cap * 2) swarm.index = new Int32Array(cap * 2)
  else swarm.index.fill(0)
  const u32 = swarm.chunk!.u32
  const u16 = swarm.chunk!.u16
  for (let p = 0; p < swarm.nL; p++) {
    const w = (swarm.off + p) * WORDS
    indexAdd(swarm, u32[w], u16[w * 2 + 2], p)
  }
  for (let p = cap - swarm.nS; p < cap; p++) {
    const w = (swarm.off + p) * WORDS
    indexAdd(swarm, u32[w], u16[w * 2 + 2], p)
  }
}

// ---- selection --------------------------------------------------------------------------------

/** Up to 6 candidate ranges per pick: record ranges (start position) or object arrays. */
const segLen = new Int32Array(8)
const segStart = new Int32Array(8)
const segList: Array<Peer[] | undefined> = new Array(8).fill(undefined)
/** Reusable set of chosen indices for Floyd's sampling: open addressing, stamped by generation. */
let setKeys = new Int32Array(1024)
let setGen = new Int32Array(1024)
let gen = 0

/** Candidate ranges of the last `segments` call: how many, and the asker's index among them (-1: none). */
let segCount = 0
let segSelfAt = -1

/**
 * Lays out the candidates of a pick as segments of one virtual sequence (record ranges, object
 * arrays) and returns their total; the asker's own index goes to `segSelfAt`.
 */
function segments (swarm: Swarm, selfPos: number, selfPeer: Peer | undefined, seeder: boolean, want: number): number {
  let segs = 0
  let total = 0
  let selfAt = -1
  if ((want & 1 << KIND_V4) !== 0 && swarm.cls >= 0) {
    const cap = 1 << swarm.cls
    if (swarm.nL > 0) {
      if (selfPos >= 0 && selfPos < swarm.nL) selfAt = selfPos
      segLen[segs] = swarm.nL; segStart[segs] = 0; segList[segs] = undefined; segs++
      total += swarm.nL
    }
    if (!seeder && swarm.nS > 0) {
      const start = cap - swarm.nS
      if (selfPos >= start) selfAt = total + selfPos - start
      segLen[segs] = swarm.nS; segStart[segs] = start; segList[segs] = undefined; segs++
      total += swarm.nS
    }
  }
  const extra = swarm.extra
  if (extra !== undefined) {
    for (let kind = 0; kind < 3; kind++) {
      if ((want & (1 << kind)) === 0) continue
      for (let s = 0; s < (seeder ? 1 : 2); s++) {
        const list = extra.lists[kind * 2 + s]
        if (list === undefined || list.length === 0) continue
        if (selfPeer !== undefined && list[selfPeer.idx] === selfPeer) selfAt = total + selfPeer.idx
        segLen[segs] = list.length; segStart[segs] = 0; segList[segs] = list; segs++
        total += list.length
      }
    }
  }
  segCount = segs
  segSelfAt = selfAt
  return total
}

/** Starts a Floyd sampling of `n` indices: sizes and clears the scratch set; returns its mask. */
function sampleStart (n: number): number {
  if (setKeys.length < n * 2) {
    let size = setKeys.length
    while (size < n * 2) size *= 2
    setKeys = new Int32Array(size)
    setGen = new Int32Array(size)
    gen = 0
  }
  if (++gen === 0x7fffffff) { setGen.fill(0); gen = 1 }
  return setKeys.length - 1
}

/** The next index of Floyd's sampling (step j of [others - n, others)), shifted past the asker. */
function sampleNext (j: number, mask: number, selfAt: number): number {
  const t = Math.floor(Math.random() * (j + 1))
  const idx = setHas(t, mask) ? j : t
  setAdd(idx, mask)
  return selfAt >= 0 && idx >= selfAt ? idx + 1 : idx
}

/**
 * Up to `n` distinct random peers of the wanted kinds, never the asker (record at `selfPos` or
 * object `selfPeer`); seeders get only leechers.
 */
function pick (swarm: Swarm, selfPos: number, selfPeer: Peer | undefined, seeder: boolean, n: number, want: number): StorePeer[] {
  const out: StorePeer[] = []
  select(swarm, selfPos, selfPeer, seeder, n, want, out, undefined, 0)
  return out
}

/**
 * `pick`, writing each picked peer's compact address (6 or 18 bytes) into `out` from `offset`
 * instead of making StorePeers; returns how many it wrote. Same candidates, same sampling.
 */
function pickInto (
  swarm: Swarm, selfPos: number, selfPeer: Peer | undefined, seeder: boolean, n: number, want: number, out: Uint8Array, offset: number
): number {
  return select(swarm, selfPos, selfPeer, seeder, n, want, undefined, out, offset)
}

/**
 * The one selection behind `pick` and `pickInto`: lays out the candidates, then takes every one
 * but the asker when all fit, else Floyd's sampling of n. Picked peers go to `list` (StorePeers)
 * or, when `list` is undefined, as compact addresses into `buf` from `o`. Returns how many.
 * The sink is two plain arguments rather than a callback so the hot path stays closure-free and
 * `take`'s per-segment loops keep their branch out of the per-peer step.
 */
function select (
  swarm: Swarm, selfPos: number, selfPeer: Peer | undefined, seeder: boolean, n: number, want: number,
  list: StorePeer[] | undefined, buf: Uint8Array | undefined, o: number
): number {
  const total = segments(swarm, selfPos, selfPeer, seeder, want)
  const segs = segCount
  const selfAt = segSelfAt
  const others = selfAt < 0 ? total : total - 1
  if (others <= n) {
    // Everyone fits (the usual case): each segment whole, in order, less the asker.
    for (let i = 0, v = 0; i < segs; v += segLen[i], i++) o = take(swarm, i, 0, segLen[i], selfAt - v, list, buf, o)
  } else {
    // Floyd's sampling of n distinct indices among the others; indices from the asker's on shift by one.
    const mask = sampleStart(n)
    for (let j = others - n; j < others; j++) {
      let v = sampleNext(j, mask, selfAt)
      let i = 0
      while (v >= segLen[i]) v -= segLen[i++]
      o = take(swarm, i, v, v + 1, -1, list, buf, o)
    }
  }
  for (let i = 0; i < segs; i++) segList[i] = undefined
  return others <= n ? others : n
}

/**
 * Takes candidates [from, to) of segment `i`, less the one at `skip`, into `list` or else as
 * compact addresses into `buf` at `o`; returns the offset after them.
 */
function take (
  swarm: Swarm, i: number, from: number, to: number, skip: number, list: StorePeer[] | undefined, buf: Uint8Array | undefined, o: number
): number {
  const objs = segList[i]
  if (objs !== undefined) {
    for (let k = from; k < to; k++) {
      if (k === skip) continue
      const p = objs[k]
      if (list !== undefined) { list.push(p); continue }
      const addr = p.addr
      for (let c = 0; c < addr.length; c++) buf![o + c] = addr.charCodeAt(c)
      o += addr.length
    }
    return o
  }
  const chunk = swarm.chunk!
  const u32 = chunk.u32
  const u16 = chunk.u16
  const base = swarm.off + segStart[i]
  for (let k = from; k < to; k++) {
    if (k === skip) continue
    const r = base + k
    const w = r * WORDS
    if (list !== undefined) {
      list.push(new RecordPeer(addrAt(u32, u16, w), chunk.u8[r * RECORD_BYTES + ID_LEN],
        u32[w + W_ID] | 0, u32[w + W_ID + 1] | 0, u32[w + W_ID + 2] | 0, u32[w + W_ID + 3] | 0, u32[w + W_ID + 4] | 0))
      continue
    }
    // As addrAt, into the buffer instead of a string.
    const ip = u32[w]
    const port = u16[w * 2 + 2]
    buf![o] = ip; buf![o + 1] = ip >>> 8; buf![o + 2] = ip >>> 16; buf![o + 3] = ip >>> 24
    buf![o + 4] = port; buf![o + 5] = port >>> 8
    o += 6
  }
  return o
}
function setHas (k: number, mask: number): boolean {
  for (let s = Math.imul(k, 0x9e3779b1) >>> 0 & mask; setGen[s] === gen; s = (s + 1) & mask) {
    if (setKeys[s] === k) return true
  }
  return false
}

function setAdd (k: number, mask: number): void {
  let s = Math.imul(k, 0x9e3779b1) >>> 0 & mask
  while (setGen[s] === gen) {
    if (setKeys[s] === k) return
    s = (s + 1) & mask
  }
  setGen[s] = gen
  setKeys[s] = k
}

/**
 * A returned HTTP/UDP IPv4 peer. It copies its peer id as five int32 fields (the record may move
 * or change after the announce; small integers live in the object, so no second allocation) and
 * makes it a string only when read: compact answers (UDP, most HTTP) never read it.
 */
class RecordPeer implements StorePeer {
  readonly kind: PeerKind = KIND_V4
  readonly conn = 0
  private id: BinaryString | undefined = undefined
  constructor (
    readonly addr: BinaryString,
    private readonly len: number,
    private readonly i0: number, private readonly i1: number, private readonly i2: number,
    private readonly i3: number, private readonly i4: number
  ) {}

  get peerId (): BinaryString {
    if (this.id === undefined) {
      idWords[0] = this.i0; idWords[1] = this.i1; idWords[2] = this.i2; idWords[3] = this.i3; idWords[4] = this.i4
      this.id = idBytes.toString('latin1', 0, this.len)
    }
    return this.id
  }
}

/** Scratch for RecordPeer.peerId: the words written back in native order give the bytes back. */
const idBytes = Buffer.alloc(20)
const idWords = new Int32Array(idBytes.buffer, idBytes.byteOffset, 5)

function * swarmPeers (swarm: Swarm): IterableIterator<[BinaryString, PeerView]> {
  if (swarm.cls >= 0) {
    // Snapshot first: the caller may announce while iterating.
    const chunk = swarm.chunk!
    const cap = 1 << swarm.cls
    const views: Array<[BinaryString, PeerView]> = []
    const add = (p: number, seeder: boolean): void => {
      const r = swarm.off + p
      const addr = readAddr(chunk, r)
      views.push([addr, {
        peerId: readId(chunk.u8, r * RECORD_BYTES), addr, kind: KIND_V4, conn: 0, seeder, lastSeen: chunk.u32[r * WORDS + W_SEEN]
      }])
    }
    for (let p = 0; p < swarm.nL; p++) add(p, false)
    for (let p = cap - swarm.nS; p < cap; p++) add(p, true)
    yield * views
  }
  if (swarm.extra !== undefined) yield * swarm.extra.byKey.entries()
}

/**
 * `torrentWalk`: the entries in order, then the torrents created behind the walk meanwhile.
 * Entries are reused, so a torrent named and then dropped may come back at an entry ahead
 * (`named` skips it there) or behind (`behind` names it at the end, as it is then).
 */
class Walk implements TorrentWalk {
  /** The next entry. */
  at = 0
  /** Live at an entry already passed, not named yet. */
  private readonly behind = new Set<BinaryString>()
  /** Named, then dropped or named from `behind`: never named again. Holds only what changed meanwhile. */
  private readonly named = new Set<BinaryString>()
  private tail: Iterator<BinaryString> | undefined
  /** The entry of the torrent named last. */
  private last = -1

  constructor (
    private readonly table: TorrentTable,
    private readonly infoAt: (e: number) => SwarmInfo,
    private readonly onClose: (w: Walk) => void
  ) {}

  next (): BinaryString | undefined {
    const t = this.table
    if (this.at < 0) return undefined // closed
    while (this.at < t.end) {
      const e = this.at++
      if (!t.live(e)) continue
      const k = t.key(e)
      if (this.named.size !== 0 && this.named.has(k)) continue
      this.last = e
      return k
    }
    // One iterator throughout: it skips what was deleted and reaches what is added meanwhile.
    this.tail ??= this.behind.values()
    const r = this.tail.next()
    if (r.done === true) return undefined
    this.behind.delete(r.value)
    this.named.add(r.value)
    this.last = t.find(r.value) // live: a drop takes it out of `behind`
    return r.value
  }

  info (): SwarmInfo {
    if (this.last < 0 || !this.table.live(this.last)) throw new Error('TorrentWalk.info: no torrent named')
    return this.infoAt(this.last)
  }

  created (e: number, k: BinaryString): void {
    if (e < this.at && !this.named.has(k)) this.behind.add(k)
  }

  dropped (e: number, k: BinaryString): void {
    // Behind the walk and not in `behind`: it was named.
    if (e < this.at && !this.behind.delete(k)) this.named.add(k)
  }

  close (): void {
    this.onClose(this)
    this.behind.clear()
    this.named.clear()
    this.at = this.last = -1
  }
}

/** A torrent with more than one peer, with object peers, or with more downloads than a byte holds. */
class Swarm {
  complete = 0
  incomplete = 0
  downloaded = 0
  /** The block of records: chunk, first record, size class (-1: none), leecher and seeder counts. */
  chunk: Chunk | undefined = undefined
  off = 0
  cls = -1
  nL = 0
  nS = 0
  index: Int32Array | undefined = undefined
  extra: Extra | undefined = undefined
  /** Its entry in the torrent table (-1 once the object is given up). */
  constructor (public entry: number) {}
}

class Peer implements PeerView {
  /** Index in its list. */
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

/** Object peers of a swarm: by key, and in one dense array per (kind, seeder). */
class Extra {
  readonly byKey = new Map<BinaryString, Peer>()
  /** Index kind * 2 + (seeder ? 1 : 0). */
  readonly lists: Array<Peer[] | undefined> = []

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
}
