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

/**
 * Request counters of one server: plain numbers in typed arrays, so counting a request is an
 * index computation, two increments and a short bucket search — no label lookup, no allocation.
 * /metrics, /stats.json and the history sampler read these arrays when asked.
 */
export class RequestMetrics {
  /** Requests by slot(protocol, action, result). */
  readonly counts = new Float64Array(PROTOCOLS.length * NA * NR)
  /** Latency observations per protocol and bucket (not cumulative; index NB is +Inf). */
  readonly buckets = new Float64Array(PROTOCOLS.length * (NB + 1))
  /** Sum of latencies per protocol, seconds. */
  readonly latencySum = new Float64Array(PROTOCOLS.length)
  /** UDP packets dropped because their connection id did not verify. */
  udpBadConnectionId = 0

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

  /** Requests of one protocol and action, all results. */
  total (p: Protocol, a: Action): number {
    const i = (p * NA + a) * NR
    const c = this.counts
    return c[i] + c[i + 1] + c[i + 2]
  }

  /** Requests answered with an error or dropped, all protocols. */
  failures (): number {
    let n = 0
    for (let i = 0; i < this.counts.length; i += NR) n += this.counts[i + R_ERROR] + this.counts[i + R_DROPPED]
    return n
  }
}
