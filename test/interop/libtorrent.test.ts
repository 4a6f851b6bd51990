// Interop: OUR tracker server with libtorrent (Debian's python3-libtorrent 2.0.x, driven by
// test/interop/lt_swarm.py under /usr/bin/python3), over HTTP and UDP, each on IPv4 and IPv6,
// on loopback only.
//
// lt_swarm.py runs two libtorrent sessions that can only find each other through our tracker
// (DHT, LSD, UPnP, NAT-PMP and the default extensions, PEX included, are off; both listen on one
// loopback address). Session A seeds a random 256 KiB file; B downloads it. The script stops at
// three points and waits for the test to say "continue", so the test can look at the tracker
// while the swarm is in a known state:
//   seeding   A announced 'started' (left 0) and scraped: the tracker knows one seeder
//   finished  B downloaded everything and announced 'completed': two seeders, one download
//   scraped   A and B both scraped the tracker (libtorrent's own scrape request and parser)
// then both torrents are paused ('stopped' announces, answered) and removed, and the script compares the bytes.
//
// The peers' addresses in the server's events are exact: libtorrent announces its listen port,
// which the script reports.
//
// libtorrent oddities that matter here (settings and reasons are in lt_swarm.py):
// - SSRF mitigation (on by default) lets libtorrent ask a tracker on a loopback address only for
//   the path /announce, so its scrape of .../scrape is refused before it is sent; it is off.
// - libtorrent keeps ONE cache of UDP tracker connection ids per process, keyed by the tracker's
//   IP address, shared by every session and every local socket. So session B sends its first
//   UDP announce with the connection id the tracker issued to session A (same IP 127.0.0.1 or
//   ::1, another port), without a connect of its own. A tracker that ties a connection id to
//   the source IP (opentracker does; it is all BEP 15's anti-spoofing purpose needs) answers
//   it; one that ties it to IP and port drops the packet, and B never hears of A. The same
//   happens to any libtorrent whose tracker traffic leaves from more than one local port, or
//   whose NAT changes its source port. This test expects the tracker to answer.
// - On the way out the script pauses both torrents (libtorrent sends 'stopped') and waits for the
//   tracker's replies before removing them: removed first, the torrents' 'stopped' was, once in
//   a while, queued but never sent before the process ended.
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AddressInfo } from 'node:net'
import type { EventEmitter } from 'node:events'
import { Server } from '../../src/index.js'
import { JsonLineScript, withTimeout } from '../helpers/processes.js'

const PYTHON = '/usr/bin/python3'
const SCRIPT = fileURLToPath(new URL('./lt_swarm.py', import.meta.url))
/** Bound for one whole libtorrent run, in seconds; the script enforces it, and the test kills it
 * by PID a little after that. */
const RUN_S = 60
const STEP_MS = 10_000
const FILE_SIZE = 256 * 1024 // as in lt_swarm.py
const PIECE_SIZE = 16 * 1024 // as in lt_swarm.py

type Transport = 'http' | 'udp'
type Family = 4 | 6
type TrackerServer = InstanceType<typeof Server>
type ServerEvent = [name: string, addr: string]

function counts (server: TrackerServer, infoHashHex: string): { complete: number, incomplete: number } {
  const swarm = server.torrents[infoHashHex]
  if (swarm == null) return { complete: 0, incomplete: 0 }
  return { complete: swarm.complete, incomplete: swarm.incomplete }
}

/** Resolves once `server` has emitted `n` events in total into `events`. */
function eventsReach (server: EventEmitter, events: ServerEvent[], n: number, what: string): Promise<void> {
  if (events.length >= n) return Promise.resolve()
  return withTimeout(new Promise<void>(resolve => {
    const check = (): void => {
      if (events.length >= n) {
        for (const e of ['start', 'complete', 'update', 'stop']) server.removeListener(e, check)
        resolve()
      }
    }
    // Registered after the recorders, so `events` already holds the new entry.
    for (const e of ['start', 'complete', 'update', 'stop']) server.on(e, check)
  }), STEP_MS, `${what} (server events so far: ${JSON.stringify(events)})`)
}

