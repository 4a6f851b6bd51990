#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { SHUTDOWN_TIMEOUT_MS, UDP_BAD_ID_BAN_MS, UDP_BAD_ID_WINDOW_MS } from '../constants.js'
import { AccessList, OptionError, Server, WorkerPool } from '../index.js'
import type { AccessListError } from '../index.js'
import { ConfigError, formatConfig, loadConfig, resolveWorkers } from '../config/load.js'
import { parseRateLimit } from '../config/options.js'
import type { LoadResult } from '../config/load.js'
import { HELP } from './args.js'

function fail (message: string, usage: boolean): never {
  console.error(`bittorrent-tracker: ${message}`)
  if (usage) console.error(`\n${HELP}`)
  process.exit(2)
}

let loaded: LoadResult
try {
  loaded = loadConfig(process.argv.slice(2), process.env)
} catch (err) {
  if (err instanceof ConfigError) fail(err.message, err.usage)
  throw err
}
const o = loaded.config

if (o.version) {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  console.log(pkg.version)
  process.exit(0)
}
if (o.help) {
  console.log(HELP)
  process.exit(0)
}
if (o.printConfig !== 'none') {
  process.stdout.write(formatConfig(o, o.printConfig))
  process.exit(0)
}

// JSON lines: error and fatal to stderr, everything else to stdout. Synchronous writes, so a
// line logged just before process.exit is not lost.
const log = pino({
  level: o.logLevel,
  formatters: { level: label => ({ level: label }) },
  timestamp: pino.stdTimeFunctions.isoTime
}, pino.multistream([
  { level: 'trace', stream: pino.destination({ dest: 1, sync: true }) },
  { level: 'error', stream: pino.destination({ dest: 2, sync: true }) }
], { dedupe: true }))

let accessList: AccessList | undefined
if (o.allowlist !== undefined || o.denylist !== undefined || o.clientAllow.length > 0 || o.clientDeny.length > 0) {
  try {
    accessList = new AccessList({ allowlist: o.allowlist, denylist: o.denylist, clientAllow: o.clientAllow, clientDeny: o.clientDeny })
  } catch (err) {
    fail((err as Error).message, false)
  }
  accessList.on('reload', (r: { file: string, count: number, reason: string }) => log.info(r, 'access list reloaded'))
  accessList.on('warning', (err: AccessListError) => {
    log.error({ file: err.file, line: err.line, reason: err.reason }, `access list reload failed, keeping the previous list: ${err.message}`)
  })
}

const tls = o.cert !== undefined
const hostname = { http: o.httpHostname, udp: o.udpHostname, udp6: o.udp6Hostname }
/** Options every worker's Server takes as they are (plain data). */
const common = {
  http: o.http,
  udp: o.udp,
  ws: o.ws,
  stats: o.stats,
  metrics: o.metrics,
  statsToken: o.statsToken,
  statsAllow: o.statsAllow.length > 0 ? o.statsAllow : undefined,
  trustProxy: o.trustProxyFrom.length > 0 ? o.trustProxyFrom : o.trustProxy,
  interval: o.interval,
  acceptClientIp: o.acceptClientIp,
  maxNumwant: o.maxNumwant,
  fullScrapeLimit: o.fullScrape ? o.fullScrapeLimit : 0,
  tls: o.cert !== undefined && o.key !== undefined ? { certFile: o.cert, keyFile: o.key } : undefined,
  rateLimit: o.rateLimit
    ? { http: parseRateLimit(o.rateLimitHttp)!, udp: parseRateLimit(o.rateLimitUdp)!, ws: parseRateLimit(o.rateLimitWs)! }
    : { http: false as const, udp: false as const, ws: false as const },
  udpBadIdLimit: o.rateLimit && o.udpBadIdLimit > 0 ? { max: o.udpBadIdLimit, windowMs: UDP_BAD_ID_WINDOW_MS, banMs: UDP_BAD_ID_BAN_MS } : false as const,
  intervalJitter: o.intervalJitter / 100,
  wsMaxOffers: o.wsMaxOffers,
  wsMaxSwarms: o.wsMaxSwarms,
  udpSecret: o.udpSecret === undefined ? undefined : Buffer.from(o.udpSecret, 'hex'),
  udpBackend: o.udpBackend
}

function constructionFailed (err: unknown): never {
  // An unusable option value (an address range, TLS files) is a usage error like a bad flag
  // (exit 2); anything else (a bad or unreadable keys file, --udp-backend native without the
  // addon) is fatal (exit 1). Nothing has started yet.
  if (err instanceof OptionError) fail(err.message, true)
  log.fatal((err as Error).message)
  process.exit(1)
}
function onWarning (err: Error & { code?: string }): void {
  // Losing saved state is an operator's business even in --quiet mode.
  if (err.code === 'STATE_FILE_UNUSABLE') log.error({ code: err.code }, err.message)
  else log.warn({ code: err.code }, err.message)
}
function onFatal (err: Error): never {
  log.fatal({ code: (err as NodeJS.ErrnoException).code }, err.message)
  process.exit(1)
}
function logListening (http: AddressInfo | null, udp: AddressInfo | null, backend: 'native' | 'dgram', reason: string | undefined): void {
  if (loaded.file !== undefined) log.info({ file: loaded.file }, 'configuration file read')
  if (accessList !== undefined) {
    log.info({ file: accessList.file, mode: accessList.mode, count: accessList.size, clientAllow: o.clientAllow, clientDeny: o.clientDeny }, 'access list loaded')
  }
  const [h, w] = tls ? ['https', 'wss'] : ['http', 'ws']
  if (o.http && http !== null) log.info({ transport: h, address: http.address, port: http.port }, `${h} server listening on ${http.port}`)
  if (o.udp && udp !== null) log.info({ transport: 'udp', address: udp.address, port: udp.port }, `udp server listening on ${udp.port}`)
  if (o.ws && http !== null) log.info({ transport: w, address: http.address, port: http.port }, `${w} server listening on ${http.port}`)
  if (o.udp && udp !== null) {
    log.info({ transport: 'udp', backend, reason }, backend === 'native' ? 'udp: native recvmmsg/sendmmsg' : `udp: dgram (${reason ?? 'node:dgram'})`)
  }
}

