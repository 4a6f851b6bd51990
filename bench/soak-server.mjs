// The tracker under soak (bench/soak.mjs forks it): our Server on loopback with a short interval
// so expiry runs all the time. Answers 'check' over IPC with its resident memory, its counters
// and a recount of every peer walked through the public `torrents` view.
import { Server } from '../dist/index.js'

const intervalMs = Number(process.argv[2] ?? 10000)
const server = new Server({ interval: intervalMs })
let errors = 0
let warnings = 0
const lastWarnings = []
server.on('error', err => { errors++; lastWarnings.push(`error: ${err.message}`) })
server.on('warning', err => {
  warnings++
  if (lastWarnings.length < 20) lastWarnings.push(`warning: ${err.message}`)
})

server.listen(0, '127.0.0.1', () => {
  process.send({ type: 'listening', http: server.http.address().port, udp: server.udp.address().port })
})

/** Walks every swarm: the counts a store keeps must equal what its peers say. */
function recount () {
  let torrents = 0; let peers = 0; let mismatched = 0
  const byId = new Map() // peer id → bit 1 seeding somewhere, bit 2 leeching somewhere
  for (const hex of Object.keys(server.torrents)) {
    const t = server.torrents[hex]
    if (t === undefined || t.peers.size === 0) continue
    torrents++
    let s = 0
    for (const p of t.peers.values()) {
      if (p.complete) s++
      byId.set(p.peerId, (byId.get(p.peerId) ?? 0) | (p.complete ? 1 : 2))
    }
    if (s !== t.complete || t.peers.size - s !== t.incomplete) mismatched++
    peers += t.peers.size
  }
  let seederOnly = 0; let leecherOnly = 0
  for (const v of byId.values()) { if (v === 1) seederOnly++; else if (v === 2) leecherOnly++ }
  return { torrents, peers, peersAll: byId.size, peersSeederOnly: seederOnly, peersLeecherOnly: leecherOnly, mismatched }
}

process.on('message', msg => {
  if (msg.type === 'check') {
    const stats = server.getStats()
    const mem = process.memoryUsage()
    process.send({
      type: 'check',
      id: msg.id,
      rss: mem.rss,
      heap: mem.heapUsed + mem.external,
      stats: { torrents: stats.activeTorrents, peersSeederOnly: stats.peersSeederOnly, peersLeecherOnly: stats.peersLeecherOnly, peersAll: stats.peersAll },
      recount: msg.recount ? recount() : undefined,
      errors,
      warnings,
      lastWarnings: lastWarnings.splice(0)
    })
  } else if (msg.type === 'close') {
    server.close(() => process.exit(0))
  }
})
// The soak driver died: do not outlive it.
process.on('disconnect', () => process.exit(0))
