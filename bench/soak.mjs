// Soak: a bounded mixed run against our tracker — UDP and HTTP announces and scrapes, WebSocket
// peers connecting, relaying offers, answering and disconnecting, and expiry all the time
// (interval 10 s, so a silent peer is gone after 20 s) — for `--minutes` (default 10).
// Every 10 s it samples the server's resident memory; every minute, and at the end, the server
// recounts every peer through the public `torrents` view and compares with its counters.
// Passes when: no request failed or went unanswered, no server error or warning, every recount
// equals the counters, and resident memory after warm-up stays flat (last third's median within
// 10% of the first third's). Prints a table and writes bench/out/soak.md and soak.json.
//
//   node bench/soak.mjs [--minutes 10] [--rate 1500] [--torrents 2000] [--peers 20000]
import { fork } from 'node:child_process'
import dgram from 'node:dgram'
import http from 'node:http'
import { mkdirSync, writeFileSync, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import WebSocket from 'ws'

const BENCH = dirname(fileURLToPath(import.meta.url))
const OUT = join(BENCH, 'out')
const DIST = join(BENCH, '..', 'dist')
if (!existsSync(join(DIST, 'index.js'))) { console.error('dist/ is missing: run `npm run build` first'); process.exit(1) }
const udpCodec = await import(join(DIST, 'protocol/udp/codec.js'))
const httpAnnounce = await import(join(DIST, 'protocol/http/announce.js'))
const httpScrape = await import(join(DIST, 'protocol/http/scrape.js'))
const wsCodec = await import(join(DIST, 'protocol/ws/codec.js'))

const opts = { minutes: 10, rate: 1500, torrents: 2000, peers: 20000, interval: 10000 }
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i]
  const key = a.replace(/^--/, '')
  if (a === '--help' || a === '-h') {
    console.log('usage: node bench/soak.mjs [--minutes 10] [--rate 1500] [--torrents 2000] [--peers 20000] [--interval 10000]')
    process.exit(0)
  }
  if (!(key in opts) || !Number.isFinite(Number(process.argv[i + 1]))) { console.error(`bad option ${a}`); process.exit(2) }
  opts[key] = Number(process.argv[++i])
}
const DURATION_MS = opts.minutes * 60_000
const WARMUP_MS = Math.min(120_000, DURATION_MS * 0.2)
const TICK_MS = 100
const WS_MAX_OPEN = 200
const UDP_TIMEOUT_MS = 5000

const infoHash = n => { const b = Buffer.alloc(20); b.writeUInt32BE(n + 1, 16); b[0] = 0xbe; return b.toString('latin1') }
const peerId = n => ('-SK0001-' + String(n).padStart(12, '0'))
const seeder = n => n % 4 === 0
/** The torrents a peer is in: one to three, fixed per peer. */
const torrentOf = (p, k) => (p * 7919 + k * 104729) % opts.torrents
const rnd = n => Math.floor(Math.random() * n)

const tally = { udpAnnounce: 0, udpScrape: 0, httpAnnounce: 0, httpScrape: 0, wsAnnounce: 0, wsOffersIn: 0, wsAnswersOut: 0, wsAnswersIn: 0, wsOpened: 0, wsClosed: 0 }
const failures = { udpError: 0, udpTimeout: 0, httpFailure: 0, httpError: 0, wsFailure: 0, wsError: 0 }
const failureSamples = []
function fail (kind, detail) { failures[kind]++; if (failureSamples.length < 10) failureSamples.push(`${kind}: ${detail}`) }

// ---- the server ------------------------------------------------------------------------------
const child = fork(join(BENCH, 'soak-server.mjs'), [String(opts.interval)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
const ports = await new Promise((resolve, reject) => {
  child.once('message', m => m.type === 'listening' ? resolve(m) : reject(new Error('unexpected message')))
  child.once('exit', code => reject(new Error(`server exited with ${code}`)))
})
let checkId = 0
const waiting = new Map()
child.on('message', m => { if (m.type === 'check') { waiting.get(m.id)?.(m); waiting.delete(m.id) } })
function check (recount) {
  const id = ++checkId
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { waiting.delete(id); reject(new Error('server did not answer a check within 30 s')) }, 30_000)
    waiting.set(id, m => { clearTimeout(t); resolve(m) })
    child.send({ type: 'check', id, recount })
  })
}

