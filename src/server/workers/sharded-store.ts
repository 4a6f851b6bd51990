import { WORKER_CLIENTS_CACHE_MS, WORKER_SNAPSHOT_MAX_PEERS, WORKER_SYNC_TIMEOUT_MS } from '../../constants.js'
import { TrackerError, trackerError } from '../../errors.js'
import type { ErrorCode } from '../../errors.js'
import type { AnnounceEvent, BinaryString, ScrapeEntry } from '../../protocol/common/types.js'
import { nodeOfConn } from '../core/signalling.js'
import type { RemoteSignal, SignalBus } from '../core/signalling.js'
import type { PeerStats, TrackerStats } from '../stats/peer-stats.js'
import { MemoryStore } from '../store/memory/memory-store.js'
import { KIND_WS } from '../store/store.js'
import type {
  CompactAnnounceResult, PeerKind, PeerView, StoreAnnounce, StoreAnnounceResult, StoreCounts, StoreListener, StorePeer, SwarmInfo, SwarmStore
} from '../store/store.js'
import { COUNT_SLOTS, MSG_DROPPABLE, MSG_REPLY, PEER_STAT_AT, PEER_STAT_SLOTS, Writer } from './mesh.js'
import { shardOf } from './shard.js'
import type { Mesh, Reader } from './mesh.js'

// Message types. A reply carries its request's type with REPLY set.
const OP_ANNOUNCE = 1
const OP_SCRAPE = 2
const OP_SCRAPE_ALL = 3
const OP_REMOVE = 4
const OP_SWEEP = 5
const OP_SWARM_INFO = 6
const OP_INFO_HASHES = 7
const SIG_OFFER = 8
const SIG_ANSWER = 9
/** A peer change for the node that keeps the statistics of that peer id (no reply). */
const PEER_CHANGED = 10
const OP_CLIENTS = 11
const REPLY = 0x80
const ERROR_REPLY = 0xff
/** Room kept for the fixed part of a reply when a variable part is cut to fit a ring. */
const REPLY_SLACK = 256

interface Pending {
  op: number
  resolve: (v: any) => void
  reject: (err: Error) => void
}

export interface ShardedStoreOptions {
  /** This node's end of the mesh; node numbers are shard numbers. */
  mesh: Mesh
  peerTtl: number
  maxRetired?: number
  /** Told of changes in this node's own shard only. */
  listener?: StoreListener
  /**
   * This node's part of the unique-peer statistics (`trackerStats`): the peer ids whose
   * `shardOf` is this node. A change in any shard is routed to its peer id's node, so a peer in
   * swarms of several workers is still one entry in one place, as with one thread.
   */
  peerStats?: PeerStats
  /**
   * 'local' (default): `sweep` expires this node's own shard, as every worker does with its own
   * timer. 'all': one caller sweeps every shard (one pass ends when every shard finished one).
   */
  sweep?: 'local' | 'all'
  /** How long `trackerStats` reuses the other nodes' client counts, ms. Default WORKER_CLIENTS_CACHE_MS. */
  clientsCacheMs?: number
  /** Longest wait of a synchronous read of another shard, ms. Default WORKER_SYNC_TIMEOUT_MS. */
  syncTimeoutMs?: number
}

/**
 * A SwarmStore split across worker threads by info hash: each node owns the swarms whose hash
 * maps to it and keeps them in a plain MemoryStore, so its own requests are answered
 * synchronously; a request for another node's swarm travels through the mesh and resolves when
 * the owner answers. Every swarm lives in exactly one place, so counts, peers and `downloaded`
 * are the same whichever worker a client reaches.
 *
 * `counts` is the sum of counters each node publishes in shared memory after every change.
 * `swarmInfo` / `infoHashes` (the `torrents` view) read other shards synchronously, waiting for
 * their owner (bounded by WORKER_SYNC_TIMEOUT_MS; snapshots capped by WORKER_SNAPSHOT_MAX_PEERS
 * and ring size): they are for inspection, not for hot paths.
 *
 * The store is also the mesh's `SignalBus`: WebSocket offers and answers for peers connected to
 * another worker go to that worker's `onSignal`.
 */
