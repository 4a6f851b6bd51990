/**
 * `bittorrent-tracker --workers N`: the same swarm behaviour with one thread and with several
 * (real processes, real sockets on loopback). Many clients from many source ports, HTTP on a new
 * connection each time, so the kernel spreads them over the workers.
 */
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { ERRORS } from '../../src/errors.js'
import type { BinaryString } from '../../src/protocol/common/types.js'
import { nativeStatus } from '../../src/server/native/loader.js'
import { httpAnnounce, httpGet, httpScrape, id20, udpClient, withTimeout, REPLY_TIMEOUT_MS } from '../helpers/tracker-clients.js'
import type { UdpClient } from '../helpers/tracker-clients.js'
import { CliProcess, killAllCli, runCli } from '../helpers/cli-process.js'
import type { CliExit } from '../helpers/cli-process.js'

/** Node startup plus N threads binding, on a busy machine. */
const START_MS = 20_000
const EXIT_MS = 8000
const LOOPBACK = ['--http-hostname', '127.0.0.1', '--udp-hostname', '127.0.0.1', '--udp6-hostname', '::1']
/** Swarms, and peers per swarm and transport. */
const SWARMS = 6
const PER_TRANSPORT = 10
/** WebSocket connections opened at most while looking for two on each worker. */
const MAX_WS_TRIES = 60

after(killAllCli)

interface Tracker { cli: CliProcess, port: number, lines: string[] }

/** The `msg` of each complete JSON log line on stdout. */
function msgs (cli: CliProcess): string[] {
  return cli.logs().map(l => l.msg)
}

/** The port of the first listening line among `lines` (0: none). */
function portIn (lines: string[]): number {
  const at = lines.map(l => /listening on (\d+)$/.exec(l)).find(m => m !== null)
  return at != null ? Number(at[1]) : 0
}

async function start (workers: number, native: boolean): Promise<Tracker> {
  const cli = new CliProcess(['-p', '0', '--workers', String(workers), ...LOOPBACK], { ...process.env, BITTORRENT_TRACKER_NATIVE: native ? '1' : '0' })
  const want = workers > 1 ? 5 : 4
  // JSON log lines: the seed's text is each line's msg.
  const lines = (await cli.rawLines(want, START_MS)).map(line => (JSON.parse(line) as { msg: string }).msg)
  return { cli, port: Number(/listening on (\d+)$/.exec(lines[0])![1]), lines }
}

/** Starts the CLI with `args` (plus -p 0 and loopback) and resolves its first `want` log messages. */
async function startWith (args: string[], want: number): Promise<Tracker> {
  const cli = new CliProcess(['-p', '0', ...args, ...LOOPBACK])
  const lines = (await cli.rawLines(want, START_MS)).map(line => (JSON.parse(line) as { msg: string }).msg)
  return { cli, port: portIn(lines), lines }
}

/** The log messages up to the ws listening line. */
function rest (t: Tracker): Promise<string[]> {
  return t.cli.waitUntil(() => msgs(t.cli).some(m => m.startsWith('ws server listening')) ? msgs(t.cli) : undefined, 'listening lines', START_MS)
}

async function stop (t: Tracker, signal: NodeJS.Signals): Promise<CliExit> {
  return await t.cli.stop(signal, EXIT_MS)
}

