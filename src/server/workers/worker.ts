/**
 * One worker thread of a WorkerPool: a full Server (HTTP, UDP, WebSocket frontends) over its
 * ShardedStore end, on sockets it shares with the other workers.
 */
import type { Socket as UdpSocket } from 'node:dgram'
import { parentPort, workerData } from 'node:worker_threads'
import { DEFAULT_ANNOUNCE_INTERVAL_MS, PEER_EXPIRY_INTERVALS } from '../../constants.js'
import { Server } from '../server.js'
import { Mesh } from './mesh.js'
import { ShardedStore } from './sharded-store.js'
import type { FromWorker, SharedFds, ToWorker, WorkerData } from './pool.js'

const d = workerData as WorkerData
const post = (m: FromWorker): void => parentPort!.postMessage(m)

const intervalMs = d.server.interval !== undefined && d.server.interval > 0 ? d.server.interval : DEFAULT_ANNOUNCE_INTERVAL_MS
const store = new ShardedStore({ mesh: new Mesh(d.layout, d.index), peerTtl: PEER_EXPIRY_INTERVALS * Math.max(1, Math.ceil(intervalMs / 1000)) })
const server = new Server({ ...d.server, udpSecret: d.udpSecret, store, signalBus: store })
store.onSignal = signal => server.receiveSignal(signal)

server.on('error', (err: NodeJS.ErrnoException) => post({ t: 'error', message: err.message, code: err.code }))
if (d.warnings) server.on('warning', (err: Error) => post({ t: 'warning', message: err.message }))

// Which worker answered: for operators and for tests that must see several workers at work.
const tag = String(d.index + 1)
server.http?.prependListener('request', (_req, res) => res.setHeader('X-Tracker-Worker', tag))
server.ws?.on('headers', headers => headers.push(`X-Tracker-Worker: ${tag}`))

parentPort!.on('message', (m: ToWorker) => {
  if (m.t === 'listen') listenOn(m.fds)
  else if (m.t === 'close') server.close(() => { store.close(); post({ t: 'closed' }) })
})

if (d.index === 0) {
  // The first worker binds (port 0 picks a port, EADDRINUSE is reported); the others then open
  // the same sockets by descriptor.
  server.listen(d.port, d.hostname, () => {
    post({
      t: 'listening',
      fds: {
        http: server.http !== null ? fdOf(server.http, false) : undefined,
        udp4: server.udp4 !== null && boundAddress(server.udp4) !== undefined ? fdOf(server.udp4, true) : undefined,
        udp6: server.udp6 !== null && boundAddress(server.udp6) !== undefined ? fdOf(server.udp6, true) : undefined
      },
      ports: {
        http: server.http?.listening === true ? (server.http.address() as { port: number }).port : undefined,
        udp4: boundAddress(server.udp4)?.port,
        udp6: boundAddress(server.udp6)?.port
      }
    })
  })
}
post({ t: 'ready' })

/** Serves on the first worker's sockets: every worker polls them, and the kernel gives each connection or datagram to one. */
function listenOn (fds: SharedFds): void {
  let waiting = 1
  const done = (): void => { if (--waiting === 0) post({ t: 'listening' }) }
  if (fds.http !== undefined && server.http !== null) { waiting++; server.http.listen({ fd: fds.http }, done) }
  const udp = (s: UdpSocket | null, fd: number | undefined): void => {
    if (s === null) return
    // A socket the first worker did not bind stays closed here too.
    if (fd === undefined) { s.close(); return }
    waiting++
    s.bind({ fd }, done)
  }
  udp(server.udp4, fds.udp4)
  udp(server.udp6, fds.udp6)
  done()
}

function boundAddress (s: UdpSocket | null): { port: number } | undefined {
  try { return s?.address() } catch { return undefined }
}

/**
 * The descriptor under a listening socket. Node keeps it on the internal handle: `_handle` for
 * net servers; dgram keeps its handle in a symbol-keyed state object (its `_handle` getter is
 * deprecated and warns).
 */
function fdOf (o: object, dgram: boolean): number {
  let fd: unknown
  if (dgram) {
    for (const s of Object.getOwnPropertySymbols(o)) {
      const v = (o as Record<symbol, { handle?: { fd?: unknown } } | undefined>)[s]
      if (typeof v?.handle?.fd === 'number') { fd = v.handle.fd; break }
    }
  } else {
    fd = (o as { _handle?: { fd?: unknown } })._handle?.fd
  }
  if (typeof fd !== 'number' || fd < 0) throw new Error('cannot find the socket descriptor to share with the other workers')
  return fd
}
