#!/usr/bin/env node
// Conformance audit: runs the reference package's own tape test files (webtorrent/bittorrent-tracker,
// `test/*.js`) against this package, against the reference npm package (devDependency
// `bittorrent-tracker-reference`), and crossed (their client with our server, ours with theirs).
//
// Usage (after `npm run build`):
//   node scripts/reference-suite.mjs --tests <dir> [--sides ours,ref,ref-client,ref-server]
//                                    [--timeout ms] [file.js ...]
// <dir> is the `test/` directory of a checkout of the reference repository, obtained by you: this
// script downloads nothing but the tests' npm dependencies, and writes only under
// tmp/reference-suite/ (gitignored). Nothing of the reference is copied into the repository.
//
// Per side, tmp/reference-suite/<side>/ holds index.js, server.js and lib/common.js shims (so the
// tests' `../index.js`, `../server.js`, `../lib/common.js` resolve to the chosen Client and
// Server) and test/ with the test files, adapted only in the harness:
// - `tape` is wrapped so each test has a timeout (one hung test does not hide the rest) and a
//   process still alive 5 s after the last test is reported;
// - test/common.js: where the client is ours, the WebSocket offer mock hooks our client's
//   private offer maker instead of the reference's; where only the server is ours, the mock's fake
//   offers get the protocol's shape; where the server is ours, `getSwarm` (a reference server
//   method, not in the seed README) is mapped onto `server.torrents`.
// Our package is loaded by name (`bittorrent-tracker`, a symlink to this checkout), so through
// package.json `exports`. Each file runs in its own process, in a loopback-only network namespace
// when possible (root + unshare), else directly.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const WORK = join(ROOT, 'tmp', 'reference-suite')
const REF_PKG = join(ROOT, 'node_modules', 'bittorrent-tracker-reference')
/** Test dependencies not already in node_modules (versions the reference's package.json names). */
const TEST_DEPS = ['tape@5.10.2', 'webtorrent-fixtures@2.0.3', 'magnet-uri@^7.0.8', 'undici@^6.16.1']
const SIDES = {
  ours: { client: 'ours', server: 'ours' },
  ref: { client: 'ref', server: 'ref' },
  'ref-client': { client: 'ref', server: 'ours' },
  'ref-server': { client: 'ours', server: 'ref' }
}
const PKG = { ours: 'bittorrent-tracker', ref: 'bittorrent-tracker-reference' }
/** A test file's process is killed after this, whatever its tests do. */
const FILE_LIMIT_MS = 300_000

function parseArgs (argv) {
  const o = { tests: undefined, sides: Object.keys(SIDES), timeout: 20_000, files: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--tests') o.tests = argv[++i]
    else if (a === '--sides') o.sides = argv[++i].split(',')
    else if (a === '--timeout') o.timeout = Number(argv[++i])
    else o.files.push(a)
  }
  if (o.tests === undefined || !existsSync(join(o.tests, 'common.js'))) {
    console.error('usage: node scripts/reference-suite.mjs --tests <reference checkout>/test [--sides ...] [--timeout ms] [file.js ...]')
    process.exit(2)
  }
  for (const s of o.sides) if (!(s in SIDES)) { console.error(`unknown side ${s}`); process.exit(2) }
  return o
}

// ---- harness pieces (ours, not the reference's) ---------------------------------------------

const TAPE_WRAPPER = `import tape from 'tape'
const MS = Number(process.env.REFERENCE_SUITE_TIMEOUT_MS || 20000)
const withTimeout = (run) => (name, opts, fn) => {
  if (typeof opts === 'function') { fn = opts; opts = {} }
  return run(name, { timeout: MS, ...opts }, fn)
}
const test = withTimeout(tape)
test.only = withTimeout(tape.only)
tape.onFinish(() => {
  setTimeout(() => {
    console.log('# PROCESS DID NOT EXIT: handles left open: ' + process._getActiveHandles().map(h => h.constructor.name).join(','))
    process.exit(3)
  }, 5000).unref()
})
export default test
`

// Our client's private offer maker, given fake offers (the reference's mock does the same to its own).
const OUR_OFFER_MOCK = `export const mockWebsocketTracker = client => {
  const tracker = client.trackers[0]
  tracker.webrtc = {}
  tracker.makeOffers = count => new Promise(resolve => process.nextTick(() => resolve(
    Array.from({ length: count }, (_, i) => ({ offerId: 'fakeoffer' + String(i).padStart(11, '0'), sdp: 'fake_offer_' + i, pending: undefined })))))
}

`

