import { performance } from 'node:perf_hooks'
import { LATENCY_BUCKETS_S } from '../../constants.js'

/** Protocols, actions and results of the request counters; numbers index flat typed arrays. */
export const P_HTTP = 0
export const P_UDP = 1
export const P_WS = 2
export const PROTOCOLS = ['http', 'udp', 'ws'] as const

export const A_ANNOUNCE = 0
export const A_SCRAPE = 1
export const A_CONNECT = 2
/** A request too broken to tell its action (bad UDP header, unparsable WebSocket message). */
export const A_INVALID = 3
export const ACTIONS = ['announce', 'scrape', 'connect', 'invalid'] as const

export const R_OK = 0
/** Answered with a failure reason. */
export const R_ERROR = 1
/** Not answered at all (UDP without a valid connection id). */
export const R_DROPPED = 2
export const RESULTS = ['ok', 'error', 'dropped'] as const

export type Protocol = 0 | 1 | 2
export type Action = 0 | 1 | 2 | 3
export type Outcome = 0 | 1 | 2

/** Which actions each protocol has (HTTP has no connect, and a bad HTTP path is a 404, not a request). */
export const PROTOCOL_ACTIONS: ReadonlyArray<readonly Action[]> = [
  [A_ANNOUNCE, A_SCRAPE],
  [A_CONNECT, A_ANNOUNCE, A_SCRAPE, A_INVALID],
  [A_ANNOUNCE, A_SCRAPE, A_INVALID]
]

const NA = ACTIONS.length
const NR = RESULTS.length
const NB = LATENCY_BUCKETS_S.length

/** Index of a (protocol, action, result) counter in `RequestMetrics.counts`. */
export function slot (p: Protocol, a: Action, r: Outcome): number {
  return (p * NA + a) * NR + r
}

const N_COUNTS = PROTOCOLS.length * NA * NR
const N_BUCKETS = PROTOCOLS.length * (NB + 1)
const AT_BUCKETS = N_COUNTS
const AT_LATENCY = AT_BUCKETS + N_BUCKETS
const AT_BAD_ID = AT_LATENCY + PROTOCOLS.length
const AT_WS = AT_BAD_ID + 1
/** Float64 slots of one node's metrics (in a SharedArrayBuffer: one such run per worker). */
export const METRICS_SLOTS = AT_WS + 1

/** Worker threads: every node's metrics in one SharedArrayBuffer of nodes × METRICS_SLOTS doubles. */
export interface SharedMetrics {
  buffer: SharedArrayBuffer
  node: number
  nodes: number
}

/**
 * Request counters of one server: plain numbers in typed arrays, so counting a request is an
 * index computation, two increments and a short bucket search — no label lookup, no allocation.
 * /metrics, /stats.json and the history sampler read these arrays when asked.
 *
 * With worker threads each worker writes its own run of a shared buffer and the readers
 * (`count`, `bucket`, `latency`, `total`, `failures`, `udpBadConnectionId`, `wsConnections`)
 * sum every worker's, so /stats.json and /metrics count the whole tracker whichever worker
 * answers (a Prometheus counter must not jump between two workers' values).
 */
export class RequestMetrics {
  /** This node's requests by slot(protocol, action, result). */
  readonly counts: Float64Array
  /** This node's latency observations per protocol and bucket (not cumulative; index NB is +Inf). */
  readonly buckets: Float64Array
  /** This node's sum of latencies per protocol, seconds. */
  readonly latencySum: Float64Array
  private readonly own: Float64Array
  /** Every node's run (only `own` without worker threads). */
  private readonly runs: Float64Array[]

  constructor (shared?: SharedMetrics) {
    if (shared === undefined) {
      this.own = new Float64Array(METRICS_SLOTS)
      this.runs = [this.own]
    } else {
      this.runs = Array.from({ length: shared.nodes }, (_, n) => new Float64Array(shared.buffer, n * METRICS_SLOTS * 8, METRICS_SLOTS))
      this.own = this.runs[shared.node]
    }
    this.counts = this.own.subarray(0, N_COUNTS)
    this.buckets = this.own.subarray(AT_BUCKETS, AT_BUCKETS + N_BUCKETS)
    this.latencySum = this.own.subarray(AT_LATENCY, AT_LATENCY + PROTOCOLS.length)
  }

  /** Nodes (worker threads) counted together. */
  get nodes (): number { return this.runs.length }

  private sum (i: number): number {
    const runs = this.runs
    let n = 0
    for (let k = 0; k < runs.length; k++) n += runs[k][i]
    return n
  }

  /** Requests counted at slot(protocol, action, result), all nodes. */
  count (at: number): number { return this.sum(at) }
  /** Latency observations of bucket `at` (index as in `buckets`), all nodes. */
  bucket (at: number): number { return this.sum(AT_BUCKETS + at) }
  /** Sum of latencies of protocol `p`, seconds, all nodes. */
  latency (p: Protocol): number { return this.sum(AT_LATENCY + p) }

  /** UDP packets dropped because their connection id did not verify, all nodes. */
  get udpBadConnectionId (): number { return this.sum(AT_BAD_ID) }
  badConnectionId (): void { this.own[AT_BAD_ID]++ }

  /** Open WebSocket connections, all nodes (each node sets its own). */
  get wsConnections (): number { return this.sum(AT_WS) }
  setWsConnections (n: number): void { this.own[AT_WS] = n }

  /** A timestamp to pass to `done` (ms, monotonic). */
  start (): number {
    return performance.now()
  }

  /** Counts one finished request; `t0` from `start()`. */
  done (p: Protocol, a: Action, r: Outcome, t0: number): void {
    this.counts[(p * NA + a) * NR + r]++
    const s = (performance.now() - t0) / 1000
    this.latencySum[p] += s
    let b = 0
    while (b < NB && s > LATENCY_BUCKETS_S[b]) b++
    this.buckets[p * (NB + 1) + b]++
  }

  /** Requests of one protocol and action, all results, all nodes. */
  total (p: Protocol, a: Action): number {
    const i = (p * NA + a) * NR
    return this.sum(i) + this.sum(i + 1) + this.sum(i + 2)
  }

  /** Requests answered with an error or dropped, all protocols, all nodes. */
  failures (): number {
    let n = 0
    for (let i = 0; i < N_COUNTS; i += NR) n += this.sum(i + R_ERROR) + this.sum(i + R_DROPPED)
    return n
  }
}
