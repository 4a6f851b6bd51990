import { createRequire } from 'node:module'
import type { Metric, Registry } from 'prom-client'
import { LATENCY_BUCKETS_S } from '../../constants.js'
import type { SwarmStore } from '../store/store.js'
import type { StatsCollector } from './collector.js'
import { ACTIONS, PROTOCOL_ACTIONS, PROTOCOLS, RESULTS, slot } from './metrics.js'
import type { Action, Outcome, Protocol, RequestMetrics } from './metrics.js'

/**
 * A Prometheus registry of its own for one Server (never prom-client's global one: two servers in
 * a process must not mix their numbers). Every value is read when scraped — from the request
 * counters' typed arrays, the store's counters and the collector — so the hot path only ever
 * increments plain numbers.
 */
/**
 * prom-client, loaded when a Server first serves `/metrics`: a tracker without metrics never
 * loads it (loading big modules it does not use was measured to slow the HTTP path, see
 * store/redis/redis-store.ts). CommonJS, so `require` works synchronously from ESM too.
 */
function promClient (): typeof import('prom-client') {
  const req = typeof require === 'function' ? require : createRequire(import.meta.url)
  return req('prom-client') as typeof import('prom-client')
}

export function createRegistry (metrics: RequestMetrics, store: SwarmStore, collector: StatsCollector, wsConnections: () => number): Registry {
  const { Counter, Gauge, Registry } = promClient()
  const registry = new Registry()
  const registers = [registry]

  // Counters: label children created once, advanced by what the typed array gained since the
  // previous scrape (prom-client counters only go up).
  const requests = new Counter({
    name: 'tracker_requests_total',
    help: 'Tracker requests by protocol, action and result (ok: answered; error: answered with a failure reason; dropped: not answered)',
    labelNames: ['protocol', 'action', 'result'] as const,
    registers,
    collect () {
      for (const c of children) {
        const now = metrics.count(c.slot)
        if (now > c.exported) { c.child.inc(now - c.exported); c.exported = now }
      }
    }
  })
  const children: Array<{ slot: number, exported: number, child: { inc: (n: number) => void } }> = []
  for (let p = 0; p < PROTOCOLS.length; p++) {
    for (const a of PROTOCOL_ACTIONS[p]) {
      for (let r = 0; r < RESULTS.length; r++) {
        const child = requests.labels(PROTOCOLS[p], ACTIONS[a], RESULTS[r])
        child.inc(0)
        children.push({ slot: slot(p as Protocol, a as Action, r as Outcome), exported: 0, child })
      }
    }
  }

  let droppedExported = 0
  const dropped = new Counter({
    name: 'tracker_udp_bad_connection_id_total',
    help: 'UDP packets dropped without a reply because their connection id did not verify',
    registers,
    collect () {
      const now = metrics.udpBadConnectionId
      if (now > droppedExported) { dropped.inc(now - droppedExported); droppedExported = now }
    }
  })

  registry.registerMetric(latencyHistogram(metrics))

  const gauge = (name: string, help: string, read: () => number): void => {
    // eslint-disable-next-line no-new
    new Gauge({ name, help, registers, collect () { this.set(read()) } })
  }
  gauge('tracker_torrents', 'Swarms with at least one peer', () => store.counts.torrents)
  gauge('tracker_peers', 'Peer entries over all swarms (a peer in two swarms counts twice)', () => store.counts.peers)
  gauge('tracker_seeders', 'Seeder entries over all swarms', () => store.counts.seeders)
  gauge('tracker_leechers', 'Leecher entries over all swarms', () => store.counts.leechers)
  gauge('tracker_ws_connections', 'Open WebSocket connections', wsConnections)
  gauge('tracker_uptime_seconds', 'Seconds since the server was created', () => Math.floor((Date.now() - collector.startedAt) / 1000))
  gauge('tracker_resident_memory_bytes', 'Resident set size of the process', () => process.memoryUsage.rss())

  const lag = new Gauge({
    name: 'tracker_event_loop_lag_seconds',
    help: 'Event-loop delay over the last sample window (perf_hooks.monitorEventLoopDelay)',
    labelNames: ['stat'] as const,
    registers,
    collect () {
      const l = collector.eventLoopLag()
      lag.set({ stat: 'mean' }, l.mean / 1000)
      lag.set({ stat: 'p99' }, l.p99 / 1000)
      lag.set({ stat: 'max' }, l.max / 1000)
    }
  })
  return registry
}

/**
 * The request latency histogram per protocol, built from the counters' bucket arrays. prom-client's
 * Histogram hashes its labels on every observe, so this one is a plain metric object that formats
 * at scrape time only.
 */
function latencyHistogram (metrics: RequestMetrics): Metric {
  const name = 'tracker_request_duration_seconds'
  const help = 'Time from reading a request to handing its answer to the socket, by protocol'
  const nb = LATENCY_BUCKETS_S.length
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: async () => {
      const values: Array<{ metricName: string, labels: Record<string, string | number>, value: number }> = []
      for (let p = 0; p < PROTOCOLS.length; p++) {
        const protocol = PROTOCOLS[p]
        let cumulative = 0
        for (let b = 0; b <= nb; b++) {
          cumulative += metrics.bucket(p * (nb + 1) + b)
          values.push({ metricName: `${name}_bucket`, labels: { le: b < nb ? LATENCY_BUCKETS_S[b] : '+Inf', protocol }, value: cumulative })
        }
        values.push({ metricName: `${name}_sum`, labels: { protocol }, value: metrics.latency(p as Protocol) })
        values.push({ metricName: `${name}_count`, labels: { protocol }, value: cumulative })
      }
      return { name, help, type: 'histogram', values, aggregator: 'sum' }
    },
    reset: () => undefined
  }
  return metric as unknown as Metric
}