/** Stops accepting, answers what is in flight (and saves the state file); err when the save failed. */
let drain: (cb: (err?: Error | null) => void) => void
/** SIGHUP's TLS reload (rejects, keeping the old certificate, on bad files). */
let reloadTls: () => Promise<void>
const { count: workers, reason: oneWorker } = resolveWorkers(o)
if (oneWorker !== undefined) log.info({ workers: 1, reason: oneWorker }, `--workers auto: 1 worker thread (${oneWorker})`)
if (workers > 1) {
  // Swarms sharded across worker threads; options that hold process-wide state are refused up
  // front by the config loader (see src/config/load.ts).
  let pool: WorkerPool
  try {
    pool = new WorkerPool({ workers, server: common, accessList })
  } catch (err) { constructionFailed(err) }
  pool.on('error', onFatal)
  pool.on('warning', onWarning)
  pool.on('listening', (ports: { http?: number, udp?: number }) => {
    const at = (host: string | undefined, fallback: string, port: number | undefined): AddressInfo | null =>
      port === undefined ? null : { address: host ?? fallback, family: '', port }
    // SO_REUSEPORT mode runs UDP on the native addon; shared descriptors on node:dgram.
    logListening(at(o.httpHostname, '::', ports.http), at(o.udpHostname, '0.0.0.0', ports.udp),
      pool.sockets === 'reuseport' ? 'native' : 'dgram', pool.socketsReason)
    log.info({ workers, sockets: pool.sockets, udpSteered: pool.udpSteered }, pool.sockets === 'reuseport'
      ? `${workers} worker threads (SO_REUSEPORT${pool.udpSteered ? ', UDP steered by info hash' : ''})`
      : `${workers} worker threads (one shared socket each for TCP, UDP4, UDP6: ${pool.socketsReason ?? 'no SO_REUSEPORT'})`)
  })
  pool.listen(o.port, hostname)
  drain = cb => pool.close(() => cb(null))
  reloadTls = () => pool.reloadTls()
} else {
  // One thread: the Server of the seed README.
  let server: Server
  try {
    server = new Server({
      ...common,
      accessList,
      redis: o.redis,
      ...(o.private ? { private: { keysFile: o.keysFile, adminToken: o.adminToken } } : {}),
      ...(o.stateFile !== undefined ? { stateFile: o.stateFile, stateSaveInterval: o.stateInterval } : {})
    })
  } catch (err) { constructionFailed(err) }
  server.on('error', onFatal)
  server.on('warning', onWarning)
  server.on('listening', () => {
    logListening(
      server.http !== null ? server.http.address() as AddressInfo : null,
      server.udp4 !== null ? server.udp4.address() as AddressInfo : null,
      server.udpBackend, server.udpBackendReason
    )
  })
  server.listen(o.port, hostname)
  drain = cb => server.drain(cb)
  reloadTls = async () => server.reloadTls()
}

let stopping = false
/**
 * Graceful: stop accepting, answer what is in flight, save the state file, exit 0 (1 when the
 * save failed). Bounded: whatever is stuck, the process is gone SHUTDOWN_TIMEOUT_MS later.
 */
function shutdown (signal: NodeJS.Signals): void {
  if (stopping) return
  stopping = true
  log.info({ signal }, 'shutting down')
  accessList?.close()
  drain(err => {
    if (err != null) log.error(err.message)
    process.exit(err != null ? 1 : 0)
  })
  setTimeout(() => {
    log.error(`shutdown did not finish within ${SHUTDOWN_TIMEOUT_MS} ms; exiting`)
    process.exit(1)
  }, SHUTDOWN_TIMEOUT_MS).unref()
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)
// SIGHUP (`systemctl reload`) re-reads the access list file and the TLS certificate and key (the
// rest of the configuration needs a restart). Listened to whatever is configured, so a reload
// never kills the tracker (and its in-memory swarms) as Node's default SIGHUP action would.
process.on('SIGHUP', () => {
  if (accessList?.file !== undefined) accessList.reload('SIGHUP').catch(() => undefined)
  if (tls) {
    reloadTls().then(
      () => log.info({ signal: 'SIGHUP' }, 'TLS certificate reloaded'),
      (err: Error) => log.error({ signal: 'SIGHUP' }, `TLS reload failed, still serving the previous certificate: ${err.message}`))
  }
  if (accessList?.file === undefined && !tls) log.info({ signal: 'SIGHUP' }, 'no access list file to reload')
})