// ---- UDP -------------------------------------------------------------------------------------
const udp = dgram.createSocket('udp4')
await new Promise(resolve => udp.bind(0, '127.0.0.1', resolve))
let connectionId = null
let connectedAt = 0
const pendingUdp = new Map() // transaction id → { kind, sent }
let nextTx = 1
udp.on('message', msg => {
  const r = udpCodec.decodeUdpResponse(msg, 6)
  if (!r.ok) return fail('udpError', `undecodable reply: ${r.error}`)
  const p = pendingUdp.get(r.value.transactionId)
  if (p === undefined) return
  pendingUdp.delete(r.value.transactionId)
  if (r.value.action === 'error') return fail('udpError', r.value.message)
  if (r.value.action === 'connect') { connectionId = r.value.connectionId; connectedAt = Date.now() } else if (r.value.action === 'announce') tally.udpAnnounce++
  else if (r.value.action === 'scrape') tally.udpScrape++
})
function udpSend (buf, kind, tx) {
  pendingUdp.set(tx, { kind, sent: Date.now() })
  udp.send(buf, ports.udp, '127.0.0.1')
}
function udpConnect () { const tx = nextTx++ >>> 0; udpSend(udpCodec.encodeConnectRequest(tx), 'connect', tx) }
function eventFor () { const x = Math.random(); return x < 0.8 ? 0 : x < 0.9 ? 2 : x < 0.95 ? 1 : 3 }
function udpAnnounce (p, t) {
  if (connectionId === null) return
  const tx = nextTx++ >>> 0
  udpSend(udpCodec.encodeAnnounceRequest({
    connectionId,
    transactionId: tx,
    request: { infoHash: infoHash(t), peerId: peerId(p), downloaded: 0, left: seeder(p) ? 0 : 1000, uploaded: 0, event: eventFor(), key: p, numwant: 30, port: 10000 + p }
  }), 'announce', tx)
}
function udpScrape () {
  if (connectionId === null) return
  const tx = nextTx++ >>> 0
  udpSend(udpCodec.encodeScrapeRequest(connectionId, tx, Array.from({ length: 10 }, () => infoHash(rnd(opts.torrents)))), 'scrape', tx)
}

// ---- HTTP ------------------------------------------------------------------------------------
const agent = new http.Agent({ keepAlive: true, maxSockets: 8 })
let httpInFlight = 0
function httpGet (path, onBody) {
  if (httpInFlight >= 64) return // bounded: the soak measures the tracker, not a queue
  httpInFlight++
  const req = http.get({ host: '127.0.0.1', port: ports.http, path, agent }, res => {
    const chunks = []
    res.on('data', c => chunks.push(c))
    res.on('end', () => { httpInFlight--; onBody(res.statusCode, Buffer.concat(chunks)) })
  })
  req.setTimeout(UDP_TIMEOUT_MS, () => req.destroy(new Error('timeout')))
  req.on('error', err => { httpInFlight--; fail('httpError', err.message) })
}
function httpAnnounceOne (p, t) {
  const q = httpAnnounce.encodeAnnounceQuery({ infoHash: infoHash(t), peerId: peerId(p), port: 10000 + p, uploaded: 0, downloaded: 0, left: seeder(p) ? 0 : 1000, event: eventFor(), numwant: 30 })
  httpGet('/announce?' + q, (status, body) => {
    const r = httpAnnounce.decodeAnnounceResponse(body)
    if (status !== 200 || !r.ok) return fail('httpError', `status ${status}`)
    if (r.value.failure !== undefined) return fail('httpFailure', r.value.failure)
    tally.httpAnnounce++
  })
}
function httpScrapeOne () {
  httpGet('/scrape?' + httpScrape.encodeScrapeQuery(Array.from({ length: 5 }, () => infoHash(rnd(opts.torrents)))), (status, body) => {
    const r = httpScrape.decodeScrapeResponse(body)
    if (status !== 200 || !r.ok) return fail('httpError', `scrape status ${status}`)
    tally.httpScrape++
  })
}

