#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { SHUTDOWN_TIMEOUT_MS } from '../constants.js'
import { Server } from '../index.js'
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
    trustProxy: o.trustProxy,
    interval: o.interval,
    ...(o.private ? { private: { keysFile: o.keysFile, adminToken: o.adminToken } } : {}),
    ...(o.stateFile !== undefined ? { stateFile: o.stateFile, stateSaveInterval: o.stateInterval } : {})
  })
} catch (err) {
  // A bad keys file, an unreadable one: nothing started yet.
  console.error(`bittorrent-tracker: ${(err as Error).message}`)
  process.exit(1)
}

server.on('error', (err: Error) => {
  if (!o.silent) console.error(`ERROR: ${err.message}`)
  process.exit(1)
})
server.on('warning', (err: Error & { code?: string }) => {
  // Losing saved state is an operator's business even in --quiet mode.
  if (err.code === 'STATE_FILE_UNUSABLE') { if (!o.silent) console.error(`WARNING: ${err.message}`) } else if (!o.quiet) console.log(`WARNING: ${err.message}`)
})
server.on('listening', () => {
  if (o.quiet) return
  const httpPort = server.http !== null ? (server.http.address() as AddressInfo).port : undefined
  const udpPort = server.udp4 !== null ? server.udp4.address().port : undefined
  if (o.http && httpPort !== undefined) console.log(`http server listening on ${httpPort}`)
  if (o.udp && udpPort !== undefined) console.log(`udp server listening on ${udpPort}`)
  if (o.ws && httpPort !== undefined) console.log(`ws server listening on ${httpPort}`)
})

server.listen(o.port, { http: o.httpHostname, udp: o.udpHostname, udp6: o.udp6Hostname })

let stopping = false
/**
 * Graceful: stop accepting, answer what is in flight, save the state file, exit 0 (1 when the
 * save failed). Bounded: whatever is stuck, the process is gone SHUTDOWN_TIMEOUT_MS later.
 */
function shutdown (): void {
  if (stopping) return
  stopping = true
  server.drain(err => {
    if (err != null && !o.silent) console.error(`ERROR: ${err.message}`)
    process.exit(err != null ? 1 : 0)
  })
  setTimeout(() => {
    if (!o.silent) console.error(`ERROR: shutdown did not finish within ${SHUTDOWN_TIMEOUT_MS} ms; exiting`)
    process.exit(1)
  }, SHUTDOWN_TIMEOUT_MS).unref()
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)
