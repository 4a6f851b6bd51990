#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { SHUTDOWN_TIMEOUT_MS, UDP_BAD_ID_BAN_MS, UDP_BAD_ID_WINDOW_MS } from '../constants.js'
import { AccessList, Server } from '../index.js'
import type { AccessListError } from '../index.js'
import { ConfigError, formatConfig, loadConfig } from '../config/load.js'
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
let server: Server
try {
  server = new Server({
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
      : { http: false, udp: false, ws: false },
    udpBadIdLimit: o.rateLimit && o.udpBadIdLimit > 0 ? { max: o.udpBadIdLimit, windowMs: UDP_BAD_ID_WINDOW_MS, banMs: UDP_BAD_ID_BAN_MS } : false,
    intervalJitter: o.intervalJitter / 100,
    wsMaxOffers: o.wsMaxOffers,
    wsMaxSwarms: o.wsMaxSwarms,
    udpSecret: o.udpSecret === undefined ? undefined : Buffer.from(o.udpSecret, 'hex'),
    accessList,
    redis: o.redis,
    udpBackend: o.udpBackend,
    ...(o.private ? { private: { keysFile: o.keysFile, adminToken: o.adminToken } } : {}),
    ...(o.stateFile !== undefined ? { stateFile: o.stateFile, stateSaveInterval: o.stateInterval } : {})
  })
} catch (err) {
  // A malformed --stats-allow range is a usage error, like a bad flag (exit 2); a bad or
  // unreadable keys file is fatal (exit 1). Nothing has started yet either way.
  // Unusable TLS files or proxy ranges are configuration errors too (exit 2).
  if (err instanceof TypeError) fail((err as Error).message, true)
  if (/^TLS: |in proxy list: /.test((err as Error).message)) fail((err as Error).message, false)
  log.fatal((err as Error).message)
  process.exit(1)
}

server.on('error', (err: Error) => {
  log.fatal({ code: (err as NodeJS.ErrnoException).code }, err.message)
  process.exit(1)
})
server.on('warning', (err: Error & { code?: string }) => {
  // Losing saved state is an operator's business even in --quiet mode.
  if (err.code === 'STATE_FILE_UNUSABLE') log.error({ code: err.code }, err.message)
  else log.warn({ code: err.code }, err.message)
})
server.on('listening', () => {
  if (loaded.file !== undefined) log.info({ file: loaded.file }, 'configuration file read')
  if (accessList !== undefined) {
    log.info({ file: accessList.file, mode: accessList.mode, count: accessList.size, clientAllow: o.clientAllow, clientDeny: o.clientDeny }, 'access list loaded')
  }
  const http = server.http !== null ? server.http.address() as AddressInfo : null
  const udp = server.udp4 !== null ? server.udp4.address() : null
  const [h, w] = tls ? ['https', 'wss'] : ['http', 'ws']
  if (o.http && http !== null) log.info({ transport: h, address: http.address, port: http.port }, `${h} server listening on ${http.port}`)
  if (o.udp && udp !== null) log.info({ transport: 'udp', address: udp.address, port: udp.port }, `udp server listening on ${udp.port}`)
  if (o.ws && http !== null) log.info({ transport: w, address: http.address, port: http.port }, `${w} server listening on ${http.port}`)
  if (o.udp && udp !== null) {
    log.info({ transport: 'udp', backend: server.udpBackend, reason: server.udpBackendReason },
      server.udpBackend === 'native' ? 'udp: native recvmmsg/sendmmsg' : `udp: dgram (${server.udpBackendReason ?? 'node:dgram'})`)
  }
})

server.listen(o.port, { http: o.httpHostname, udp: o.udpHostname, udp6: o.udp6Hostname })

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
  server.drain(err => {
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
    try {
      server.reloadTls()
      log.info({ signal: 'SIGHUP' }, 'TLS certificate reloaded')
    } catch (err) {
      log.error({ signal: 'SIGHUP' }, `TLS reload failed, still serving the previous certificate: ${(err as Error).message}`)
    }
  }
  if (accessList?.file === undefined && !tls) log.info({ signal: 'SIGHUP' }, 'no access list file to reload')
})