export class ShardedStore implements SwarmStore, SignalBus {
  readonly node: number
  /** Signals for this node's WebSocket sessions (set to the server's `receiveSignal`). */
  onSignal: (signal: RemoteSignal) => void = () => {}
  private readonly local: MemoryStore
  private readonly mesh: Mesh
  private readonly nodes: number
  private readonly slots: Int32Array
  private readonly w = new Writer()
  private readonly pending = new Map<number, Pending>()
  private readonly syncReplies = new Map<number, unknown>()
  /** Synchronous reads given up on: their late replies are dropped. */
  private readonly abandoned = new Set<number>()
  private nextId = 1
  private readonly sweepAll: boolean
  private readonly swept: boolean[]
  private readonly syncTimeoutMs: number
  private readonly peerStats: PeerStats | undefined
  /** Other nodes' per-client peer counts, as last fetched for `trackerStats`. */
  private clientsCache: { at: number, rows: Array<[string, string, number]> } | undefined
  private readonly clientsCacheMs: number

  constructor (opts: ShardedStoreOptions) {
    this.mesh = opts.mesh
    this.nodes = opts.mesh.nodes
    // SignalBus node numbers start at 1 (0 means "no bus"); shard numbers at 0.
    this.node = opts.mesh.node + 1
    this.peerStats = opts.peerStats
    this.clientsCacheMs = opts.clientsCacheMs ?? WORKER_CLIENTS_CACHE_MS
    const listener = opts.listener
    this.local = new MemoryStore({
      peerTtl: opts.peerTtl,
      listener: this.peerStats === undefined
        ? listener
        : {
            peerChanged: (peerId, kind, addr, before, after) => {
              listener?.peerChanged(peerId, kind, addr, before, after)
              this.routePeerChange(peerId, kind, addr, before, after)
            }
          },
      maxRetired: opts.maxRetired
    })
    this.slots = opts.mesh.control.subarray(2 * this.nodes)
    this.sweepAll = opts.sweep === 'all'
    this.swept = new Array<boolean>(this.nodes).fill(false)
    this.syncTimeoutMs = opts.syncTimeoutMs ?? WORKER_SYNC_TIMEOUT_MS
    opts.mesh.start((from, r) => this.onMessage(from, r))
  }

  /** The shard (node) that owns a swarm (see shard.ts: the kernel steers UDP by the same function). */
  shardOf (infoHash: BinaryString): number {
    return shardOf(infoHash, this.nodes)
  }

  get counts (): StoreCounts {
    const s = this.slots
    const c: StoreCounts = { torrents: 0, retired: 0, peers: 0, seeders: 0, leechers: 0 }
    for (let n = 0; n < this.nodes; n++) {
      const b = n * COUNT_SLOTS
      c.torrents += Atomics.load(s, b)
      c.retired += Atomics.load(s, b + 1)
      c.peers += Atomics.load(s, b + 2)
      c.seeders += Atomics.load(s, b + 3)
      c.leechers += Atomics.load(s, b + 4)
    }
    return c
  }

  announce (a: StoreAnnounce, now: number): StoreAnnounceResult | Promise<StoreAnnounceResult> {
    const shard = this.shardOf(a.infoHash)
    if (shard === this.mesh.node) {
      this.checkWsOwner(a.infoHash, a.key, a.kind, a.conn)
      const r = this.local.announce(a, now)
      this.publish()
      return r
    }
    const w = this.begin(OP_ANNOUNCE)
    w.u32(now).u8(a.kind).u8(a.event).u8(a.seeder ? 1 : 0).u8(a.want).u32(a.numwant).f64(a.conn)
      .bin8(a.infoHash).bin8(a.key).bin8(a.peerId).bin8(a.addr)
    return this.request(shard, OP_ANNOUNCE)
  }

  // ---- Compact fast paths, for this node's own swarms only: the kernel steers each UDP announce
  // and scrape to its owner, so most are answered in place, synchronously, as with one thread.

  compactServes (infoHash: BinaryString): boolean {
    return shardOf(infoHash, this.nodes) === this.mesh.node
  }

  /** `announce` of a swarm this node owns (callers ask `compactServes` first). */
  announceCompact (a: StoreAnnounce, now: number, out: Uint8Array, offset: number): CompactAnnounceResult {
    if (!this.compactServes(a.infoHash)) throw new Error('announceCompact of a swarm another worker owns')
    const r = this.local.announceCompact(a, now, out, offset)
    this.publish()
    return r
  }

