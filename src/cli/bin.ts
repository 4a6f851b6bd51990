#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { Server } from '../index.js'
import { UDP_BAD_ID_BAN_MS, UDP_BAD_ID_WINDOW_MS } from '../constants.js'
import { HELP, parseArgs } from './args.js'

const parsed = parseArgs(process.argv.slice(2))
if (!parsed.ok) {
  console.error(`bittorrent-tracker: ${parsed.error}\n`)
  console.error(HELP)
  process.exit(2)
}
const o = parsed.options

if (o.version) {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  console.log(pkg.version)
  process.exit(0)
}
if (o.help) {
  console.log(HELP)
  process.exit(0)
}

let server: Server
try {
  server = new Server({
    http: o.http,
    udp: o.udp,
    ws: o.ws,
    stats: o.stats,
    trustProxy: o.trustProxyFrom ?? o.trustProxy,
    interval: o.interval,
    tls: o.certFile !== undefined && o.keyFile !== undefined ? { certFile: o.certFile, keyFile: o.keyFile } : undefined,
    rateLimit: o.rateLimit,
    udpBadIdLimit: o.udpBadIdLimit > 0 ? { max: o.udpBadIdLimit, windowMs: UDP_BAD_ID_WINDOW_MS, banMs: UDP_BAD_ID_BAN_MS } : false,
    intervalJitter: o.intervalJitter,
    // Off unless asked: a full scrape hands anyone the list of every torrent tracked here.
    fullScrapeLimit: o.fullScrape ? undefined : 0
  })
} catch (err) {
  // Bad configuration (an unreadable or invalid certificate): a usage error, like a bad flag.
  console.error(`bittorrent-tracker: ${(err as Error).message}`)
  process.exit(2)
}
const tls = o.certFile !== undefined

server.on('error', (err: Error) => {
  if (!o.silent) console.error(`ERROR: ${err.message}`)
  process.exit(1)
})
server.on('warning', (err: Error) => {
  if (!o.quiet) console.log(`WARNING: ${err.message}`)
})
server.on('listening', () => {
  if (o.quiet) return
  const httpPort = server.http !== null ? (server.http.address() as AddressInfo).port : undefined
  const udpPort = server.udp4 !== null ? server.udp4.address().port : undefined
  if (o.http && httpPort !== undefined) console.log(`${tls ? 'https' : 'http'} server listening on ${httpPort}`)
  if (o.udp && udpPort !== undefined) console.log(`udp server listening on ${udpPort}`)
  if (o.ws && httpPort !== undefined) console.log(`${tls ? 'wss' : 'ws'} server listening on ${httpPort}`)
})

server.listen(o.port, { http: o.httpHostname, udp: o.udpHostname, udp6: o.udp6Hostname })

let stopping = false
function shutdown (): void {
  if (stopping) return
  stopping = true
  server.close(() => process.exit(0))
  // Bounded: a stuck close must not keep the process alive.
  setTimeout(() => process.exit(0), 5000).unref()
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)

/**
 * SIGHUP (`systemctl reload`): load the TLS certificate and key files again; on failure keep
 * serving the old ones. Listened to even without TLS, so a reload never kills the tracker (and
 * its in-memory swarms) as Node's default SIGHUP action would.
 */
function reloadTlsOnHangup (): void {
  process.on('SIGHUP', () => {
    if (!tls) return
    try {
      server.reloadTls()
      if (!o.quiet) console.log('TLS certificate reloaded')
    } catch (err) {
      if (!o.silent) console.error(`ERROR: TLS reload failed, still serving the previous certificate: ${(err as Error).message}`)
    }
  })
}
reloadTlsOnHangup()