/** "ip:port" of a compact IPv4 peer. */
function v4 (addr: string): string {
  const b = Buffer.from(addr, 'latin1')
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}:${b.readUInt16BE(4)}`
}

interface WsConn {
  socket: WebSocket
  worker: string | undefined
  /** Resolves the first queued or future message matching `pred`. */
  take: (pred: (m: Record<string, any>) => boolean) => Promise<Record<string, any>>
}

async function wsConnect (port: number): Promise<WsConn> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false })
  const queue: Array<Record<string, any>> = []
  const waiters: Array<{ pred: (m: Record<string, any>) => boolean, resolve: (m: Record<string, any>) => void }> = []
  socket.on('message', (data: WebSocket.RawData) => {
    const m = JSON.parse(String(data)) as Record<string, any>
    const i = waiters.findIndex(w => w.pred(m))
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m)
    else queue.push(m)
  })
  socket.on('error', () => {})
  let worker: string | undefined
  socket.once('upgrade', res => { worker = res.headers['x-tracker-worker'] as string | undefined })
  await withTimeout(new Promise<void>((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject) }), REPLY_TIMEOUT_MS, 'ws open')
  return {
    socket,
    worker,
    take: pred => {
      const i = queue.findIndex(pred)
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0])
      return withTimeout(new Promise(resolve => waiters.push({ pred, resolve })), REPLY_TIMEOUT_MS, 'ws message')
    }
  }
}

/** With the native addon (when built here) the workers use SO_REUSEPORT; without, shared descriptors. */
const NATIVE = nativeStatus().available
const CONFIGS: Array<[workers: number, native: boolean]> = [[1, NATIVE], [2, NATIVE], [3, NATIVE], ...(NATIVE ? [[2, false] as [number, boolean]] : [])]

for (const [workers, native] of CONFIGS) {
  describe(`--workers ${workers}${native ? '' : ', BITTORRENT_TRACKER_NATIVE=0'}`, () => {
    it('prints the listening lines and the worker count, and SIGTERM exits 0', async () => {
      const t = await start(workers, native)
      const port = t.port
      const reason = NATIVE ? 'disabled by BITTORRENT_TRACKER_NATIVE=0' : nativeStatus().reason!
      const expected = [`http server listening on ${port}`, `udp server listening on ${port}`, `ws server listening on ${port}`,
        native ? 'udp: native recvmmsg/sendmmsg' : `udp: dgram (${reason})`]
      if (workers > 1) {
        expected.push(native
          ? `${workers} worker threads (SO_REUSEPORT, UDP steered by info hash)`
          : `${workers} worker threads (one shared socket each for TCP, UDP4, UDP6: ${reason})`)
      }
      assert.deepEqual(t.lines, expected)
      assert.deepEqual(await stop(t, 'SIGTERM'), { code: 0, signal: null })
    })

    it('/health answers 200 ok from every worker', async () => {
      const t = await start(workers, native)
      const seen = new Set<string>()
      // A new connection each time: the kernel spreads them over the workers.
      for (let i = 0; i < MAX_WS_TRIES && seen.size < workers; i++) {
        const r = await httpGet(`http://127.0.0.1:${t.port}`, '/health')
        const worker = workers > 1 ? String(r.headers['x-tracker-worker']) : '1'
        const body = JSON.parse(r.body.toString()) as Record<string, unknown>
        assert.deepEqual([r.status, body.status, body.listening, body.storeReady], [200, 'ok', true, true], `worker ${worker}`)
        seen.add(worker)
      }
      assert.equal(seen.size, workers)
      assert.deepEqual(await stop(t, 'SIGTERM'), { code: 0, signal: null })
    })

    it('/stats.json and /metrics count every worker\'s requests and WebSocket connections, whichever worker answers', async () => {
      const t = await start(workers, native)
      const base = `http://127.0.0.1:${t.port}`
      const conns: WsConn[] = []
      try {
        // New connections each time: the kernel spreads them over the workers.
        for (let i = 0; i < 40; i++) await httpAnnounce(base, { infoHash: id20(i, 'stats'), peerId: id20(i, 'stats-peer'), port: 1000 + i })
        for (let i = 0; i < 6; i++) conns.push(await wsConnect(t.port))
        const seen = new Set<string>()
        for (let i = 0; i < MAX_WS_TRIES && seen.size < workers; i++) {
          const r = await httpGet(base, '/stats.json')
          const doc = JSON.parse(r.body.toString()) as { requests: { http: { announce: unknown } }, wsConnections: number, health: { workers: number } }
          const worker = String(r.headers['x-tracker-worker'] ?? '1')
          assert.deepEqual([doc.requests.http.announce, doc.wsConnections, doc.health.workers], [{ ok: 40, error: 0, dropped: 0, rate: 0 }, 6, workers], `worker ${worker}`)
          const m = (await httpGet(base, '/metrics')).body.toString()
          assert.deepEqual(m.split('\n').filter(l => l.startsWith('tracker_requests_total{protocol="http",action="announce",result="ok"}') || l.startsWith('tracker_ws_connections ')),
            ['tracker_requests_total{protocol="http",action="announce",result="ok"} 40', 'tracker_ws_connections 6'])
          seen.add(worker)
        }
        assert.equal(seen.size, workers)
        assert.deepEqual(await stop(t, 'SIGTERM'), { code: 0, signal: null })
      } finally {
        for (const c of conns) c.socket.terminate()
        t.cli.kill()
      }
    })

    it('every peer announced over UDP (many sockets) and HTTP (new connections) is in the others\' answers; scrape counts are exact', async () => {
      const t = await start(workers, native)
      const base = `http://127.0.0.1:${t.port}`
      const udp: UdpClient[] = []
      const seenWorkers = new Set<string | undefined>()
      try {
        const hashes = Array.from({ length: SWARMS }, (_, i) => id20(i, 'wk'))
        const expected = new Map<BinaryString, Set<string>>()
        for (let h = 0; h < SWARMS; h++) {
          const want = new Set<string>()
          expected.set(hashes[h], want)
          for (let k = 0; k < PER_TRANSPORT; k++) {
            // UDP seeders, each from its own socket (its own source port).
            const c = await udpClient(4, t.port)
            udp.push(c)
            const port = 10_000 + h * 100 + k
            const r = await c.announce({ infoHash: hashes[h], peerId: id20(h * 100 + k, 'u'), port, left: 0, event: 2 })
            assert.equal(r.action, 'announce')
            want.add(`127.0.0.1:${port}`)
            // HTTP leechers, a new connection each.
            const hp = 20_000 + h * 100 + k
            const a = await httpAnnounce(base, { infoHash: hashes[h], peerId: id20(h * 100 + k, 'h'), port: hp, event: 2, numwant: 0 })
            assert.equal(a.failure, undefined)
            seenWorkers.add(a.headers['x-tracker-worker'] as string | undefined)
            want.add(`127.0.0.1:${hp}`)
          }
        }
        for (let h = 0; h < SWARMS; h++) {
          const want = expected.get(hashes[h])!
          // A leecher sees every other peer; a seeder sees every leecher.
          const leecher = await httpAnnounce(base, { infoHash: hashes[h], peerId: id20(h * 100, 'h'), port: 20_000 + h * 100, numwant: 200 })
          seenWorkers.add(leecher.headers['x-tracker-worker'] as string | undefined)
          assert.deepEqual([leecher.complete, leecher.incomplete], [PER_TRANSPORT, PER_TRANSPORT])
          assert.deepEqual(new Set(leecher.peers.map(p => v4(p.addr))), new Set([...want].filter(a => a !== `127.0.0.1:${20_000 + h * 100}`)))
          const seeder = udp[h * PER_TRANSPORT]
          const r = await seeder.announce({ infoHash: hashes[h], peerId: id20(h * 100, 'u'), port: 10_000 + h * 100, left: 0, numwant: 200 })
          assert.ok(r.action === 'announce')
          assert.deepEqual([r.seeders, r.leechers], [PER_TRANSPORT, PER_TRANSPORT])
          const leechers = Array.from({ length: PER_TRANSPORT }, (_, k) => `127.0.0.1:${20_000 + h * 100 + k}`)
          assert.deepEqual(new Set(r.peers.map(p => v4(p.addr))), new Set(leechers))
        }
        // One scrape for every swarm (they live on different workers), over HTTP and UDP.
        const s = await httpScrape(base, hashes)
        assert.deepEqual(s.files.map(e => ({ ...e })).sort((x, y) => x.infoHash < y.infoHash ? -1 : 1),
          [...hashes].sort().map(infoHash => ({ infoHash, complete: PER_TRANSPORT, incomplete: PER_TRANSPORT, downloaded: 0 })))
        const us = await udp[0].scrape(hashes)
        assert.ok(us.action === 'scrape')
        assert.deepEqual(us.entries, hashes.map(() => ({ complete: PER_TRANSPORT, incomplete: PER_TRANSPORT, downloaded: 0 })))
        // Whichever worker answers /stats.json, it counts every swarm and every unique peer id,
        // with the per-family and per-client breakdown (peer changes reach the worker counting
        // that peer id asynchronously: a bounded wait for the last ones first).
        const all = 2 * SWARMS * PER_TRANSPORT
        for (let i = 0; i < 6; i++) {
          let st: Record<string, any> = {}
          for (let tries = 0; tries < 100; tries++) {
            const r = await httpGet(base, '/stats.json', { connection: 'close' })
            seenWorkers.add(r.headers['x-tracker-worker'] as string | undefined)
            st = JSON.parse(r.body.toString())
            if (st.peersIPv4 === all) break
            await new Promise(resolve => setTimeout(resolve, 20))
          }
          assert.deepEqual([st.torrents, st.activeTorrents, st.peersAll, st.peersSeederOnly, st.peersLeecherOnly, st.peersSeederAndLeecher, st.peersIPv4, st.peersIPv6],
            [SWARMS, SWARMS, all, SWARMS * PER_TRANSPORT, SWARMS * PER_TRANSPORT, 0, all, 0])
          const clients = Object.values(st.clients as Record<string, Record<string, number>>).flatMap(v => Object.values(v))
          assert.equal(clients.reduce((a, b) => a + b, 0), all, JSON.stringify(st.clients))
        }
        if (workers === 1) assert.deepEqual([...seenWorkers], [undefined], 'the single-threaded server sends no worker header')
        else for (const w of seenWorkers) assert.ok(w !== undefined && Number(w) >= 1 && Number(w) <= workers, `worker header ${String(w)}`)
        assert.deepEqual(await stop(t, 'SIGINT'), { code: 0, signal: null })
      } finally {
        for (const c of udp) c.close()
        t.cli.kill()
      }
    })

    it('WebSocket offers and answers reach peers on every worker, both ways', async () => {
      const t = await start(workers, native)
      const conns: WsConn[] = []
      try {
        // Two connections on each worker (the kernel picks the worker of each connection).
        const byWorker = new Map<string | undefined, WsConn[]>()
        for (let i = 0; i < MAX_WS_TRIES; i++) {
          const c = await wsConnect(t.port)
          conns.push(c)
          const list = byWorker.get(c.worker) ?? []
          if (list.length < 2) { list.push(c); byWorker.set(c.worker, list) }
          if (byWorker.size === workers && [...byWorker.values()].every(l => l.length === 2)) break
        }
        if (workers === 1) assert.deepEqual([...byWorker.keys()], [undefined])
        else assert.deepEqual([...byWorker.keys()].sort(), Array.from({ length: workers }, (_, i) => String(i + 1)), 'connections landed on every worker')
        const chosen = [...byWorker.values()].flat()
        assert.equal(chosen.length, 2 * workers)
        let pair = 0
        for (let a = 0; a < chosen.length; a++) {
          for (let b = 0; b < chosen.length; b++) {
            if (a === b) continue
            // A swarm of its own per pair, so the offer can only go to b.
            const ih = id20(++pair, 'ws-pair')
            const pa = id20(a, 'peer-a')
            const pb = id20(b + 100, 'peer-b')
            const A = chosen[a]
            const B = chosen[b]
            B.socket.send(JSON.stringify({ action: 'announce', info_hash: ih, peer_id: pb, numwant: 0, event: 'started', offers: [] }))
            assert.equal((await B.take(m => m.info_hash === ih && m.complete !== undefined)).incomplete, 1)
            const offerId = id20(pair, 'offer')
            A.socket.send(JSON.stringify({
              action: 'announce', info_hash: ih, peer_id: pa, numwant: 1, event: 'started',
              offers: [{ offer_id: offerId, offer: { type: 'offer', sdp: `offer ${pair}` } }]
            }))
            assert.equal((await A.take(m => m.info_hash === ih && m.complete !== undefined)).incomplete, 2)
            assert.deepEqual(await B.take(m => m.info_hash === ih && m.offer !== undefined), {
              action: 'announce', info_hash: ih, peer_id: pa, offer_id: offerId, offer: { type: 'offer', sdp: `offer ${pair}` }
            })
            B.socket.send(JSON.stringify({
              action: 'announce', info_hash: ih, peer_id: pb, to_peer_id: pa, offer_id: offerId, answer: { type: 'answer', sdp: `answer ${pair}` }
            }))
            assert.deepEqual(await A.take(m => m.info_hash === ih && m.answer !== undefined), {
              action: 'announce', info_hash: ih, peer_id: pb, offer_id: offerId, answer: { type: 'answer', sdp: `answer ${pair}` }
            })
          }
        }
        assert.equal(pair, chosen.length * (chosen.length - 1))
        assert.deepEqual(await stop(t, 'SIGTERM'), { code: 0, signal: null })
      } finally {
        for (const c of conns) c.socket.terminate()
        t.cli.kill()
      }
    })

    if (workers > 1) {
      it('a WebSocket peer id held on one worker cannot be announced, stopped or removed from another', async () => {
        const t = await start(workers, native)
        const conns: WsConn[] = []
        try {
          const byWorker = new Map<string | undefined, WsConn>()
          for (let i = 0; i < MAX_WS_TRIES && byWorker.size < 2; i++) {
            const c = await wsConnect(t.port)
            conns.push(c)
            if (!byWorker.has(c.worker)) byWorker.set(c.worker, c)
          }
          const [victim, attacker] = [...byWorker.values()]
          assert.ok(attacker !== undefined && victim.worker !== attacker.worker, 'connections on two workers')
          // Swarms owned by every worker (the owner is the one that refuses).
          const hashes = Array.from({ length: SWARMS }, (_, i) => id20(i, 'ws-bound'))
          const peerId = id20(1, 'victim')
          const bound = (ih: BinaryString): Record<string, unknown> => ({ action: 'announce', 'failure reason': 'peer_id is bound to another connection', info_hash: ih })
          for (const ih of hashes) {
            const announce = { action: 'announce', info_hash: ih, peer_id: peerId, numwant: 0, left: 1, offers: [] }
            victim.socket.send(JSON.stringify({ ...announce, event: 'started' }))
            assert.equal((await victim.take(m => m.info_hash === ih)).incomplete, 1)
            attacker.socket.send(JSON.stringify({ ...announce, left: 0, event: 'started' }))
            assert.deepEqual(await attacker.take(m => m.info_hash === ih), bound(ih))
            attacker.socket.send(JSON.stringify({ ...announce, event: 'stopped' }))
            assert.deepEqual(await attacker.take(m => m.info_hash === ih), bound(ih))
          }
          // The attacker's socket closing takes nothing with it either.
          const gone = new Promise(resolve => attacker.socket.once('close', resolve))
          attacker.socket.close()
          await withTimeout(gone, REPLY_TIMEOUT_MS, 'close')
          const base = `http://127.0.0.1:${t.port}`
          // No event says when the workers have handled the close: the victim must stay, one
          // leecher in every swarm, over a few scrapes (before the fix the close removed it at once).
          for (let i = 0; i < 10; i++) {
            await new Promise(resolve => setTimeout(resolve, 30))
            const files = (await httpScrape(base, hashes)).files
            assert.deepEqual(files.map(f => [f.complete, f.incomplete]), hashes.map(() => [0, 1]))
          }
          assert.deepEqual(await stop(t, 'SIGTERM'), { code: 0, signal: null })
        } finally {
          for (const c of conns) c.socket.terminate()
          t.cli.kill()
        }
      })
    }
  })
}