  /** `scrapeCompact` of a swarm this node owns (callers ask `compactServes` first). */
  scrapeCompact (infoHash: BinaryString, out: Uint8Array, offset: number): void {
    if (!this.compactServes(infoHash)) throw new Error('scrapeCompact of a swarm another worker owns')
    this.local.scrapeCompact(infoHash, out, offset)
  }

  scrape (infoHashes: readonly BinaryString[]): ScrapeEntry[] | Promise<ScrapeEntry[]> {
    const self = this.mesh.node
    let remote: number[][] | undefined
    for (let i = 0; i < infoHashes.length; i++) {
      const shard = this.shardOf(infoHashes[i])
      if (shard === self) continue
      if (remote === undefined) remote = []
      ;(remote[shard] ??= []).push(i)
    }
    if (remote === undefined) return this.local.scrape(infoHashes)
    const out: ScrapeEntry[] = new Array(infoHashes.length)
    const mine: BinaryString[] = []
    const mineAt: number[] = []
    for (let i = 0; i < infoHashes.length; i++) {
      if (this.shardOf(infoHashes[i]) === self) { mine.push(infoHashes[i]); mineAt.push(i) }
    }
    const local = this.local.scrape(mine)
    for (let k = 0; k < local.length; k++) out[mineAt[k]] = local[k]
    const waits: Array<Promise<void>> = []
    remote.forEach((idx, shard) => {
      const w = this.begin(OP_SCRAPE).u32(idx.length)
      for (const i of idx) w.bin8(infoHashes[i])
      waits.push(this.request<number[]>(shard, OP_SCRAPE).then(counts => {
        for (let k = 0; k < idx.length; k++) {
          out[idx[k]] = { infoHash: infoHashes[idx[k]], complete: counts[3 * k], incomplete: counts[3 * k + 1], downloaded: counts[3 * k + 2] }
        }
      }))
    })
    return Promise.all(waits).then(() => out)
  }

  scrapeAll (limit: number): ScrapeEntry[] | Promise<ScrapeEntry[]> {
    const out = this.local.scrapeAll(limit)
    if (this.nodes === 1 || out.length >= limit) return out
    const waits: Array<Promise<ScrapeEntry[]>> = []
    for (let n = 0; n < this.nodes; n++) {
      if (n === this.mesh.node) continue
      this.begin(OP_SCRAPE_ALL).u32(limit - out.length)
      waits.push(this.request(n, OP_SCRAPE_ALL))
    }
    return Promise.all(waits).then(parts => {
      for (const p of parts) for (const e of p) { if (out.length >= limit) break; out.push(e) }
      return out
    })
  }

  /**
   * `conn`: remove the WebSocket peer only while it belongs to that connection (a socket that
   * closes while another worker's socket holds the peer id leaves that one's entry alone).
   */
  remove (infoHash: BinaryString, key: BinaryString, conn?: number): boolean | Promise<boolean> {
    const shard = this.shardOf(infoHash)
    if (shard === this.mesh.node) {
      if (!this.removable(infoHash, key, conn ?? 0)) return false
      const r = this.local.remove(infoHash, key)
      this.publish()
      return r
    }
    this.begin(OP_REMOVE).bin8(infoHash).bin8(key).f64(conn ?? 0)
    return this.request(shard, OP_REMOVE)
  }

  /**
   * Each worker's signalling binds a WebSocket peer id to one of its own sockets, and knows
   * nothing of the other workers' sockets: the shard that owns the swarm refuses an announce for
   * a WS peer that a connection of another worker holds (else a socket on another worker could
   * take over or stop any WebSocket peer by its peer id). Within one worker the binding rules.
   */
  private checkWsOwner (infoHash: BinaryString, key: BinaryString, kind: PeerKind, conn: number): void {
    if (kind !== KIND_WS || this.removable(infoHash, key, conn)) return
    throw trackerError('PEER_ID_BOUND')
  }

  /** No other worker's connection holds the WS peer `key` (`conn` 0: no check). */
  private removable (infoHash: BinaryString, key: BinaryString, conn: number): boolean {
    if (conn === 0) return true
    const owner = this.local.wsConnOf(infoHash, key)
    return owner === undefined || nodeOfConn(owner) === nodeOfConn(conn)
  }

