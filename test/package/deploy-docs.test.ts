/**
 * docs/deploy/bittorrent-tracker.service stays true: systemd itself accepts it, its command lines
 * are valid flags, and the command it runs survives `systemctl reload` (SIGHUP) and stops cleanly
 * on its KillSignal. (docs/deploy/nginx.conf is checked by test/interop/nginx.test.ts.)
 */
import { after, before, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../src/config/load.js'
import { BIN, CliProcess, killAllCli } from '../helpers/cli-process.js'
import { httpAnnounce, id20 } from '../helpers/tracker-clients.js'

const UNIT = readFileSync(fileURLToPath(new URL('../../docs/deploy/bittorrent-tracker.service', import.meta.url)), 'utf8')
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze'

/** Values of `Key=` lines; commented (`#Key=`) ones too when `commented`. */
function values (key: string, commented = false): string[] {
  const re = new RegExp(`^${commented ? '#' : ''}${key}=(.*)$`, 'gm')
  return [...UNIT.matchAll(re)].map(m => m[1])
}

/** The flags of an ExecStart line (no quoting is used in the unit). */
function flagsOf (execStart: string): string[] {
  const [cmd, ...args] = execStart.split(/\s+/)
  assert.equal(cmd, '/usr/bin/bittorrent-tracker')
  return args
}

let dir: string
before(() => { dir = mkdtempSync(join(tmpdir(), 'tracker-unit-')) })
after(() => {
  killAllCli()
  rmSync(dir, { recursive: true, force: true })
})

it('systemd-analyze verify accepts the unit without a single warning', () => {
  assert.ok(existsSync(SYSTEMD_ANALYZE), `${SYSTEMD_ANALYZE} is missing (Debian package systemd)`)
  assert.ok(existsSync(BIN), 'run npm run build first')
  // The unit names the installed command; verify needs an executable that exists.
  const file = join(dir, 'bittorrent-tracker.service')
  writeFileSync(file, UNIT.replaceAll('/usr/bin/bittorrent-tracker', BIN))
  const r = spawnSync(SYSTEMD_ANALYZE, ['verify', file], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(`${r.stdout}${r.stderr}`, '')
  // The check can fail: an unknown key is reported.
  writeFileSync(file, UNIT.replaceAll('/usr/bin/bittorrent-tracker', BIN).replace('ProtectClock=yes', 'ProtectClok=yes'))
  const bad = spawnSync(SYSTEMD_ANALYZE, ['verify', file], { encoding: 'utf8', timeout: 30_000 })
  assert.match(`${bad.stdout}${bad.stderr}`, /Unknown key 'ProtectClok'/)
})

it('reload is SIGHUP, stop is SIGTERM with a bound, and both command lines are valid flags', () => {
  assert.deepEqual(values('ExecReload'), ['/bin/kill -HUP $MAINPID'])
  assert.deepEqual(values('KillSignal'), ['SIGTERM'])
  assert.deepEqual(values('TimeoutStopSec'), ['10'])
  const [main] = values('ExecStart')
  const p = loadConfig(flagsOf(main)).config
  assert.equal(p.httpHostname, '127.0.0.1')
  assert.deepEqual(p.trustProxyFrom, ['127.0.0.1'])
  const [direct] = values('ExecStart', true)
  const t = loadConfig(flagsOf(direct)).config
  assert.equal(t.port, 443)
  assert.equal(t.cert, '/etc/bittorrent-tracker/fullchain.pem')
})

it('the unit\'s command (on a free port) keeps serving through SIGHUP and exits 0 on SIGTERM', async () => {
  const args = flagsOf(values('ExecStart')[0]).map(a => a === '8000' ? '0' : a === '0.0.0.0' ? '127.0.0.1' : a === '::' ? '::1' : a)
  // --quiet prints nothing: drop it here to learn the port.
  const cli = new CliProcess(args.filter(a => a !== '--quiet'))
  const port = await cli.port('http')
  const base = `http://127.0.0.1:${port}`
  assert.equal((await httpAnnounce(base, { infoHash: id20(1), peerId: id20(2), port: 7400 })).failure, undefined)
  cli.signal('SIGHUP')
  cli.signal('SIGHUP')
  const r = await httpAnnounce(base, { infoHash: id20(1), peerId: id20(3), port: 7401 })
  assert.equal(r.failure, undefined)
  assert.equal(r.incomplete, 2, 'the swarm survived the reloads')
  assert.deepEqual(await cli.stop('SIGTERM'), { code: 0, signal: null })
  assert.equal(cli.stderr, '')
})
