// Access lists: info-hash allow/deny files and peer id prefixes, on a real server over HTTP
// (v4, v6), UDP (v4, v6) and WebSocket; reloads by file change, and a broken reload.
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AccessList, AccessListError } from '../../../src/server/access/access-list.js'
import { parseInfoHashList } from '../../../src/server/access/list-file.js'
import { AgentPool, BARRIER_HASH, hex, httpGet, httpScrape, id20, startServer, TRANSPORTS, withTimeout, wsClient } from '../../helpers/tracker-clients.js'
import type { ServerOptions } from '../../../src/server/server.js'

const TORRENT_REFUSED = 'torrent not allowed on this tracker'
const CLIENT_REFUSED = 'client not allowed on this tracker'
const A = id20(101)
const B = id20(102)
const C = id20(103)

const dir = mkdtempSync(join(tmpdir(), 'bt-access-'))
after(() => rmSync(dir, { recursive: true, force: true }))
let n = 0
function listFile (text: string): string {
  const p = join(dir, `list${n++}.txt`)
  writeFileSync(p, text)
  return p
}

/** Resolves on the list's next 'reload' or 'warning'. */
function nextEvent (list: AccessList): Promise<{ event: 'reload' | 'warning', value: unknown }> {
  return withTimeout(new Promise(resolve => {
    const done = (event: 'reload' | 'warning') => (value: unknown): void => {
      list.off('reload', onReload)
      list.off('warning', onWarning)
      resolve({ event, value })
    }
    const onReload = done('reload')
    const onWarning = done('warning')
    list.on('reload', onReload)
    list.on('warning', onWarning)
  }), 5000, 'access list reload')
}

describe('list file format', () => {
  it('hex in either case, base32, comments, blank lines, CRLF', () => {
    const r = parseInfoHashList(`# torrents\r\n${hex(A).toUpperCase()}\r\n\n   ${hex(B)}   # trailing comment\nAAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT\naaaqeayeaudaocajbifqydiob4ibceqt\n`)
    assert.ok(r.ok)
    assert.deepEqual([...r.hashes], [A, B, Buffer.from(Array.from({ length: 20 }, (_, i) => i)).toString('latin1')])
  })

  it('an empty file is an empty list', () => {
    const r = parseInfoHashList('')
    assert.ok(r.ok)
    assert.equal(r.hashes.size, 0)
  })

  for (const [text, line, what] of [
    [`${hex(A)}\n${hex(A).slice(1)}\n`, 2, JSON.stringify(hex(A).slice(1))],
    [`\n\n${hex(A)}0\n`, 3, JSON.stringify(`${hex(A)}0`)],
    [`${hex(A)} ${hex(B)}\n`, 1, JSON.stringify(`${hex(A)} ${hex(B)}`.slice(0, 60) + '…')],
    ['AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQ1\n', 1, '"AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQ1"']
  ] as const) {
    it(`names line ${line} of a bad entry`, () => {
      assert.deepEqual(parseInfoHashList(text), { ok: false, line, error: `not an info hash (40 hex or 32 base32 characters): ${what}` })
    })
  }
})