  sweep (now: number, budget: number): boolean | Promise<boolean> {
    const mine = this.local.sweep(now, budget)
    this.publish()
    if (!this.sweepAll || this.nodes === 1) return mine
    const self = this.mesh.node
    this.swept[self] ||= mine
    const waits: Array<Promise<void>> = []
    for (let n = 0; n < this.nodes; n++) {
      if (n === self || this.swept[n]) continue
      this.begin(OP_SWEEP).u32(now).u32(budget)
      waits.push(this.request<boolean>(n, OP_SWEEP).then(done => { this.swept[n] ||= done }))
    }
    const finish = (): boolean => {
      if (!this.swept.every(Boolean)) return false
      this.swept.fill(false)
      return true
    }
    return waits.length === 0 ? finish() : Promise.all(waits).then(finish)
  }

  swarmInfo (infoHash: BinaryString): SwarmInfo | undefined {
    const shard = this.shardOf(infoHash)
    if (shard === this.mesh.node) return this.local.swarmInfo(infoHash)
    this.begin(OP_SWARM_INFO).bin8(infoHash)
    return this.syncRequest<SwarmInfo | undefined>(shard)
  }

  infoHashes (): IterableIterator<BinaryString> {
    if (this.nodes === 1) return this.local.infoHashes()
    const all = [...this.local.infoHashes()]
    for (let n = 0; n < this.nodes; n++) {
      if (n === this.mesh.node) continue
      this.begin(OP_INFO_HASHES)
      for (const h of this.syncRequest<BinaryString[]>(n)) all.push(h)
    }
    return all[Symbol.iterator]()
  }

  /**
   * The reference's `/stats` numbers over every worker: each node's unique-peer counters (in
   * shared memory, always current) summed, and `clients` merged from this node's own and the
   * others' (fetched at most once per WORKER_CLIENTS_CACHE_MS; the last ones kept when a node
   * does not answer in time). undefined without `peerStats`.
   */
  trackerStats (torrents: number, activeTorrents: number): TrackerStats | undefined {
    const own = this.peerStats
    if (own === undefined) return undefined
    const s = this.slots
    const sum = new Array<number>(PEER_STAT_SLOTS).fill(0)
    for (let n = 0; n < this.nodes; n++) {
      const b = n * COUNT_SLOTS + PEER_STAT_AT
      for (let k = 0; k < PEER_STAT_SLOTS; k++) sum[k] += Atomics.load(s, b + k)
    }
    const clients: Record<string, Record<string, number>> = Object.create(null)
    const add = (name: string, version: string, n: number): void => {
      const v = clients[name] ??= Object.create(null)
      v[version] = (v[version] ?? 0) + n
    }
    own.eachClient(add)
    for (const [name, version, n] of this.otherClients()) add(name, version, n)
    return {
      torrents,
      activeTorrents,
      peersAll: sum[0],
      peersSeederOnly: sum[1],
      peersLeecherOnly: sum[2],
      peersSeederAndLeecher: sum[3],
      peersIPv4: sum[4],
      peersIPv6: sum[5],
      clients
    }
  }

  /** Empties this node's shard (other nodes keep theirs: each worker closes its own). */
  close (): void {
    this.local.close()
    this.publish()
    this.swept.fill(false)
  }

  // ---- SignalBus ----------------------------------------------------------------------------

  send (node: number, signal: RemoteSignal): void {
    const to = node - 1
    if (to < 0 || to >= this.nodes || to === this.mesh.node) return
    const w = this.w.reset()
    if (signal.t === 'offer') {
      w.u8(SIG_OFFER).f64(signal.conn).f64(signal.fromConn).f64(signal.expires)
        .bin8(signal.fromPeerId).bin8(signal.toPeerId).bin8(signal.infoHash).bin8(signal.offerId).utf8(signal.message)
    } else {
      w.u8(SIG_ANSWER).f64(signal.conn).utf8(signal.message)
    }
    // Best effort, like WebRTC signalling itself: a full mesh drops the signal.
    if (w.len <= this.mesh.maxMessage) this.mesh.send(to, w, MSG_DROPPABLE)
  }

  // ---- requests -----------------------------------------------------------------------------

  private begin (op: number): Writer {
    const id = this.nextId
    this.nextId = this.nextId >= 0xfffffffe ? 1 : this.nextId + 1
    return this.w.reset().u8(op).u32(id)
  }

