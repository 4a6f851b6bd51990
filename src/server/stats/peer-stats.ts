import peerid from 'bittorrent-peerid'
import type { BinaryString } from '../../protocol/common/types.js'
import type { PeerKind, StoreListener } from '../store/store.js'

/** The reference package's `/stats.json` fields. */
export interface TrackerStats {
  torrents: number
  activeTorrents: number
  peersAll: number
  peersSeederOnly: number
  peersLeecherOnly: number
  peersSeederAndLeecher: number
  peersIPv4: number
  peersIPv6: number
  clients: Record<string, Record<string, number>>
}

/** Per unique peer id: in how many swarms it seeds / leeches, over how many IPv4 / IPv6 entries. */
interface Entry {
  seed: number
  leech: number
  v4: number
  v6: number
  client: string
  version: string
}

/**
 * Statistics over unique peer ids (a peer in several swarms counts once, as in the reference),
 * kept up to date from the store's change notifications — a `/stats` request never walks peers.
 */
export class PeerStats implements StoreListener {
  private readonly entries = new Map<BinaryString, Entry>()
  private seederOnly = 0
  private leecherOnly = 0
  private both = 0
  private ipv4 = 0
  private ipv6 = 0
  private readonly clients = new Map<string, Map<string, number>>()

  peerChanged (peerId: BinaryString, _kind: PeerKind, addr: BinaryString, before: -1 | 0 | 1, after: -1 | 0 | 1): void {
    let e = this.entries.get(peerId)
    if (e === undefined) {
      if (before !== -1 || after === -1) return // nothing known to undo
      const { client, version } = describeClient(peerId)
      e = { seed: 0, leech: 0, v4: 0, v6: 0, client, version }
      this.entries.set(peerId, e)
      this.countClient(e, 1)
    }
    this.account(e, -1)
    const v6 = addr.length === 18 ? 1 : 0
    if (before === 1) e.seed--; else if (before === 0) e.leech--
    if (before !== -1) { if (v6 === 1) e.v6--; else e.v4-- }
    if (after === 1) e.seed++; else if (after === 0) e.leech++
    if (after !== -1) { if (v6 === 1) e.v6++; else e.v4++ }
    if (e.seed + e.leech <= 0) {
      this.entries.delete(peerId)
      this.countClient(e, -1)
      return
    }
    this.account(e, 1)
  }

  snapshot (torrents: number, activeTorrents: number): TrackerStats {
    const clients: Record<string, Record<string, number>> = Object.create(null)
    this.eachClient((name, version, n) => { (clients[name] ??= Object.create(null))[version] = n })
    return {
      torrents,
      activeTorrents,
      peersAll: this.entries.size,
      peersSeederOnly: this.seederOnly,
      peersLeecherOnly: this.leecherOnly,
      peersSeederAndLeecher: this.both,
      peersIPv4: this.ipv4,
      peersIPv6: this.ipv6,
      clients
    }
  }

  /**
   * The unique-peer counters at `out[at…at+5]`, in TrackerStats order: all, seeder only, leecher
   * only, both, IPv4, IPv6 (worker threads publish them in shared memory).
   */
  writeCounters (out: Int32Array, at: number): void {
    out[at] = this.entries.size
    out[at + 1] = this.seederOnly
    out[at + 2] = this.leecherOnly
    out[at + 3] = this.both
    out[at + 4] = this.ipv4
    out[at + 5] = this.ipv6
  }

  /** Peers by client name and version. */
  eachClient (fn: (name: string, version: string, peers: number) => void): void {
    for (const [name, versions] of this.clients) for (const [version, n] of versions) fn(name, version, n)
  }

  private account (e: Entry, d: 1 | -1): void {
    if (e.seed > 0 && e.leech > 0) this.both += d
    else if (e.seed > 0) this.seederOnly += d
    else if (e.leech > 0) this.leecherOnly += d
    if (e.v4 > 0) this.ipv4 += d
    if (e.v6 > 0) this.ipv6 += d
  }

  private countClient (e: Entry, d: 1 | -1): void {
    let versions = this.clients.get(e.client)
    if (versions === undefined) {
      if (d < 0) return
      versions = new Map()
      this.clients.set(e.client, versions)
    }
    const n = (versions.get(e.version) ?? 0) + d
    if (n > 0) versions.set(e.version, n)
    else {
      versions.delete(e.version)
      if (versions.size === 0) this.clients.delete(e.client)
    }
  }
}

function describeClient (peerId: BinaryString): { client: string, version: string } {
  let parsed: { client: string, version?: string }
  try {
    parsed = peerid(Buffer.from(peerId, 'latin1').toString('hex'))
  } catch {
    parsed = { client: 'unknown' }
  }
  // As the reference: an unknown version shows the peer id's first 8 bytes.
  const version = parsed.version !== undefined && parsed.version !== ''
    ? parsed.version
    : peerId.slice(0, 8).replace(/[^\x20-\x7e]/g, '?')
  return { client: String(parsed.client), version }
}
