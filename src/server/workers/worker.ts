/**
 * One worker thread of a WorkerPool: a full Server (HTTP, UDP, WebSocket frontends) over its
 * ShardedStore end, on sockets that share the port with the other workers.
 */
import type { Socket as DgramSocket, SocketOptions as DgramOptions } from 'node:dgram'
import net from 'node:net'
import { parentPort, workerData } from 'node:worker_threads'
import { DEFAULT_ANNOUNCE_INTERVAL_MS, PEER_EXPIRY_INTERVALS, WORKER_LISTEN_BACKLOG } from '../../constants.js'
import { listenFd, nativeAddon } from '../native/loader.js'
import { BatchUdpSocket } from '../frontends/udp-batch.js'
import { Server } from '../server.js'
import type { UdpSocket } from '../server.js'
import { AccessList } from '../access/access-list.js'
import { PeerStats } from '../stats/peer-stats.js'
import { Mesh } from './mesh.js'
import { ShardedStore } from './sharded-store.js'
import type { FromWorker, SharedFds, ToWorker, WorkerData } from './pool.js'

const d = workerData as WorkerData
const post = (m: FromWorker): void => parentPort!.postMessage(m)
const reusePort = d.sockets === 'reuseport'

const intervalMs = d.server.interval !== undefined && d.server.interval > 0 ? d.server.interval : DEFAULT_ANNOUNCE_INTERVAL_MS
// Which worker answered: for operators and for tests that must see several workers at work.
const tag = String(d.index + 1)
// /stats over unique peer ids, as one thread keeps them: each worker counts the peer ids that
// map to it, whichever worker's swarm they are in.
const store = new ShardedStore({
  mesh: new Mesh(d.layout, d.index),
  peerTtl: PEER_EXPIRY_INTERVALS * Math.max(1, Math.ceil(intervalMs / 1000)),
  peerStats: d.server.stats !== false ? new PeerStats() : undefined
})
// A copy of the main thread's list; it sends each reloaded one.
const accessList = d.accessList !== undefined ? AccessList.fromData(d.accessList) : undefined
const server = new Server({
  ...d.server,
  accessList,
  // reuseport: each worker its own native UDP socket with SO_REUSEPORT. Shared descriptors
  // need node:dgram sockets (they can open a descriptor).
  ...(d.server.udp !== false ? (reusePort ? { udp: { reusePort: true } as Partial<DgramOptions>, udpBackend: 'native' as const } : { udpBackend: 'dgram' as const }) : {}),
  udpSecret: d.udpSecret,
  sharedMetrics: { buffer: d.metrics, node: d.index, nodes: d.layout.nodes },
  // A header of the server's own (not a 'request' listener), so the HTTP fast path stays on.
  httpHeaders: { ...d.server.httpHeaders, 'X-Tracker-Worker': tag },
  store,
  signalBus: store
})
store.onSignal = signal => server.receiveSignal(signal)

server.on('error', (err: NodeJS.ErrnoException) => post({ t: 'error', message: err.message, code: err.code }))
if (d.warnings) server.on('warning', (err: Error) => post({ t: 'warning', message: err.message }))

server.ws?.on('headers', headers => headers.push(`X-Tracker-Worker: ${tag}`))

/** IPv4 listener beside an IPv6 one on '::' (SO_REUSEPORT mode: the addon's tcp6 sockets are IPv6-only). */
let extraTcp: net.Server | undefined

parentPort!.on('message', (m: ToWorker) => {
  if (m.t === 'listen') {
    if (m.port !== undefined) bindOwn(m.port)
    else listenOn(m.fds ?? {})
  } else if (m.t === 'accessList') {
    accessList?.replaceHashes(m.hashes)
  } else if (m.t === 'reloadTls') {
    // Checked by the pool already; a failure here would be this worker's own (then reported).
    try {
      server.reloadTls({ cert: m.cert, key: m.key })
      post({ t: 'tlsReloaded', id: m.id })
    } catch (err) {
      post({ t: 'tlsReloaded', id: m.id, error: (err as Error).message })
    }
  } else if (m.t === 'close') {
    extraTcp?.close()
    server.close(() => { store.close(); post({ t: 'closed' }) })
  }
})