  /** Sends the request in `this.w` to `shard`; resolves with the decoded reply. */
  private request<T> (shard: number, op: number): Promise<T> {
    const id = this.w.buf.readUInt32LE(1)
    return new Promise<T>((resolve, reject) => {
      if (this.w.len > this.mesh.maxMessage || !this.mesh.send(shard, this.w, MSG_DROPPABLE)) {
        reject(trackerError('WORKERS_BUSY'))
        return
      }
      this.pending.set(id, { op, resolve, reject })
    })
  }

  private syncRequest<T> (shard: number): T {
    const id = this.w.buf.readUInt32LE(1)
    if (!this.mesh.send(shard, this.w, MSG_DROPPABLE)) throw trackerError('WORKERS_BUSY')
    const ok = this.mesh.waitUntil(() => this.syncReplies.has(id), this.syncTimeoutMs)
    const v = this.syncReplies.get(id)
    this.syncReplies.delete(id)
    if (!ok) this.abandoned.add(id)
    if (!ok) throw new Error(`worker ${shard + 1} did not answer within ${this.syncTimeoutMs} ms`)
    if (v instanceof Error) throw v
    return v as T
  }

  /** This shard's counters, for every node's `counts`. */
  private publish (): void {
    const c = this.local.counts
    const s = this.slots
    const b = this.mesh.node * COUNT_SLOTS
    // Plain stores: the ring's Atomics.store of a reply publishes them to the requester.
    s[b] = c.torrents; s[b + 1] = c.retired; s[b + 2] = c.peers; s[b + 3] = c.seeders; s[b + 4] = c.leechers
  }

  /** Hands a peer change to the statistics of its peer id's node (here, or through the mesh). */
  private routePeerChange (peerId: BinaryString, kind: PeerKind, addr: BinaryString, before: -1 | 0 | 1, after: -1 | 0 | 1): void {
    const owner = shardOf(peerId, this.nodes)
    if (owner === this.mesh.node) return this.countPeerChange(peerId, kind, addr, before, after)
    const w = this.w.reset().u8(PEER_CHANGED).u8(kind).u8(before + 1).u8(after + 1).bin8(peerId).bin8(addr)
    // Never dropped (queued while the ring is full): a lost change would skew the counts for good.
    this.mesh.send(owner, w, MSG_REPLY)
  }

  private countPeerChange (peerId: BinaryString, kind: PeerKind, addr: BinaryString, before: -1 | 0 | 1, after: -1 | 0 | 1): void {
    const stats = this.peerStats!
    stats.peerChanged(peerId, kind, addr, before, after)
    stats.writeCounters(this.slots, this.mesh.node * COUNT_SLOTS + PEER_STAT_AT)
  }

  /** The other nodes' [client, version, peers] rows, cached for WORKER_CLIENTS_CACHE_MS. */
  private otherClients (): Array<[string, string, number]> {
    const now = Date.now()
    const cached = this.clientsCache
    if (this.nodes === 1) return []
    if (cached !== undefined && now - cached.at < this.clientsCacheMs) return cached.rows
    const rows: Array<[string, string, number]> = []
    try {
      for (let n = 0; n < this.nodes; n++) {
        if (n === this.mesh.node) continue
        this.begin(OP_CLIENTS)
        for (const row of this.syncRequest<Array<[string, string, number]>>(n)) rows.push(row)
      }
    } catch {
      // A busy or stuck worker: the last rows fetched (or none) rather than no statistics.
      return cached?.rows ?? []
    }
    this.clientsCache = { at: now, rows }
    return rows
  }

  private onMessage (from: number, r: Reader): void {
    const type = r.u8()
    if (type === PEER_CHANGED) {
      const kind = r.u8() as PeerKind
      const before = (r.u8() - 1) as -1 | 0 | 1
      const after = (r.u8() - 1) as -1 | 0 | 1
      const peerId = r.bin8()
      if (this.peerStats !== undefined) this.countPeerChange(peerId, kind, r.bin8(), before, after)
      return
    }
    if (type === SIG_OFFER) {
      const conn = r.f64()
      const fromConn = r.f64()
      const expires = r.f64()
      const fromPeerId = r.bin8()
      const toPeerId = r.bin8()
      const infoHash = r.bin8()
      const offerId = r.bin8()
      this.onSignal({ t: 'offer', conn, fromConn, fromPeerId, toPeerId, infoHash, offerId, expires, message: r.utf8() })
      return
    }
    if (type === SIG_ANSWER) {
      const conn = r.f64()
      this.onSignal({ t: 'answer', conn, message: r.utf8() })
      return
    }
    const id = r.u32()
    if ((type & REPLY) !== 0) return this.onReply(type, id, r)
    let w: Writer
    try {
      w = this.serve(type, id, r)
    } catch (err) {
      // A TrackerError keeps its code, so the asker's client gets its catalog text.
      w = this.w.reset().u8(ERROR_REPLY).u32(id).utf8(err instanceof Error ? err.message : String(err))
        .utf8(err instanceof TrackerError && err.expose ? err.code : '')
    }
    this.mesh.send(from, w, MSG_REPLY)
  }