// The reference client's private offer maker, given fake offers of the protocol's shape: the
// reference's own mock makes `{ fake_offer }` entries (no `offer`, no `offer_id`), which its server
// relays blindly and ours refuses as malformed.
const REF_SHAPED_OFFER_MOCK = `export const mockWebsocketTracker = client => {
  client._trackers[0]._generateOffers = (numwant, cb) => process.nextTick(() => cb(
    Array.from({ length: numwant }, (_, i) => ({ offer: { type: 'offer', sdp: 'fake_offer_' + i }, offer_id: 'fakeoffer' + String(i).padStart(11, '0') }))))
}

`

const OUR_GET_SWARM = `server.getSwarm = (infoHash, cb) => {
      const view = () => server.torrents[infoHash]
      const swarm = view() && {
        get complete () { return view().complete },
        get incomplete () { return view().incomplete },
        peers: { get length () { return view().peers.size }, peek: key => view().peers.get(key) }
      }
      process.nextTick(() => cb(null, swarm))
    }
    `

function adaptCommon (text, side) {
  let out = text
  const mock = side.client === 'ours' ? OUR_OFFER_MOCK : side.server === 'ours' ? REF_SHAPED_OFFER_MOCK : undefined
  if (mock !== undefined) {
    const re = /export const mockWebsocketTracker[\s\S]*?(?=export default)/
    if (!re.test(out)) throw new Error('test/common.js: mockWebsocketTracker not found')
    out = out.replace(re, mock)
  }
  if (side.server === 'ours') {
    const anchor = 'cb(server, announceUrl)'
    if (!out.includes(anchor)) throw new Error('test/common.js: createServer callback not found')
    out = out.replace(anchor, OUR_GET_SWARM + anchor)
  }
  return out
}

// ---- layout ---------------------------------------------------------------------------------

function setup (o) {
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) throw new Error('run `npm run build` first')
  if (!existsSync(REF_PKG)) throw new Error('node_modules/bittorrent-tracker-reference missing: run `npm install`')
  mkdirSync(WORK, { recursive: true })
  const pkg = join(WORK, 'package.json')
  if (!existsSync(pkg)) writeFileSync(pkg, JSON.stringify({ name: 'reference-suite', private: true, type: 'module' }, null, 2) + '\n')
  if (!existsSync(join(WORK, 'node_modules', 'tape'))) {
    const r = spawnSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', WORK, ...TEST_DEPS], { stdio: 'inherit' })
    if (r.status !== 0) throw new Error('npm install of the test dependencies failed')
  }
  const self = join(WORK, 'node_modules', 'bittorrent-tracker')
  rmSync(self, { force: true, recursive: false })
  symlinkSync(ROOT, self, 'dir')

  const commonLib = join(REF_PKG, 'lib', 'common.js')
  for (const name of o.sides) {
    const side = SIDES[name]
    const dir = join(WORK, name)
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(join(dir, 'test'), { recursive: true })
    mkdirSync(join(dir, 'lib'), { recursive: true })
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n')
    writeFileSync(join(dir, 'index.js'),
      `import Client from '${PKG[side.client]}'\nimport { Server } from '${PKG[side.server]}'\n` +
      'export default Client\nexport { Client, Server }\n')
    writeFileSync(join(dir, 'server.js'), "import { Server } from './index.js'\nexport default Server\n")
    // The tests' helper for building query strings (and querystring.js's subject): the reference's.
    writeFileSync(join(dir, 'lib', 'common.js'), `export * from '${commonLib}'\nexport { default } from '${commonLib}'\n`)
    for (const f of readdirSync(o.tests).filter(f => f.endsWith('.js'))) {
      let text = readFileSync(join(o.tests, f), 'utf8').replace(/from 'tape'/g, "from './tape-timeout.js'")
      if (f === 'common.js') text = adaptCommon(text, side)
      writeFileSync(join(dir, 'test', f), text)
    }
    writeFileSync(join(dir, 'test', 'tape-timeout.js'), TAPE_WRAPPER)
  }
}

// ---- run ------------------------------------------------------------------------------------

const NETNS = process.platform === 'linux' && process.getuid?.() === 0 &&
  spawnSync('unshare', ['--net', 'sh', '-c', 'ip link set lo up'], { stdio: 'ignore', timeout: 5_000 }).status === 0

