import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { isIP } from 'node:net'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { WORKER_CLOSE_TIMEOUT_MS } from '../../constants.js'
import { nativeStatus } from '../native/loader.js'
import type { ServerOptions } from '../server.js'
import type { AccessList, AccessListData } from '../access/access-list.js'
import { loadTls } from '../tls.js'
import type { TlsOptions } from '../tls.js'
import { METRICS_SLOTS } from '../stats/metrics.js'
import { createMeshLayout } from './mesh.js'
import type { MeshLayout } from './mesh.js'

/** Server options a worker thread can take (plain data: no functions, no store, no bus). */
export type WorkerServerOptions = Omit<ServerOptions, 'filter' | 'store' | 'signalBus' | 'sharedMetrics' | 'accessList' | 'http' | 'udp' | 'ws'> & {
  http?: boolean
  udp?: boolean
  ws?: boolean
}

export interface WorkerPoolOptions {
  /** Worker threads; 0 or absent: one per core (`os.availableParallelism()`). */
  workers?: number
  server?: WorkerServerOptions
  /**
   * Torrents and clients served, as `ServerOptions.accessList`. The list stays in this thread
   * (its file, watcher and events are yours); every worker gets a copy at start and each
   * reloaded list after its 'reload' event, so all workers serve the same list.
   */
  accessList?: AccessList
}

export interface SharedFds { http?: number, udp4?: number, udp6?: number }

/** @internal What the main thread hands a worker. */
export interface WorkerData {
  index: number
  layout: MeshLayout
  accessList?: AccessListData
  server: WorkerServerOptions
  udpSecret: Uint8Array
  /** Every worker's request counters (METRICS_SLOTS doubles each), summed by /stats.json and /metrics. */
  metrics: SharedArrayBuffer
  warnings: boolean
  /**
   * 'reuseport': each worker binds its own sockets with SO_REUSEPORT (native addon); 'shared-fd':
   * the first worker binds, the others poll its descriptors.
   */
  sockets: 'reuseport' | 'shared-fd'
  port: number
  hostname: { http?: string, udp?: string, udp6?: string }
}

/** @internal Messages between the main thread and a worker (start-up, TLS reload and shutdown only). */
export type ToWorker =
  | { t: 'listen', fds?: SharedFds, port?: number }
  | { t: 'close' }
  | { t: 'reloadTls', id: number, cert: string | Uint8Array, key: string | Uint8Array }
  | { t: 'accessList', hashes: Uint8Array }
export type FromWorker =
  | { t: 'ready' }
  | { t: 'tlsReloaded', id: number, error?: string }
  | { t: 'listening', fds?: SharedFds, ports?: { http?: number, udp4?: number, udp6?: number }, steered?: boolean }
  | { t: 'error', message: string, code?: string }
  | { t: 'warning', message: string }
  | { t: 'closed' }

/** dist/server/workers/worker.js, from the ESM build (import.meta) or the CommonJS bundle in dist/ (no import.meta there). */
function workerEntry (): URL {
  const url = import.meta.url as string | undefined
  if (typeof url === 'string' && url !== '') return new URL('./worker.js', url)
  return pathToFileURL(join(__dirname, 'server', 'workers', 'worker.js'))
}

/** Worker threads for `workers`: 0 or absent means one per core. */
export function workerCount (workers: number | undefined): number {
  return workers === undefined || workers <= 0 ? availableParallelism() : Math.floor(workers)
}

/**
 * The tracker on several worker threads, one port: each worker runs a whole Server (HTTP, UDP
 * and WebSocket frontends); swarms are sharded across them by info hash (ShardedStore) so every
 * swarm lives in one place, and requests and WebSocket signals cross between workers through
 * shared-memory rings. The first worker binds; the others serve on the same sockets (same
 * descriptors), and the kernel hands each connection or datagram to one of them.
 *
 * Events: 'listening' `{ http, udp, udp6 }` ports, 'error' (fatal: a worker failed or a port is
 * taken), 'warning' (a client sent bad data; forwarded only while someone listens).
 */