describe('--workers 2 with an access list', () => {
  it('every worker serves the list the main thread loaded, and the one SIGHUP reloads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tracker-workers-list-'))
    const A = id20(1, 'listed')
    const B = id20(2, 'listed')
    const hex = (h: BinaryString): string => Buffer.from(h, 'latin1').toString('hex')
    const file = join(dir, 'allow.txt')
    writeFileSync(file, `${hex(A)}\n`)
    const t = await startWith(['--workers', '2', '--allowlist', file], 6)
    const base = `http://127.0.0.1:${t.port}`
    /** Announces `ih` on fresh connections until both workers have answered; their failure reasons by worker. */
    const answers = async (ih: BinaryString, want: string | undefined): Promise<Map<string, string | undefined>> => {
      const byWorker = new Map<string, string | undefined>()
      for (let i = 0; i < 200 && (byWorker.size < 2 || [...byWorker.values()].some(f => f !== want)); i++) {
        const r = await httpAnnounce(base, { infoHash: ih, peerId: id20(i, 'lp'), port: 7000 + i, event: 2, numwant: 0 })
        byWorker.set(r.headers['x-tracker-worker'] as string, r.failure)
      }
      return byWorker
    }
    try {
      assert.deepEqual(t.lines[0], 'access list loaded')
      assert.deepEqual([...(await answers(A, undefined))].sort(), [['1', undefined], ['2', undefined]])
      assert.deepEqual([...(await answers(B, ERRORS.TORRENT_NOT_ALLOWED))].sort(), [['1', ERRORS.TORRENT_NOT_ALLOWED], ['2', ERRORS.TORRENT_NOT_ALLOWED]])

      writeFileSync(file, `${hex(B)}\n`)
      t.cli.signal('SIGHUP')
      await t.cli.waitFor('stdout', /"msg":"access list reloaded"/)
      assert.deepEqual([...(await answers(B, undefined))].sort(), [['1', undefined], ['2', undefined]])
      assert.deepEqual([...(await answers(A, ERRORS.TORRENT_NOT_ALLOWED))].sort(), [['1', ERRORS.TORRENT_NOT_ALLOWED], ['2', ERRORS.TORRENT_NOT_ALLOWED]])
      // Settled: from now on every answer follows the new list, on both workers.
      for (let i = 0; i < 10; i++) {
        assert.equal((await httpAnnounce(base, { infoHash: A, peerId: id20(i, 'lq'), port: 7500 + i, numwant: 0 })).failure, ERRORS.TORRENT_NOT_ALLOWED)
        assert.equal((await httpAnnounce(base, { infoHash: B, peerId: id20(i, 'lq'), port: 7600 + i, numwant: 0 })).failure, undefined)
      }
      assert.deepEqual(await stop(t, 'SIGTERM'), { code: 0, signal: null })
    } finally {
      t.cli.kill()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('--workers flag', () => {
  for (const bad of ['-1', 'two', '1.5', '', '1025', 'Auto']) {
    it(`--workers ${JSON.stringify(bad)} exits 2`, async () => {
      const r = await runCli([`--workers=${bad}`], undefined, START_MS)
      assert.equal(r.code, 2)
      assert.equal(r.stderr.split('\n')[0], `bittorrent-tracker: invalid workers (1 to 1024, or auto): ${bad}`)
    })
  }

  it('--workers auto: one worker thread per core (the last start-up line says how many)', async () => {
    const cores = availableParallelism()
    const t = await startWith(['--workers', 'auto'], cores > 1 ? 5 : 4)
    if (cores > 1) assert.match(t.lines[4], new RegExp(`^${cores} worker threads \\(`))
    else assert.equal(t.lines.length, 4)
    assert.deepEqual(await stop(t, 'SIGTERM'), { code: 0, signal: null })
  })

  for (const [flags, why] of [[['--private'], 'private needs one process'], [['--workers=0', '--private', '--client-allow', '-qB'], 'private needs one process']] as const) {
    it(`--workers auto with ${flags.join(' ')}: one thread, and a log line says why`, async () => {
      const t = await startWith(['--workers', 'auto', ...flags], 1)
      assert.deepEqual(t.lines, [`--workers auto: 1 worker thread (${why})`])
      const all = await rest(t)
      assert.ok(all.some(l => /^http server listening on \d+$/.test(l)), all.join(' | '))
      assert.ok(!all.some(l => / worker threads/.test(l)), all.join(' | '))
      assert.deepEqual(await stop(t, 'SIGTERM'), { code: 0, signal: null })
    })
  }

  for (const [flags, name] of [[['--private'], 'private'], [['--redis', 'redis://127.0.0.1:1'], 'redis'], [['--state-file', '/nonexistent/s'], 'stateFile']] as const) {
    it(`--workers 2 with ${flags[0]} exits 2: ${name} keeps process-wide state`, async () => {
      const r = await runCli(['--workers', '2', ...flags], undefined, START_MS)
      assert.equal(r.code, 2)
      assert.equal(r.stderr.split('\n')[0], `bittorrent-tracker: ${name} needs a single worker (--workers 1)`)
    })
  }
})