// ---- WebSocket -------------------------------------------------------------------------------
const sockets = new Set()
let wsSerial = 0
function wsOpen () {
  if (sockets.size >= WS_MAX_OPEN) return
  const n = wsSerial++
  const id = ('-WS0001-' + String(n).padStart(12, '0')).slice(0, 20)
  const ws = new WebSocket(`ws://127.0.0.1:${ports.http}`)
  sockets.add(ws)
  const torrents = [rnd(opts.torrents / 10), rnd(opts.torrents / 10)] // ws swarms are denser
  ws.on('open', () => {
    tally.wsOpened++
    for (const t of torrents) {
      ws.send(wsCodec.encodeAnnounceRequest({
        infoHash: infoHash(t), peerId: id, uploaded: 0, downloaded: 0, left: n % 3 === 0 ? 0 : 1000, event: 2, numwant: 2,
        offers: [0, 1].map(i => ({ offerId: randomBytes(20).toString('latin1'), sdp: `v=0 soak ${n} ${i}` }))
      }))
    }
    setTimeout(() => ws.close(), 5000 + rnd(25000)).unref()
  })
  ws.on('message', data => {
    const r = wsCodec.decodeWsResponse(data.toString())
    if (!r.ok) return fail('wsError', 'undecodable message')
    const m = r.value
    if (m.type === 'failure') return fail('wsFailure', m.reason)
    if (m.type === 'announce') tally.wsAnnounce++
    else if (m.type === 'offer') {
      tally.wsOffersIn++
      ws.send(wsCodec.encodeAnswerRequest({ infoHash: m.infoHash, peerId: id, toPeerId: m.peerId, offerId: m.offerId, sdp: 'v=0 soak answer' }))
      tally.wsAnswersOut++
    } else if (m.type === 'answer') tally.wsAnswersIn++
  })
  ws.on('error', err => { if (!finishing) fail('wsError', err.message) })
  ws.on('close', () => { sockets.delete(ws); tally.wsClosed++ })
}

// ---- the run ---------------------------------------------------------------------------------
const samples = []
const recounts = []
const started = Date.now()
console.log(`soak: ${opts.minutes} min, ~${opts.rate} requests/s, ${opts.torrents} torrents, ${opts.peers} peers, interval ${opts.interval} ms (server pid ${child.pid})`)
udpConnect()
let lastRecount = 0
let lastSample = 0
let checking = false
const perTick = opts.rate * TICK_MS / 1000
const timer = setInterval(() => {
  const now = Date.now()
  const elapsed = now - started
  if (now - connectedAt > 60_000 && connectionId !== null) { connectionId = null; udpConnect() }
  // The announcing population drifts: peers fall silent and expire, new ones start.
  const window = Math.floor(opts.peers / 2)
  const offset = Math.floor(elapsed / 1000 * 20) % opts.peers
  for (let i = 0; i < perTick; i++) {
    const p = (offset + rnd(window)) % opts.peers
    const t = torrentOf(p, rnd(1 + (p % 3)))
    const x = Math.random()
    if (x < 0.55) udpAnnounce(p, t)
    else if (x < 0.85) httpAnnounceOne(p, t)
    else if (x < 0.95) udpScrape()
    else httpScrapeOne()
  }
  if (Math.random() < 0.5) wsOpen()
  for (const [tx, p] of pendingUdp) {
    if (now - p.sent > UDP_TIMEOUT_MS) { pendingUdp.delete(tx); fail('udpTimeout', p.kind) }
  }
  if (!checking && now - lastSample >= 10_000) {
    lastSample = now
    const recount = now - lastRecount >= 60_000
    if (recount) lastRecount = now
    checking = true
    check(recount).then(m => {
      checking = false
      samples.push({ t: Math.round(elapsed / 1000), rss: m.rss, heap: m.heap })
      if (m.recount !== undefined) recounts.push({ t: Math.round(elapsed / 1000), stats: m.stats, recount: m.recount })
      if (m.errors > 0 || m.warnings > 0) fail('udpError', `server reported ${m.errors} errors, ${m.warnings} warnings: ${m.lastWarnings.join('; ')}`)
      process.stdout.write(`  ${String(Math.round(elapsed / 1000)).padStart(4)} s  rss ${(m.rss / 2 ** 20).toFixed(1)} MiB  torrents ${m.stats.torrents}  peers ${m.stats.peersAll}  ws open ${sockets.size}${m.recount ? '  recount ' + (sameCounts(m) ? 'equal' : 'DIFFERENT') : ''}\n`)
    }, err => { checking = false; fail('udpError', err.message) })
  }
  if (elapsed >= DURATION_MS) finish()
}, TICK_MS)