export class WorkerPool extends EventEmitter {
  readonly size: number
  ports: { http?: number, udp?: number, udp6?: number } = {}
  /**
   * How the workers share the port (see README), decided by `listen`: SO_REUSEPORT through the
   * native addon, or one set of descriptors all workers poll.
   */
  sockets: 'reuseport' | 'shared-fd' = 'shared-fd'
  /** Why not SO_REUSEPORT, when not. */
  socketsReason: string | undefined
  /**
   * Whether the kernel hands each UDP announce and scrape to the worker owning its swarm (a BPF
   * program on the SO_REUSEPORT group): set by 'listening'.
   */
  udpSteered = false
  private readonly workers: Worker[] = []
  private readonly opts: WorkerServerOptions
  private readonly accessList: AccessList | undefined
  private readonly onAccessListReload = (): void => {
    const hashes = this.accessList!.toData().hashes
    for (const w of this.workers) w.postMessage({ t: 'accessList', hashes } satisfies ToWorker)
  }
  private closing = false
  private closed = false
  /** What `reloadTls()` reads again: `server.tls`, or the PEM last given to it. */
  private tls: TlsOptions | undefined
  /** TLS reloads waiting for every worker's reply, by id. */
  private readonly reloads = new Map<number, { left: number, error: string | undefined, done: (error: string | undefined) => void }>()
  private nextReload = 0

  constructor (opts: WorkerPoolOptions = {}) {
    super()
    this.size = workerCount(opts.workers)
    this.opts = opts.server ?? {}
    this.accessList = opts.accessList
    this.tls = this.opts.tls
  }

  /** Starts the workers on `port` (0: a free one), as `Server.listen` does. */
  listen (port: number, hostname: { http?: string, udp?: string, udp6?: string } = {}, cb?: () => void): void {
    if (this.workers.length > 0) throw new Error('pool already listening')
    // Each worker's own sockets need literal addresses (the addon does not resolve names).
    const literal = (h: string | undefined): boolean => h === undefined || h === '' || isIP(h) !== 0
    const native = nativeStatus()
    const backend = this.opts.udpBackend ?? 'auto'
    if (backend === 'native' && !native.available) {
      process.nextTick(() => this.fail(new Error(`udpBackend 'native' is not available: ${native.reason ?? 'unknown reason'}`)))
      return
    }
    const literals = literal(hostname.http) && literal(hostname.udp) && literal(hostname.udp6)
    const sockets = native.available && literals && backend !== 'dgram' ? 'reuseport' : 'shared-fd'
    this.sockets = sockets
    this.socketsReason = !native.available ? native.reason : backend === 'dgram' ? "udpBackend 'dgram' chosen" : literals ? undefined : 'hostnames that are not IP addresses'
    if (cb !== undefined) this.once('listening', cb)
    const layout = createMeshLayout(this.size)
    const accessList = this.accessList?.toData()
    this.accessList?.on('reload', this.onAccessListReload)
    const udpSecret = this.opts.udpSecret ?? randomBytes(32)
    const metrics = new SharedArrayBuffer(this.size * METRICS_SLOTS * 8)
    const server = { ...this.opts, udpSecret: undefined }
    let listening = 0
    let steered = true
    let next: ToWorker | undefined
    for (let index = 0; index < this.size; index++) {
      const data: WorkerData = { index, layout, accessList, server, udpSecret, metrics, warnings: this.listenerCount('warning') > 0, sockets, port, hostname }
      const w = new Worker(workerEntry(), { workerData: data })
      this.workers.push(w)
      w.on('error', err => this.fail(err))
      w.on('exit', code => { if (!this.closing) this.fail(new Error(`worker ${index + 1} exited (code ${code})`)) })
      w.on('message', (m: FromWorker) => {
        if (m.t === 'error') {
          const err: NodeJS.ErrnoException = new Error(m.message)
          if (m.code !== undefined) err.code = m.code
          this.fail(err)
        } else if (m.t === 'warning') {
          this.emit('warning', new Error(m.message))
        } else if (m.t === 'tlsReloaded') {
          const r = this.reloads.get(m.id)
          if (r === undefined) return
          r.error ??= m.error
          if (--r.left === 0) { this.reloads.delete(m.id); r.done(r.error) }
        } else if (m.t === 'listening') {
          if (index === 0) {
            const p = m.ports ?? {}
            this.ports = { http: p.http, udp: p.udp4, udp6: p.udp6 }
            next = sockets === 'reuseport' ? { t: 'listen', port: p.http ?? p.udp4 ?? p.udp6 ?? port } : { t: 'listen', fds: m.fds ?? {} }
            if (sockets === 'shared-fd') for (let i = 1; i < this.workers.length; i++) this.workers[i].postMessage(next)
          }
          steered &&= m.steered === true
          // SO_REUSEPORT: one worker after the other, so that the group's UDP socket i is worker
          // i's (the kernel numbers them in bind order; UDP steering relies on it).
          if (sockets === 'reuseport' && index + 1 < this.workers.length) this.workers[index + 1].postMessage(next!)
          if (++listening === this.size && !this.closing) {
            this.udpSteered = sockets === 'reuseport' && this.size > 1 && steered
            this.emit('listening', this.ports)
          }
        }
      })
    }
  }

