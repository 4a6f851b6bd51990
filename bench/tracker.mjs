// Runs one Node tracker for the bench: ours (dist/, the built package) or the reference npm
// package, with its default options (HTTP, UDP v4 + v6, WebSocket and /stats all on) unless
// `--no-stats`. Binds loopback only, prints one JSON line with the bound ports once it listens,
// and on SIGTERM prints the counts of 'warning' and 'error' events to stderr and exits.
//
//   node bench/tracker.mjs ours|reference [--no-stats] [--udp-backend native|dgram] [--workers N] [--redis URL --udp-secret HEX]
// `--workers N` (ours only): the WorkerPool of `bittorrent-tracker --workers N`.
import { pathToFileURL } from 'node:url'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

const which = process.argv[2]
const stats = !process.argv.includes('--no-stats')
const backendAt = process.argv.indexOf('--udp-backend')
const udpBackend = backendAt > 0 ? process.argv[backendAt + 1] : undefined
const root = join(dirname(fileURLToPath(import.meta.url)), '..')

const wi = process.argv.indexOf('--workers')
const workers = wi >= 0 ? Number(process.argv[wi + 1]) : 0

let Server
let WorkerPool
if (which === 'ours') {
  ({ Server, WorkerPool } = await import(pathToFileURL(join(root, 'dist', 'index.js')).href))
} else if (which === 'reference') {
  ({ Server } = await import('bittorrent-tracker-reference'))
} else {
  console.error('usage: node bench/tracker.mjs ours|reference [--no-stats]')
  process.exit(2)
}

const counts = { warning: 0, error: 0, firstWarning: '', firstError: '' }
if (workers > 0) {
  // The pool forwards 'warning' and 'error' from its threads; ports come with 'listening'.
  const pool = new WorkerPool({ workers, server: { stats } })
  pool.on('warning', err => { if (counts.warning++ === 0) counts.firstWarning = String(err?.message ?? err) })
  pool.on('error', err => {
    console.error(`tracker error: ${err?.message ?? err}`)
    process.exit(1)
  })
  process.on('SIGTERM', () => {
    process.stderr.write(JSON.stringify({ events: counts }) + '\n')
    pool.close(() => process.exit(0))
  })
  pool.listen(0, { http: '127.0.0.1', udp: '127.0.0.1', udp6: '::1' }, () => {
    process.stdout.write(JSON.stringify({ ready: true, pid: process.pid, http: pool.ports.http ?? null, udp4: pool.ports.udp ?? null, udp6: pool.ports.udp6 ?? null }) + '\n')
  })
} else {
const arg = name => { const i = process.argv.indexOf(name); return i < 0 ? undefined : process.argv[i + 1] }
const redis = arg('--redis')
const secret = arg('--udp-secret')
// Ours names its UDP backend explicitly: a missing addon fails the run instead of measuring dgram.
const server = new Server({
  stats,
  ...(udpBackend !== undefined ? { udpBackend } : {}),
  ...(redis !== undefined ? { redis } : {}),
  ...(secret !== undefined ? { udpSecret: Buffer.from(secret, 'hex') } : {})
})
server.on('warning', err => {
  if (counts.warning++ === 0) counts.firstWarning = String(err?.message ?? err)
})
server.on('error', err => {
  if (counts.error++ === 0) counts.firstError = String(err?.message ?? err)
  // An error before listening (port in use) is fatal: say so and stop.
  if (!server.listening) {
    console.error(`tracker error: ${err?.message ?? err}`)
    process.exit(1)
  }
})

process.on('SIGTERM', () => {
  process.stderr.write(JSON.stringify({ events: counts }) + '\n')
  process.exit(0)
})

server.listen(0, { http: '127.0.0.1', udp: '127.0.0.1', udp6: '::1' }, () => {
  const port = s => { try { return s?.address().port ?? null } catch { return null } }
  process.stdout.write(JSON.stringify({
    ready: true,
    pid: process.pid,
    http: port(server.http),
    udp4: port(server.udp4),
    udp6: port(server.udp6),
    udpBackend: server.udpBackend ?? null
  }) + '\n')
})
}
