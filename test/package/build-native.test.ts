// scripts/build-native.mjs, the package's install script: it never fails an install, and says in
// one line when the tracker will fall back to node:dgram.
import { it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const SCRIPT = 'scripts/build-native.mjs'

function run (env: Record<string, string>): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [SCRIPT], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

it('BITTORRENT_TRACKER_NATIVE=0 skips the build with one line, exit 0', () => {
  const r = run({ BITTORRENT_TRACKER_NATIVE: '0' })
  assert.equal(r.status, 0)
  assert.equal(r.stdout, 'bittorrent-tracker: native UDP addon not built, the UDP tracker will use node:dgram (BITTORRENT_TRACKER_NATIVE=0)\n')
  assert.equal(r.stderr, '')
})

it('a failing node-gyp gives one line naming the error, exit 0', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bt-gyp-'))
  try {
    // Stands in for node-gyp (npm passes its path in npm_config_node_gyp): fails like a missing compiler.
    const fake = join(dir, 'node-gyp.js')
    writeFileSync(fake, "console.error('gyp ERR! stack Error: not found: make'); process.exit(1)\n")
    const r = run({ npm_config_node_gyp: fake })
    assert.equal(r.status, 0)
    assert.equal(r.stdout, 'bittorrent-tracker: native UDP addon not built, the UDP tracker will use node:dgram (gyp ERR! stack Error: not found: make)\n')
  } finally { rmSync(dir, { recursive: true, force: true }) }
})
