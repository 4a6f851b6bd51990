import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import type { IntervalHistogram } from 'node:perf_hooks'
import {
  EVENT_LOOP_MONITOR_RESOLUTION_MS, STATS_HISTORY_SAMPLES, STATS_SAMPLE_MS, STATS_TOP_SCAN_CHUNK, STATS_TOP_TORRENTS
} from '../../constants.js'
import { binaryToHex } from '../../protocol/common/binary.js'
import type { BinaryString } from '../../protocol/common/types.js'
import type { SwarmStore } from '../store/store.js'
import {
  A_ANNOUNCE, A_CONNECT, A_SCRAPE, ACTIONS, P_HTTP, P_UDP, P_WS, PROTOCOL_ACTIONS, PROTOCOLS, slot
} from './metrics.js'
import type { Action, Protocol, RequestMetrics } from './metrics.js'

/** Request-rate series of the history: [name, protocol, action]. */
const RATE_SERIES: ReadonlyArray<readonly [string, Protocol, Action]> = [
  ['http.announce', P_HTTP, A_ANNOUNCE], ['http.scrape', P_HTTP, A_SCRAPE],
  ['udp.connect', P_UDP, A_CONNECT], ['udp.announce', P_UDP, A_ANNOUNCE], ['udp.scrape', P_UDP, A_SCRAPE],
  ['ws.announce', P_WS, A_ANNOUNCE], ['ws.scrape', P_WS, A_SCRAPE]
]
/** Every series of the history, in column order: request rates, failures/s, then gauges. */
export const HISTORY_SERIES = [...RATE_SERIES.map(s => s[0]), 'errors', 'peers', 'torrents'] as const
const NS = HISTORY_SERIES.length
const COL_ERRORS = RATE_SERIES.length
const COL_PEERS = COL_ERRORS + 1
const COL_TORRENTS = COL_ERRORS + 2

export interface TopTorrent {
  infoHash: string
  peers: number
  complete: number
  incomplete: number
  downloaded: number
}

export interface EventLoopLag {
  /** Milliseconds over the last sample window (since start if none has closed yet). */
  mean: number
  p99: number
  max: number
}

export interface Health {
  uptimeSeconds: number
  rssBytes: number
  heapUsedBytes: number
  eventLoopLagMs: EventLoopLag
  workers: number
}

export interface RequestCounts { ok: number, error: number, dropped: number, rate: number }

export interface History {
  sampleSeconds: number
  /** Unix seconds of each sample, oldest first. */
  t: number[]
  /** Per series, one value per sample: requests per second (rates), or the gauge's value. */
  series: Record<string, number[]>
}

/** The fields /stats.json adds to the reference's. */
export interface StatsExtras {
  time: number
  swarmPeers: { all: number, seeders: number, leechers: number }
  wsConnections: number
  requests: Record<string, Record<string, RequestCounts>>
  udpBadConnectionId: number
  topTorrents: TopTorrent[]
  health: Health
  history: History
}

/**
 * What the dashboard and /metrics read besides the store's counters: a ring buffer of samples
 * (the last hour of request rates, peers and torrents), the top torrents by peers, and the
 * event-loop delay. One timer takes a sample; nothing here runs per request.
 */
export class StatsCollector {
  readonly startedAt = Date.now()
  readonly sampleMs: number
  private readonly ring = new Float64Array(STATS_HISTORY_SAMPLES * NS)
  private readonly times = new Float64Array(STATS_HISTORY_SAMPLES)
  private head = 0
  private size = 0
  /** Request totals of each rate series at the previous sample. */
  private readonly last = new Float64Array(RATE_SERIES.length + 1)
  private lastAt: number
  /** Monotonic ms; a parameter so tests never sleep. */
  private readonly clock: () => number
  private readonly eld: IntervalHistogram
  private lag: EventLoopLag = { mean: 0, p99: 0, max: 0 }
  private top: TopTorrent[] = []
  private scanning = false
  private timer: NodeJS.Timeout | undefined

  constructor (
    private readonly metrics: RequestMetrics,
    private readonly store: SwarmStore,
    private readonly wsConnections: () => number,
    opts: { sampleMs?: number, clock?: () => number } = {}
  ) {
    this.sampleMs = opts.sampleMs !== undefined && opts.sampleMs > 0 ? opts.sampleMs : STATS_SAMPLE_MS
    this.clock = opts.clock ?? (() => performance.now())
    this.lastAt = this.clock()
    this.eld = monitorEventLoopDelay({ resolution: EVENT_LOOP_MONITOR_RESOLUTION_MS })
  }

  start (): void {
    if (this.timer !== undefined) return
    this.eld.enable()
    this.lastAt = this.clock()
    this.timer = setInterval(() => {
      // A store that cannot give its counters now costs this sample, never the process.
      try { this.sample() } catch { /* the next sample tries again */ }
    }, this.sampleMs)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    this.eld.disable()
  }