function runFile (dir, file, o) {
  const path = join(dir, 'test', file)
  const [cmd, args] = NETNS
    ? ['unshare', ['--net', 'sh', '-c', `ip link set lo up && exec "${process.execPath}" "${path}"`]]
    : [process.execPath, [path]]
  return new Promise(resolve => {
    const child = spawn(cmd, args, { cwd: dir, env: { ...process.env, REFERENCE_SUITE_TIMEOUT_MS: String(o.timeout) }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', d => { out += d })
    child.stderr.on('data', d => { out += d })
    // Bounded: a file whose tests all time out still ends.
    const killer = setTimeout(() => { out += '\n# KILLED: file time limit\n'; child.kill('SIGKILL') }, FILE_LIMIT_MS)
    child.on('close', code => { clearTimeout(killer); resolve({ code, out }) })
  })
}

/** Test cases of a tape log: passed when none of its assertions failed and the run got past it. */
function caseResults (tap) {
  const cases = new Map()
  let last
  for (const l of tap.split('\n')) {
    if (l.startsWith('# ') && !/^# (tests|pass|fail|ok|PROCESS|KILLED)\b/.test(l)) { last = l.slice(2); cases.set(last, true) } else if (l.startsWith('not ok ') && last !== undefined) cases.set(last, false)
  }
  // A run that did not get to tape's plan line died in (or hung after) its last case.
  if (!/^1\.\.\d+$/m.test(tap) && last !== undefined) cases.set(last, false)
  return cases
}

const declaredNames = (text) => Array.from(text.matchAll(/^test\('((?:[^'\\]|\\.)*)'/gm), m => m[1])

/**
 * One side, one file: the whole file, then every case that failed or was not reached (a crash or
 * a hung case stops tape) alone, with `test.only`, so one failure does not hide or cause another.
 */
async function runSide (o, name, file) {
  const dir = join(WORK, name)
  const text = readFileSync(join(dir, 'test', file), 'utf8')
  const names = declaredNames(text)
  const whole = await runFile(dir, file, o)
  const logDir = join(WORK, 'out', name)
  mkdirSync(logDir, { recursive: true })
  writeFileSync(join(logDir, file + '.tap'), whole.out)
  const first = caseResults(whole.out)
  const result = { declared: names.length, wholePassed: 0, passed: 0, failed: [], isolated: [] }
  for (const [i, n] of names.entries()) {
    const ok = first.get(n)
    if (ok === true) { result.wholePassed++; result.passed++; continue }
    const single = `zz-only-${i}-${file}`
    writeFileSync(join(dir, 'test', single), text.replace(`test('${n}'`, `test.only('${n}'`))
    const alone = await runFile(dir, single, o)
    writeFileSync(join(logDir, `${file}.only-${i}.tap`), alone.out)
    rmSync(join(dir, 'test', single))
    if (caseResults(alone.out).get(n) === true) { result.passed++; result.isolated.push(n) } else result.failed.push(n)
  }
  return result
}

async function main () {
  const o = parseArgs(process.argv.slice(2))
  setup(o)
  const files = (o.files.length > 0 ? o.files : readdirSync(o.tests).filter(f => f.endsWith('.js') && f !== 'common.js')).sort()
  console.log(`reference suite: ${files.length} files, sides ${o.sides.join(', ')}${NETNS ? ' (loopback-only netns)' : ''}`)
  console.log('cases passed / declared per side (whole-file run; failed or unreached cases re-run alone)')
  const table = []
  for (const file of files) {
    const row = { file }
    for (const name of o.sides) row[name] = await runSide(o, name, file)
    table.push(row)
    console.log(file.padEnd(26) + o.sides.map(s => `${s} ${row[s].passed}/${row[s].declared}`.padEnd(18)).join(''))
  }
  console.log('\nper side (logs: tmp/reference-suite/out/<side>/<file>[.only-<n>].tap):')
  for (const row of table) {
    for (const s of o.sides) {
      const r = row[s]
      if (r.failed.length > 0) console.log(`  ${s} ${row.file} FAILED: ${r.failed.join(' | ')}`)
      if (r.isolated.length > 0) console.log(`  ${s} ${row.file} passed only alone: ${r.isolated.join(' | ')}`)
    }
  }
}

main().catch(err => { console.error(err.message); process.exit(1) })