  /** Applies another node's request to this shard; returns the reply in `this.w`. */
  private serve (type: number, id: number, r: Reader): Writer {
    const local = this.local
    const room = this.mesh.maxMessage - REPLY_SLACK
    switch (type) {
      case OP_ANNOUNCE: {
        const now = r.u32()
        const kind = r.u8() as PeerKind
        const event = r.u8() as AnnounceEvent
        const seeder = r.u8() === 1
        const want = r.u8()
        const numwant = r.u32()
        const conn = r.f64()
        const infoHash = r.bin8()
        const key = r.bin8()
        const peerId = r.bin8()
        const addr = r.bin8()
        this.checkWsOwner(infoHash, key, kind, conn)
        const res = local.announce({ infoHash, key, peerId, addr, kind, conn, event, seeder, numwant, want }, now)
        this.publish()
        const w = this.w.reset().u8(type | REPLY).u32(id).u32(res.complete).u32(res.incomplete).f64(res.downloaded)
        const at = w.len
        w.u32(0)
        let n = 0
        for (; n < res.peers.length && w.len < room; n++) {
          const p = res.peers[n]
          w.u8(p.kind).f64(p.conn).bin8(p.peerId).bin8(p.addr)
        }
        w.buf.writeUInt32LE(n, at)
        return w
      }
      case OP_SCRAPE: {
        const n = r.u32()
        const hashes: BinaryString[] = []
        for (let i = 0; i < n; i++) hashes.push(r.bin8())
        const w = this.w.reset().u8(type | REPLY).u32(id).u32(n)
        for (const e of local.scrape(hashes)) w.u32(e.complete).u32(e.incomplete).f64(e.downloaded)
        return w
      }
      case OP_SCRAPE_ALL: {
        const limit = r.u32()
        const w = this.w.reset().u8(type | REPLY).u32(id)
        const at = w.len
        w.u32(0)
        let n = 0
        for (const e of local.scrapeAll(limit)) {
          if (w.len >= room) break
          w.bin8(e.infoHash).u32(e.complete).u32(e.incomplete).f64(e.downloaded)
          n++
        }
        w.buf.writeUInt32LE(n, at)
        return w
      }
      case OP_REMOVE: {
        const infoHash = r.bin8()
        const key = r.bin8()
        const ok = this.removable(infoHash, key, r.f64()) && local.remove(infoHash, key)
        this.publish()
        return this.w.reset().u8(type | REPLY).u32(id).u8(ok ? 1 : 0)
      }
      case OP_SWEEP: {
        const now = r.u32()
        const done = local.sweep(now, r.u32())
        this.publish()
        return this.w.reset().u8(type | REPLY).u32(id).u8(done ? 1 : 0)
      }
      case OP_SWARM_INFO: {
        const info = local.swarmInfo(r.bin8())
        const w = this.w.reset().u8(type | REPLY).u32(id)
        if (info === undefined) return w.u8(0)
        w.u8(1).u32(info.complete).u32(info.incomplete).f64(info.downloaded)
        const at = w.len
        w.u32(0)
        let n = 0
        for (const [key, p] of info.peers()) {
          if (n >= WORKER_SNAPSHOT_MAX_PEERS || w.len >= room) break
          w.bin8(key).u8(p.kind).u8(p.seeder ? 1 : 0).f64(p.conn).f64(p.lastSeen).bin8(p.peerId).bin8(p.addr)
          n++
        }
        w.buf.writeUInt32LE(n, at)
        return w
      }
      case OP_INFO_HASHES: {
        const w = this.w.reset().u8(type | REPLY).u32(id)
        const at = w.len
        w.u32(0)
        let n = 0
        for (const h of local.infoHashes()) {
          if (w.len >= room) break
          w.bin8(h)
          n++
        }
        w.buf.writeUInt32LE(n, at)
        return w
      }
      case OP_CLIENTS: {
        const w = this.w.reset().u8(type | REPLY).u32(id)
        const at = w.len
        w.u32(0)
        let n = 0
        // Cut to fit the ring (peer ids with made-up versions can make many rows): a partial table.
        this.peerStats?.eachClient((name, version, peers) => {
          if (w.len >= room) return
          w.utf8(name).utf8(version).u32(peers)
          n++
        })
        w.buf.writeUInt32LE(n, at)
        return w
      }
      default:
        throw new Error(`unknown worker request type ${type}`)
    }
  }

