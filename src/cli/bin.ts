#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { Server, WorkerPool, workerCount } from '../index.js'
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

const serverOptions = {
  http: o.http,
  udp: o.udp,
  ws: o.ws,
  stats: o.stats,
  trustProxy: o.trustProxy,
  interval: o.interval,
  udpBackend: o.udpBackend
}
const hostname = { http: o.httpHostname, udp: o.udpHostname, udp6: o.udp6Hostname }

function printListening (httpPort: number | undefined, udpPort: number | undefined, udpLine: string): void {
  if (o.quiet) return
  if (o.http && httpPort !== undefined) console.log(`http server listening on ${httpPort}`)
  if (o.udp && udpPort !== undefined) console.log(`udp server listening on ${udpPort}`)
  if (o.ws && httpPort !== undefined) console.log(`ws server listening on ${httpPort}`)
  if (o.udp && udpPort !== undefined) console.log(udpLine)
}
function udpLine (backend: 'native' | 'dgram', reason: string | undefined): string {
  return backend === 'native' ? 'udp: native recvmmsg/sendmmsg' : `udp: dgram (${reason ?? 'node:dgram'})`
}
function fatal (err: Error): never {
  if (!o.silent) console.error(`ERROR: ${err.message}`)
  process.exit(1)
}
function onWarning (err: Error): void {
  if (!o.quiet) console.log(`WARNING: ${err.message}`)
}

let close: (cb: () => void) => void
const workers = workerCount(o.workers)
if (workers > 1) {
  const pool = new WorkerPool({ workers, server: serverOptions })
  pool.on('error', fatal)
  if (!o.quiet) pool.on('warning', onWarning)
  pool.on('listening', (ports: { http?: number, udp?: number }) => {
    // SO_REUSEPORT mode runs UDP on the native addon; shared descriptors on node:dgram.
    printListening(ports.http, ports.udp, udpLine(pool.sockets === 'reuseport' ? 'native' : 'dgram', pool.socketsReason))
    // Only when asked for: with no --workers flag the output stays the single server's.
    if (!o.quiet && o.workers !== undefined) {
      console.log(pool.sockets === 'reuseport'
        ? `${workers} worker threads (SO_REUSEPORT)`
        : `${workers} worker threads (one shared socket each for TCP, UDP4, UDP6: ${pool.socketsReason ?? 'no SO_REUSEPORT'})`)
    }
  })
  pool.listen(o.port, hostname)
  close = cb => pool.close(cb)
} else {
  // One thread: the Server of the seed README.
  let server: Server
  try {
    server = new Server(serverOptions)
  } catch (err) {
    // --udp-backend native where the addon is not built.
    fatal(err as Error)
  }
  server.on('error', fatal)
  server.on('warning', onWarning)
  server.on('listening', () => {
    printListening(
      server.http !== null ? (server.http.address() as AddressInfo).port : undefined,
      server.udp4 !== null ? server.udp4.address().port : undefined,
      udpLine(server.udpBackend, server.udpBackendReason)
    )
  })
  server.listen(o.port, hostname)
  close = cb => server.close(() => cb())
}

let stopping = false
function shutdown (): void {
  if (stopping) return
  stopping = true
  close(() => process.exit(0))
  // Bounded: a stuck close must not keep the process alive.
  setTimeout(() => process.exit(0), 5000).unref()
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)
