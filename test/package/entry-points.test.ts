// The package as users load it: `require` (as the seed README writes its examples) and `import`,
// from a directory where `bittorrent-tracker` resolves to this repository's built package.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { execFile } from 'node:child_process'

const ROOT = resolve('.')
let dir: string

before(() => {
  for (const f of ['dist/index.js', 'dist/index.cjs', 'dist/browser/bittorrent-tracker.js']) {
    assert.ok(existsSync(join(ROOT, f)), `${f} missing: run npm run build`)
  }
  dir = mkdtempSync(join(tmpdir(), 'bt-entry-'))
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(ROOT, join(dir, 'node_modules', 'bittorrent-tracker'))
})
after(() => rmSync(dir, { recursive: true, force: true }))

function run (file: string, source: string): Promise<string> {
  writeFileSync(join(dir, file), source)
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--no-deprecation', file], { cwd: dir, timeout: 20_000 }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${file} failed: ${err.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

// The seed's server and client examples, with the seed's own (21-byte) infoHash: it must not
// crash the program; the client reports it through 'error'.
const SEED_STYLE = (load: string) => `${load}
var server = new Server({ udp: true, http: true, ws: true, stats: true,
  filter: function (infoHash, params, cb) { cb(infoHash === '${'ab'.repeat(20)}') } })
server.on('error', function (err) { console.log('server error ' + err.message) })
server.on('warning', function () {})
server.on('start', function (addr) { console.log('start ' + addr) })
server.on('listening', function () {
  var port = server.http.address().port
  var bad = new Client({ infoHash: Buffer.from('012345678901234567890'), peerId: Buffer.from('01234567890123456789'),
    announce: ['http://127.0.0.1:' + port + '/announce'], port: 6881 })
  bad.on('error', function (err) { console.log('client error ' + err.message) })
  var client = new Client({ infoHash: '${'ab'.repeat(20)}', peerId: Buffer.from('-XX0001-123456789012'),
    announce: ['udp://127.0.0.1:' + port], port: 6881 })
  client.on('warning', function (err) { console.log('warning ' + err.message) })
  client.on('update', function (data) {
    console.log('update ' + data.complete + ' ' + data.incomplete + ' ' + Object.keys(server.torrents).length)
    client.destroy(); bad.destroy(); server.close()
  })
  client.start()
})
server.listen(0, '127.0.0.1')
`

const EXPECTED = [
  'client error Option `infoHash` must be a 40-character hex string or 20 bytes',
  'start 127.0.0.1:6881',
  'update 0 1 1'
]

test('require(): the default export is Client, with .Server (the seed README form)', async () => {
  const out = await run('seed.cjs', SEED_STYLE("var Client = require('bittorrent-tracker')\nvar Server = require('bittorrent-tracker').Server"))
  assert.deepEqual(out.trim().split('\n'), EXPECTED)
})

test('import: default Client and named Server', async () => {
  const out = await run('seed.mjs', SEED_STYLE("import Client, { Server } from 'bittorrent-tracker'"))
  assert.deepEqual(out.trim().split('\n'), EXPECTED)
})