if (d.index === 0) {
  if (reusePort) bindOwn(d.port)
  else {
    // The first worker binds (port 0 picks a port, EADDRINUSE is reported); the others then
    // open the same sockets by descriptor.
    server.listen(d.port, d.hostname, () => {
      post({
        t: 'listening',
        fds: {
          http: server.http !== null ? fdOf(server.http, false) : undefined,
          udp4: boundAddress(server.udp4) !== undefined ? fdOf(server.udp4!, true) : undefined,
          udp6: boundAddress(server.udp6) !== undefined ? fdOf(server.udp6!, true) : undefined
        },
        ports: ports()
      })
    })
  }
}
post({ t: 'ready' })

function ports (): { http?: number, udp4?: number, udp6?: number } {
  return {
    http: server.http?.listening === true ? (server.http.address() as net.AddressInfo).port : undefined,
    udp4: boundAddress(server.udp4)?.port,
    udp6: boundAddress(server.udp6)?.port
  }
}

/**
 * SO_REUSEPORT mode: this worker's own TCP listener (from the addon's listenFd) and UDP sockets
 * on `port`; the kernel spreads connections and datagrams over the workers' sockets. The first
 * worker resolves port 0, the others get the port it bound.
 */
function bindOwn (port: number): void {
  try {
    let p = port
    const h = d.hostname
    if (server.http !== null) {
      const host = h.http
      if (host === undefined || host === '' || host === '::') {
        server.http.listen({ fd: listenFd('tcp6', '::', p, WORKER_LISTEN_BACKLOG) })
        p = (server.http.address() as net.AddressInfo).port
        const http = server.http
        extraTcp = net.createServer(socket => http.emit('connection', socket))
        extraTcp.on('error', err => post({ t: 'error', message: err.message }))
        extraTcp.listen({ fd: listenFd('tcp4', '0.0.0.0', p, WORKER_LISTEN_BACKLOG) })
      } else {
        server.http.listen({ fd: listenFd(net.isIPv6(host) ? 'tcp6' : 'tcp4', host, p, WORKER_LISTEN_BACKLOG) })
        p = (server.http.address() as net.AddressInfo).port
      }
    }
    const sockets: Array<[UdpSocket, string]> = []
    if (server.udp4 !== null) sockets.push([server.udp4, h.udp ?? '0.0.0.0'])
    if (server.udp6 !== null) sockets.push([server.udp6, h.udp6 ?? '::'])
    const bindNext = (i: number): void => {
      if (i === sockets.length) {
        const steered = steer(sockets.map(([s]) => s))
        server.socketsBound()
        post(d.index === 0 ? { t: 'listening', ports: ports(), steered } : { t: 'listening', steered })
        return
      }
      const [s, host] = sockets[i]
      s.once('listening', () => {
        if (i === 0 && p === 0) p = s.address().port
        bindNext(i + 1)
      })
      s.bind(p, host)
    }
    bindNext(0)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    post({ t: 'error', message: e.message, code: e.code })
  }
}

/**
 * Has the kernel hand each UDP announce or scrape to the worker that owns its swarm (a BPF
 * program on the SO_REUSEPORT group, see shard.ts), so it needs no hand-off. The pool binds the
 * workers one after the other, so the group's socket i is worker i's. Every worker attaches the
 * same program (the last one stays). False when it cannot (then the kernel spreads by flow and
 * the ShardedStore hands requests over: correct, only dearer).
 */
function steer (sockets: UdpSocket[]): boolean {
  const addon = nativeAddon()
  if (addon === undefined || d.layout.nodes === 1) return false
  try {
    for (const s of sockets) {
      const h = s instanceof BatchUdpSocket ? s.native : undefined
      if (h === undefined) return false
      addon.steerReuseport(h, d.layout.nodes)
    }
    return sockets.length > 0
  } catch (err) {
    post({ t: 'warning', message: `UDP steering by info hash is off: ${(err as Error).message}` })
    return false
  }
}

/** Serves on the first worker's sockets: every worker polls them, and the kernel gives each connection or datagram to one. */
function listenOn (fds: SharedFds): void {
  let waiting = 1
  const done = (): void => {
    if (--waiting > 0) return
    server.socketsBound()
    post({ t: 'listening' })
  }
  if (fds.http !== undefined && server.http !== null) { waiting++; server.http.listen({ fd: fds.http }, done) }
  const udp = (s: UdpSocket | null, fd: number | undefined): void => {
    if (s === null) return
    // A socket the first worker did not bind stays closed here too.
    if (fd === undefined) { s.close(); return }
    waiting++
    ;(s as DgramSocket).bind({ fd }, done)
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