  /** Takes one history sample now (the timer calls it every `sampleMs`). */
  sample (): void {
    const now = this.clock()
    const secs = Math.max((now - this.lastAt) / 1000, 0.001)
    this.lastAt = now
    const row = this.head * NS
    const m = this.metrics
    for (let i = 0; i < RATE_SERIES.length; i++) {
      const total = m.total(RATE_SERIES[i][1], RATE_SERIES[i][2])
      this.ring[row + i] = (total - this.last[i]) / secs
      this.last[i] = total
    }
    const failures = m.failures()
    this.ring[row + COL_ERRORS] = (failures - this.last[COL_ERRORS]) / secs
    this.last[COL_ERRORS] = failures
    const c = this.store.counts
    this.ring[row + COL_PEERS] = c.peers
    this.ring[row + COL_TORRENTS] = c.torrents
    this.times[this.head] = Math.floor(Date.now() / 1000)
    this.head = (this.head + 1) % STATS_HISTORY_SAMPLES
    if (this.size < STATS_HISTORY_SAMPLES) this.size++
    this.lag = this.readLag()
    this.eld.reset()
    this.rankTorrents()
  }

  /** Event-loop delay of the last closed window (of the open one before any closed). */
  eventLoopLag (): EventLoopLag {
    return this.size === 0 ? this.readLag() : this.lag
  }

  health (): Health {
    const mem = process.memoryUsage()
    return {
      uptimeSeconds: Math.floor((Date.now() - this.startedAt) / 1000),
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      eventLoopLagMs: this.eventLoopLag(),
      workers: this.metrics.nodes
    }
  }

  topTorrents (): TopTorrent[] {
    return this.top
  }

  extras (): StatsExtras {
    const m = this.metrics
    const requests: StatsExtras['requests'] = {}
    const newest = (this.head + STATS_HISTORY_SAMPLES - 1) % STATS_HISTORY_SAMPLES
    for (let p = 0; p < PROTOCOLS.length; p++) {
      const per: Record<string, RequestCounts> = {}
      for (const a of PROTOCOL_ACTIONS[p]) {
        const base = slot(p as Protocol, a, 0)
        const col = RATE_SERIES.findIndex(s => s[1] === p && s[2] === a)
        per[ACTIONS[a]] = {
          ok: m.count(base), error: m.count(base + 1), dropped: m.count(base + 2),
          rate: col === -1 || this.size === 0 ? 0 : round2(this.ring[newest * NS + col])
        }
      }
      requests[PROTOCOLS[p]] = per
    }
    const c = this.store.counts
    return {
      time: Date.now(),
      swarmPeers: { all: c.peers, seeders: c.seeders, leechers: c.leechers },
      wsConnections: this.wsConnections(),
      requests,
      udpBadConnectionId: m.udpBadConnectionId,
      topTorrents: this.top,
      health: this.health(),
      history: this.history()
    }
  }

  history (): History {
    const t: number[] = new Array(this.size)
    const series: Record<string, number[]> = {}
    for (let s = 0; s < NS; s++) series[HISTORY_SERIES[s]] = new Array<number>(this.size)
    const first = (this.head + STATS_HISTORY_SAMPLES - this.size) % STATS_HISTORY_SAMPLES
    for (let i = 0; i < this.size; i++) {
      const r = (first + i) % STATS_HISTORY_SAMPLES
      t[i] = this.times[r]
      for (let s = 0; s < NS; s++) series[HISTORY_SERIES[s]][i] = round2(this.ring[r * NS + s])
    }
    return { sampleSeconds: this.sampleMs / 1000, t, series }
  }

  private readLag (): EventLoopLag {
    const h = this.eld
    if (h.count === 0) return { mean: 0, p99: 0, max: 0 }
    // The monitor records the time between runs of its `resolution` ms timer: the lag is the rest.
    const lag = (ns: number): number => round2(Math.max(0, ns / 1e6 - EVENT_LOOP_MONITOR_RESOLUTION_MS))
    return { mean: lag(h.mean), p99: lag(h.percentile(99)), max: lag(h.max) }
  }

  /**
   * Ranks swarms by peer count into a bounded list. Walks swarms (never peers) a chunk per
   * event-loop turn, so a million torrents never stall a request; the list shown is the last
   * finished pass. One pass at a time.
   */
  private rankTorrents (): void {
    if (this.scanning) return
    this.scanning = true
    const it = this.store.infoHashes()
    const best: Array<{ ih: BinaryString, peers: number }> = []
    const step = (): void => {
      try {
        for (let n = 0; n < STATS_TOP_SCAN_CHUNK; n++) {
          const r = it.next()
          if (r.done === true) return this.publish(best)
          const info = this.store.swarmInfo(r.value)
          if (info === undefined) continue
          const peers = info.complete + info.incomplete
          if (best.length === STATS_TOP_TORRENTS && peers <= best[best.length - 1].peers) continue
          let i = best.length
          while (i > 0 && best[i - 1].peers < peers) i--
          best.splice(i, 0, { ih: r.value, peers })
          if (best.length > STATS_TOP_TORRENTS) best.pop()
        }
      } catch {
        // The store went away mid-pass (closed): keep the last list.
        this.scanning = false
        return
      }
      setImmediate(step).unref()
    }
    step()
  }

  private publish (best: Array<{ ih: BinaryString, peers: number }>): void {
    this.scanning = false
    const out: TopTorrent[] = []
    for (const b of best) {
      // Read again: counts may have moved while the pass ran.
      const info = this.store.swarmInfo(b.ih)
      if (info === undefined) continue
      out.push({
        infoHash: binaryToHex(b.ih), peers: info.complete + info.incomplete,
        complete: info.complete, incomplete: info.incomplete, downloaded: info.downloaded
      })
    }
    out.sort((x, y) => y.peers - x.peers || (x.infoHash < y.infoHash ? -1 : 1))
    this.top = out
  }
}

function round2 (n: number): number {
  return Math.round(n * 100) / 100
}
