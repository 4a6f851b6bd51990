#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
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

function createServer (): Server {
  try {
    return new Server({
      http: o.http,
      udp: o.udp,
      ws: o.ws,
      stats: o.stats,
      trustProxy: o.trustProxy,
      interval: o.interval,
      udpBackend: o.udpBackend
    })
  } catch (err) {
    // --udp-backend native where the addon is not built.
    if (!o.silent) console.error(`ERROR: ${(err as Error).message}`)
    process.exit(1)
  }
}
const server = createServer()

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
  if (o.http && httpPort !== undefined) console.log(`http server listening on ${httpPort}`)
  if (o.udp && udpPort !== undefined) console.log(`udp server listening on ${udpPort}`)
  if (o.ws && httpPort !== undefined) console.log(`ws server listening on ${httpPort}`)
  if (o.udp && udpPort !== undefined) {
    console.log(server.udpBackend === 'native' ? 'udp: native recvmmsg/sendmmsg' : `udp: dgram (${server.udpBackendReason ?? 'node:dgram'})`)
  }
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