  /**
   * Loads the TLS certificate and key again (the `server.tls` files, or the PEM given here) for
   * connections made from now on, in every worker. The material is read and checked once, here,
   * so a bad file rejects (with the message `server.reloadTls()` throws) and changes nothing;
   * every worker then gets the same PEM. Resolves when all of them use it.
   */
  reloadTls (tls?: TlsOptions): Promise<void> {
    if (this.tls === undefined) return Promise.reject(new Error('TLS is not enabled on this server'))
    if (this.workers.length === 0 || this.closing) return Promise.reject(new Error('the pool is not running'))
    const next = tls ?? this.tls
    let material: { cert: string | Uint8Array, key: string | Uint8Array }
    try { material = loadTls(next) } catch (err) { return Promise.reject(err) }
    const id = this.nextReload++
    return new Promise((resolve, reject) => {
      this.reloads.set(id, {
        left: this.workers.length,
        error: undefined,
        done: error => {
          if (error !== undefined) return reject(new Error(error))
          this.tls = next
          resolve()
        }
      })
      for (const w of this.workers) w.postMessage({ t: 'reloadTls', id, ...material } satisfies ToWorker)
    })
  }

  /**
   * Closes every worker's sockets, then ends the threads. Bounded: workers that have not closed
   * within WORKER_CLOSE_TIMEOUT_MS are terminated.
   */
  close (cb?: () => void): void {
    if (this.closing) {
      if (cb !== undefined) { if (this.closed) process.nextTick(cb); else this.once('close', cb) }
      return
    }
    this.closing = true
    if (cb !== undefined) this.once('close', cb)
    this.accessList?.off('reload', this.onAccessListReload)
    for (const r of this.reloads.values()) r.done('the pool closed before every worker reloaded TLS')
    this.reloads.clear()
    const workers = this.workers
    let left = workers.length
    const finish = (): void => {
      clearTimeout(timer)
      Promise.all(workers.map(w => w.terminate())).then(() => {
        this.closed = true
        this.emit('close')
      }, () => { this.closed = true; this.emit('close') })
    }
    const timer = setTimeout(finish, WORKER_CLOSE_TIMEOUT_MS)
    timer.unref()
    if (left === 0) return finish()
    for (const w of workers) {
      const onMessage = (m: FromWorker): void => {
        if (m.t !== 'closed') return
        w.off('message', onMessage)
        if (--left === 0) finish()
      }
      w.on('message', onMessage)
      w.postMessage({ t: 'close' } satisfies ToWorker)
    }
  }

  private fail (err: Error): void {
    if (this.closing) return
    this.emit('error', err)
  }
}