describe('AccessList', () => {
  it('allowlist and denylist together are refused', () => {
    assert.throws(() => new AccessList({ allowlist: 'a', denylist: 'b' }), { name: 'TypeError', message: 'allowlist and denylist are mutually exclusive' })
  })

  it('a missing or bad file throws an AccessListError naming it (and the line)', () => {
    const missing = join(dir, 'nope.txt')
    assert.throws(() => new AccessList({ allowlist: missing }), (e: unknown) => e instanceof AccessListError && e.message === `access list ${missing}: ENOENT: no such file or directory, stat '${missing}'`)
    const bad = listFile(`${hex(A)}\nbad\n`)
    assert.throws(() => new AccessList({ denylist: bad, watch: false }), (e: unknown) => e instanceof AccessListError && e.line === 2 &&
      e.message === `access list ${bad}, line 2: not an info hash (40 hex or 32 base32 characters): "bad"`)
  })

  it('bad prefixes are refused', () => {
    assert.throws(() => new AccessList({ clientDeny: [''] }), { name: 'TypeError', message: 'clientDeny: a peer id prefix is 1 to 20 characters' })
    assert.throws(() => new AccessList({ clientAllow: ['x'.repeat(21)] }), { name: 'TypeError', message: 'clientAllow: a peer id prefix is 1 to 20 characters' })
  })

  it('check: allow mode, deny mode, prefixes', () => {
    const allow = new AccessList({ allowlist: listFile(hex(A)), clientDeny: ['-XL'], watch: false })
    assert.equal(allow.check(A), null)
    assert.equal(allow.check(B)?.message, TORRENT_REFUSED)
    assert.equal(allow.check(B)?.code, 'TORRENT_NOT_ALLOWED')
    assert.equal(allow.check(A, id20(1, '-XL0001-'))?.message, CLIENT_REFUSED)
    assert.equal(allow.check(A, id20(1, '-XL0001-'))?.code, 'CLIENT_NOT_ALLOWED')
    assert.equal(allow.check(A, id20(1, '-qB4250-')), null)
    const deny = new AccessList({ denylist: listFile(hex(A)), clientAllow: ['-qB', '-TR'], watch: false })
    assert.equal(deny.check(A)?.message, TORRENT_REFUSED)
    assert.equal(deny.check(B), null)
    assert.equal(deny.check(B, id20(1, '-TR3000-')), null)
    assert.equal(deny.check(B, id20(1, '-DE2000-'))?.message, CLIENT_REFUSED)
    const none = new AccessList({})
    assert.equal(none.mode, 'none')
    assert.equal(none.check(C, id20(9)), null)
  })

  it('a copy made from toData() (a worker thread\'s) checks exactly as the original; replaceHashes swaps its hashes', () => {
    const peers = [id20(1, '-XL0001-'), id20(1, '-qB4250-'), id20(1, '-TR3000-'), id20(1, '-DE2000-'), id20(9)]
    for (const original of [
      new AccessList({ allowlist: listFile(`${hex(A)}\n${hex(C)}`), clientDeny: ['-XL'], watch: false }),
      new AccessList({ denylist: listFile(hex(A)), clientAllow: ['-qB', '-TR'], watch: false }),
      new AccessList({ clientDeny: ['-DE'] })
    ]) {
      const data = original.toData()
      // Through a real structured clone, as postMessage sends it.
      const copy = AccessList.fromData(structuredClone(data))
      assert.deepEqual([copy.mode, copy.size, copy.file], [original.mode, original.size, undefined])
      for (const ih of [A, B, C]) {
        assert.equal(copy.allows(ih), original.allows(ih))
        for (const p of [undefined, ...peers]) assert.equal(copy.check(ih, p)?.code, original.check(ih, p)?.code)
      }
    }
    const copy = AccessList.fromData(new AccessList({ allowlist: listFile(hex(A)), watch: false }).toData())
    copy.replaceHashes(new AccessList({ allowlist: listFile(`${hex(B)}\n${hex(C)}`), watch: false }).toData().hashes)
    assert.deepEqual([copy.allows(A), copy.allows(B), copy.allows(C), copy.size], [false, true, true, 2])
  })

  it('a non-AccessList accessList option is a TypeError', async () => {
    await assert.rejects(startServer({ accessList: {} as unknown as AccessList }), { name: 'TypeError', message: 'accessList must be an AccessList' })
  })
})

async function withServer (opts: ServerOptions, fn: (pool: AgentPool, s: Awaited<ReturnType<typeof startServer>>) => Promise<void>): Promise<void> {
  const s = await startServer(opts)
  const pool = new AgentPool(s)
  try { await fn(pool, s) } finally {
    await pool.closeAll()
    await s.close()
    opts.accessList?.close()
  }
}

describe('on every transport', () => {
  for (const transport of TRANSPORTS) {
    it(`${transport}: allowlist — listed torrent served, others refused on announce and scrape`, async () => {
      // The WS agents' barrier scrape must pass too.
      const accessList = new AccessList({ allowlist: listFile(`${hex(A)}\n${hex(C)}\n${hex(BARRIER_HASH)}\n`), watch: false })
      await withServer({ accessList }, async (pool, s) => {
        const a = await pool.create(transport, id20(1, '-qB4250-'), 7001)
        const r = await a.announce(A, { event: 'started' })
        assert.equal(r.failure, undefined)
        assert.equal(r.incomplete, 1)
        assert.deepEqual(await a.announce(B, { event: 'started' }), { failure: TORRENT_REFUSED, peers: [] })
        assert.deepEqual(Object.keys(s.server.torrents), [hex(A)])
        assert.deepEqual(await a.scrape([A, C]), { files: new Map([[A, { complete: 0, incomplete: 1, downloaded: 0 }], [C, { complete: 0, incomplete: 0, downloaded: 0 }]]) })
        // One refused hash refuses the scrape (the documented choice).
        const refused = await a.scrape([A, B])
        assert.equal(refused.failure, TORRENT_REFUSED)
        assert.equal(refused.files.size, 0)
        assert.deepEqual(s.warnings.map(w => w.message), [TORRENT_REFUSED, TORRENT_REFUSED])
      })
    })

    it(`${transport}: denylist and client prefixes`, async () => {
      const accessList = new AccessList({ denylist: listFile(`# denied\n${hex(B)}\n`), clientDeny: ['-XL'], watch: false })
      await withServer({ accessList }, async (pool, s) => {
        const ok = await pool.create(transport, id20(2, '-TR3000-'), 7002)
        const bad = await pool.create(transport, id20(3, '-XL0012-'), 7003)
        assert.equal((await ok.announce(A, { event: 'started', left: 0 })).complete, 1)
        assert.deepEqual(await ok.announce(B, { event: 'started' }), { failure: TORRENT_REFUSED, peers: [] })
        assert.deepEqual(await bad.announce(A, { event: 'started' }), { failure: CLIENT_REFUSED, peers: [] })
        // The torrent list is checked first.
        assert.deepEqual(await bad.announce(B, { event: 'started' }), { failure: TORRENT_REFUSED, peers: [] })
        assert.equal(s.server.torrents[hex(A)].peers.size, 1)
        assert.equal((await ok.scrape([B])).failure, TORRENT_REFUSED)
        // Scrapes carry no client check (HTTP and UDP scrapes have no peer id).
        assert.deepEqual((await bad.scrape([A])).files.get(A), { complete: 1, incomplete: 0, downloaded: 0 })
      })
    })
  }

  it('clientAllow serves only the listed prefixes; the filter runs only for what the list allows', async () => {
    const accessList = new AccessList({ clientAllow: ['-qB', '-TR'] })
    const filtered: string[] = []
    await withServer({ accessList, filter: (infoHash, _p, cb) => { filtered.push(infoHash); cb(infoHash !== hex(C)) } }, async pool => {
      const qb = await pool.create('HTTP v4', id20(4, '-qB4250-'), 7004)
      const de = await pool.create('UDP v4', id20(5, '-DE2110-'), 7005)
      assert.equal((await qb.announce(A)).failure, undefined)
      assert.deepEqual(await de.announce(A), { failure: CLIENT_REFUSED, peers: [] })
      assert.deepEqual(await qb.announce(C), { failure: 'disallowed torrent', peers: [] })
      assert.deepEqual(filtered, [hex(A), hex(C)])
    })
  })
})