  private onReply (type: number, id: number, r: Reader): void {
    const op = type === ERROR_REPLY ? 0 : type & ~REPLY
    if (this.abandoned.delete(id)) return
    if (op === OP_SWARM_INFO || op === OP_INFO_HASHES || op === OP_CLIENTS) {
      this.syncReplies.set(id, op === OP_SWARM_INFO ? readSwarmInfo(r) : op === OP_INFO_HASHES ? readHashes(r) : readClients(r))
      return
    }
    const p = this.pending.get(id)
    if (p === undefined) {
      // An error answer to a synchronous read.
      if (type === ERROR_REPLY) this.syncReplies.set(id, errorOf(r))
      return
    }
    this.pending.delete(id)
    if (type === ERROR_REPLY) return p.reject(errorOf(r))
    switch (op) {
      case OP_ANNOUNCE: {
        const complete = r.u32()
        const incomplete = r.u32()
        const downloaded = r.f64()
        const n = r.u32()
        const peers: StorePeer[] = new Array(n)
        for (let i = 0; i < n; i++) {
          const kind = r.u8() as PeerKind
          const conn = r.f64()
          const peerId = r.bin8()
          peers[i] = { peerId, addr: r.bin8(), kind, conn }
        }
        return p.resolve({ complete, incomplete, downloaded, peers })
      }
      case OP_SCRAPE: {
        const n = r.u32()
        const counts: number[] = new Array(3 * n)
        for (let i = 0; i < n; i++) { counts[3 * i] = r.u32(); counts[3 * i + 1] = r.u32(); counts[3 * i + 2] = r.f64() }
        return p.resolve(counts)
      }
      case OP_SCRAPE_ALL: {
        const n = r.u32()
        const out: ScrapeEntry[] = []
        for (let i = 0; i < n; i++) {
          const infoHash = r.bin8()
          out.push({ infoHash, complete: r.u32(), incomplete: r.u32(), downloaded: r.f64() })
        }
        return p.resolve(out)
      }
      case OP_REMOVE:
      case OP_SWEEP:
        return p.resolve(r.u8() === 1)
      default:
        p.reject(new Error(`unexpected worker reply type ${type}`))
    }
  }
}

function readSwarmInfo (r: Reader): SwarmInfo | undefined {
  if (r.u8() === 0) return undefined
  const complete = r.u32()
  const incomplete = r.u32()
  const downloaded = r.f64()
  const n = r.u32()
  const peers = new Map<BinaryString, PeerView>()
  for (let i = 0; i < n; i++) {
    const key = r.bin8()
    const kind = r.u8() as PeerKind
    const seeder = r.u8() === 1
    const conn = r.f64()
    const lastSeen = r.f64()
    const peerId = r.bin8()
    peers.set(key, { peerId, addr: r.bin8(), kind, conn, seeder, lastSeen })
  }
  return { complete, incomplete, downloaded, peers: () => peers.entries() }
}

function readHashes (r: Reader): BinaryString[] {
  const n = r.u32()
  const out: BinaryString[] = new Array(n)
  for (let i = 0; i < n; i++) out[i] = r.bin8()
  return out
}

function readClients (r: Reader): Array<[string, string, number]> {
  const n = r.u32()
  const out: Array<[string, string, number]> = new Array(n)
  for (let i = 0; i < n; i++) {
    const name = r.utf8()
    const version = r.utf8()
    out[i] = [name, version, r.u32()]
  }
  return out
}

/** The error of an ERROR_REPLY: its message, a TrackerError again when it was one. */
function errorOf (r: Reader): Error {
  const message = r.utf8()
  const code = r.utf8()
  return code === '' ? new Error(message) : new TrackerError(code as ErrorCode, message)
}