async function run (transport: Transport, family: Family): Promise<void> {
  const host = family === 4 ? '127.0.0.1' : '::1'
  const hp = (port: number): string => family === 4 ? `127.0.0.1:${port}` : `[::1]:${port}`
  const server = new Server({ http: transport === 'http', udp: transport === 'udp', ws: false, stats: false })
  const events: ServerEvent[] = []
  const warnings: string[] = []
  for (const name of ['start', 'complete', 'update', 'stop']) server.on(name, (addr: string) => { events.push([name, addr]) })
  server.on('warning', (err: Error) => { warnings.push(err.message) })
  await withTimeout(new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => { server.removeListener('error', reject); resolve() })
  }), STEP_MS, `server.listen(0, ${host})`)
  const work = await mkdtemp(join(tmpdir(), `lt-${transport}${family}-`))
  let lt: JsonLineScript | null = null
  try {
    let port: number
    if (transport === 'http') port = (server.http!.address() as AddressInfo).port
    else port = ((family === 4 ? server.udp : server.udp6)!.address() as AddressInfo).port
    const tracker = transport === 'http' ? `http://${hp(port)}/announce` : `udp://${hp(port)}/announce`
    lt = new JsonLineScript(PYTHON, SCRIPT, ['--tracker', tracker, '--family', String(family), '--workdir', join(work, 'run'), '--timeout', String(RUN_S)], RUN_S, STEP_MS)

    // 1. A is seeding and has announced: one seeder, nobody else. Its own scrape agrees.
    const seeding = await lt.expect('seeding')
    const ih = seeding.info_hash as string
    assert.match(ih, /^[0-9a-f]{40}$/)
    const A = hp(seeding.a_port as number)
    const B = hp(seeding.b_port as number)
    assert.deepEqual(events, [['start', A]], 'server events after A started')
    assert.deepEqual(Object.keys(server.torrents), [ih], 'server.torrents holds the one swarm')
    assert.deepEqual(counts(server, ih), { complete: 1, incomplete: 0 }, 'swarm after A started')
    assert.deepEqual(seeding.a_scrape, { complete: 1, incomplete: 0 }, "A's libtorrent scrape")
    lt.send('continue')

    // 2. B found A through the tracker (its first announce reply held exactly one peer),
    //    downloaded everything and announced 'completed'.
    const finished = await lt.expect('finished')
    assert.equal(finished.b_first_reply_peers, 1, "peers in the reply to B's first announce")
    assert.equal(finished.b_seeding, true)
    assert.equal(finished.b_total_done, FILE_SIZE)
    assert.equal(finished.b_num_pieces, FILE_SIZE / PIECE_SIZE)
    await eventsReach(server, events, 3, "the server's 'complete' event")
    assert.deepEqual(events, [['start', A], ['start', B], ['complete', B]], 'server events after B completed')
    assert.deepEqual(counts(server, ih), { complete: 2, incomplete: 0 }, 'swarm after B completed')
    lt.send('continue')

    // 3. libtorrent's scrape (its own request and parser) on both sessions.
    const scraped = await lt.expect('scraped')
    assert.deepEqual(scraped.a_scrape, { complete: 2, incomplete: 0 }, "A's scrape after B completed")
    assert.deepEqual(scraped.b_scrape, { complete: 2, incomplete: 0 }, "B's scrape after B completed")
    assert.deepEqual(scraped.a_status, { num_complete: 2, num_incomplete: 0 }, "A's torrent_status after scraping")
    assert.deepEqual(scraped.b_status, { num_complete: 2, num_incomplete: 0 }, "B's torrent_status after scraping")
    lt.send('continue')

    // 4. Both leave with 'stopped'; B's bytes are A's bytes.
    const done = await lt.expect('done')
    assert.equal(done.size, FILE_SIZE)
    assert.equal(done.sha1_got, done.sha1_expected)
    assert.equal(done.identical, true)
    const exit = await lt.waitExit()
    assert.deepEqual(exit, { code: 0, signal: null }, `lt_swarm.py exit\n${lt.stderr}`)
    await eventsReach(server, events, 5, "the server's two 'stop' events").catch((err: Error) => { err.message += `\n${lt!.stderr}`; throw err })
    assert.deepEqual(events.slice(0, 3), [['start', A], ['start', B], ['complete', B]], 'server events before the stops')
    assert.deepEqual(events.slice(3).sort(), [['stop', A], ['stop', B]].sort(), 'the two stops (in either order)')
    assert.equal(events.length, 5, `no further events: ${JSON.stringify(events)}`)
    assert.deepEqual(counts(server, ih), { complete: 0, incomplete: 0 }, 'swarm after both stopped')
    assert.deepEqual(warnings, [], 'server warnings')
  } catch (err) {
    // What the tracker complained about is usually the explanation of a libtorrent timeout.
    if (err instanceof Error && warnings.length > 0) err.message += `\nserver warnings: ${JSON.stringify(warnings)}`
    throw err
  } finally {
    await lt?.dispose()
    await withTimeout(new Promise<void>(resolve => server.close(() => resolve())), STEP_MS, 'server.close').catch(() => {})
    await rm(work, { recursive: true, force: true })
  }
}

describe('libtorrent (python3-libtorrent 2.0) seeds and downloads through our tracker', () => {
  for (const transport of ['http', 'udp'] as const) {
    for (const family of [4, 6] as const) {
      test(`${transport.toUpperCase()} over IPv${family}`, { timeout: (RUN_S + 30) * 1000 }, () => run(transport, family))
    }
  }
})