describe('reloads', () => {
  it('a rewritten file takes effect (fs.watch), the swarms stay, a full scrape lists only allowed torrents', async () => {
    const file = listFile(`${hex(C)}\n`)
    const accessList = new AccessList({ denylist: file })
    await withServer({ accessList }, async (pool, s) => {
      const a = await pool.create('HTTP v4', id20(6), 7006)
      assert.equal((await a.announce(A, { event: 'started' })).failure, undefined)
      assert.equal((await a.announce(B, { event: 'started' })).failure, undefined)
      const reloaded = nextEvent(accessList)
      writeFileSync(file, `${hex(C)}\n${hex(A)}\n`)
      assert.deepEqual(await reloaded, { event: 'reload', value: { file, count: 2, reason: 'change' } })
      assert.deepEqual(await a.announce(A), { failure: TORRENT_REFUSED, peers: [] })
      // The swarm of A is still there …
      assert.deepEqual(Object.keys(s.server.torrents).sort(), [hex(A), hex(B)].sort())
      // … but a full scrape leaves it out, over HTTP and WS.
      assert.deepEqual((await httpScrape(s.http4, [])).files.map(f => f.infoHash), [B])
      const w = await wsClient(s.ws)
      try {
        w.send({ action: 'scrape' })
        assert.deepEqual(await w.next(), { action: 'scrape', files: { [B]: { complete: 0, incomplete: 1, downloaded: 0 } } })
      } finally { await w.close() }
    })
  })

  it('a file replaced by rename takes effect; a corrupt one keeps the previous list and says which line', async () => {
    const file = listFile(`${hex(A)}\n`)
    const accessList = new AccessList({ allowlist: file })
    await withServer({ accessList }, async pool => {
      const a = await pool.create('UDP v6', id20(7), 7007)
      assert.deepEqual(await a.announce(B), { failure: TORRENT_REFUSED, peers: [] })
      const tmp = join(dir, 'next.tmp')
      writeFileSync(tmp, `${hex(A)}\n${hex(B)}\n`)
      let ev = nextEvent(accessList)
      renameSync(tmp, file)
      assert.deepEqual(await ev, { event: 'reload', value: { file, count: 2, reason: 'change' } })
      assert.equal((await a.announce(B)).failure, undefined)

      ev = nextEvent(accessList)
      writeFileSync(file, `${hex(A)}\n# fine so far\nnot-a-hash\n`)
      const { event, value } = await ev
      assert.equal(event, 'warning')
      assert.ok(value instanceof AccessListError)
      assert.equal(value.reason, 'change')
      assert.equal(value.line, 3)
      assert.equal(value.message, `access list ${file}, line 3: not an info hash (40 hex or 32 base32 characters): "not-a-hash"`)
      // The previous list (A and B) is still in force.
      assert.equal(accessList.size, 2)
      assert.equal((await a.announce(B)).failure, undefined)
      assert.deepEqual(await a.announce(C), { failure: TORRENT_REFUSED, peers: [] })

      // The file deleted: a failed reload too, the list stays.
      ev = nextEvent(accessList)
      rmSync(file)
      const gone = await ev
      assert.equal(gone.event, 'warning')
      assert.match((gone.value as Error).message, /ENOENT/)
      assert.equal((await a.announce(B)).failure, undefined)
      // reload() itself says whether it took.
      assert.equal(await accessList.reload(), false)
      writeFileSync(file, `${hex(C)}\n`)
      assert.equal(await accessList.reload(), true)
      assert.deepEqual(await a.announce(B), { failure: TORRENT_REFUSED, peers: [] })
    })
  })

  it('stats and other paths are not affected by the list', async () => {
    const accessList = new AccessList({ allowlist: listFile('') , watch: false })
    await withServer({ accessList }, async (_pool, s) => {
      assert.equal((await httpGet(s.http4, '/stats.json')).status, 200)
    })
  })
})