function sameCounts (m) {
  const r = m.recount
  return r.mismatched === 0 && r.torrents === m.stats.torrents && r.peersAll === m.stats.peersAll &&
    r.peersSeederOnly === m.stats.peersSeederOnly && r.peersLeecherOnly === m.stats.peersLeecherOnly
}

let finishing = false
async function finish () {
  if (finishing) return
  finishing = true
  clearInterval(timer)
  for (const ws of sockets) ws.close()
  await new Promise(resolve => setTimeout(resolve, 2000)) // let in-flight replies and closes land
  for (const [, p] of pendingUdp) fail('udpTimeout', p.kind)
  const last = await check(true)
  recounts.push({ t: Math.round((Date.now() - started) / 1000), stats: last.stats, recount: last.recount })
  child.send({ type: 'close' })
  udp.close()
  agent.destroy()

  const after = samples.filter(s => s.t * 1000 >= WARMUP_MS)
  const third = Math.max(1, Math.floor(after.length / 3))
  const median = a => { const s = a.map(x => x.rss).sort((x, y) => x - y); return s[Math.floor(s.length / 2)] ?? 0 }
  const early = median(after.slice(0, third))
  const late = median(after.slice(-third))
  const growth = early > 0 ? (late - early) / early : 0
  const allEqual = recounts.every(sameCounts)
  const failed = Object.values(failures).reduce((a, b) => a + b, 0)
  const flat = growth <= 0.10
  const pass = failed === 0 && allEqual && flat && after.length >= 3
  const mib = b => (b / 2 ** 20).toFixed(1)
  const lines = [
    `| soak (${opts.minutes} min, ~${opts.rate} req/s, interval ${opts.interval / 1000} s) | value |`,
    '|---|---|',
    `| UDP announces / scrapes answered | ${tally.udpAnnounce} / ${tally.udpScrape} |`,
    `| HTTP announces / scrapes answered | ${tally.httpAnnounce} / ${tally.httpScrape} |`,
    `| WS sockets opened / closed, announces answered | ${tally.wsOpened} / ${tally.wsClosed}, ${tally.wsAnnounce} |`,
    `| WS offers received / answers sent / answers received | ${tally.wsOffersIn} / ${tally.wsAnswersOut} / ${tally.wsAnswersIn} |`,
    `| failed or unanswered requests | ${failed} ${failed > 0 ? JSON.stringify(failures) : ''} |`,
    `| recounts equal to the counters | ${recounts.filter(sameCounts).length} of ${recounts.length} |`,
    `| resident memory after warm-up: first third → last third (median) | ${mib(early)} → ${mib(late)} MiB (${(growth * 100).toFixed(1)}%) |`,
    `| final: torrents, peers (recount) | ${last.recount.torrents}, ${last.recount.peersAll} |`,
    `| result | ${pass ? 'PASS' : 'FAIL'} |`
  ]
  console.log('\n' + lines.join('\n'))
  if (failureSamples.length > 0) console.log('\nfirst failures:\n  ' + failureSamples.join('\n  '))
  mkdirSync(OUT, { recursive: true })
  writeFileSync(join(OUT, 'soak.md'), lines.join('\n') + '\n')
  writeFileSync(join(OUT, 'soak.json'), JSON.stringify({ opts, tally, failures, failureSamples, samples, recounts, growth, pass }, null, 2))
  process.exitCode = pass ? 0 : 1
}
process.on('SIGINT', () => { try { process.kill(child.pid, 'SIGKILL') } catch {} process.exit(130) })
