#!/usr/bin/env node
// Builds the optional batched-UDP addon (native/, binding.gyp) with node-gyp at install time.
// Never fails the install: without the addon the UDP tracker uses node:dgram, so a failure is
// one line saying so (BITTORRENT_TRACKER_NATIVE_VERBOSE=1 shows node-gyp's output).
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const FALLBACK = 'bittorrent-tracker: native UDP addon not built, the UDP tracker will use node:dgram'

function skip (reason) {
  console.log(`${FALLBACK} (${reason})`)
  process.exit(0)
}

if (process.env.BITTORRENT_TRACKER_NATIVE === '0') skip('BITTORRENT_TRACKER_NATIVE=0')
if (process.platform !== 'linux') skip(`recvmmsg/sendmmsg need Linux, this is ${process.platform}`)

// node-gyp ships inside npm: npm tells install scripts where (npm_config_node_gyp); otherwise
// look beside the npm that runs us, then beside node.
const prefix = dirname(dirname(process.execPath))
const candidates = [
  process.env.npm_config_node_gyp,
  process.env.npm_execpath && join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
].filter(p => typeof p === 'string' && p !== '' && existsSync(p))
if (candidates.length === 0) skip('node-gyp not found')

const args = [candidates[0], 'rebuild']
// Headers installed with node (Debian's nodejs, most distributions): no download needed.
if (process.env.npm_config_nodedir === undefined && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${prefix}`)
}
const verbose = process.env.BITTORRENT_TRACKER_NATIVE_VERBOSE === '1'
const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', stdio: verbose ? 'inherit' : 'pipe' })
if (r.status !== 0 || !existsSync(join(ROOT, 'build', 'Release', 'udp_batch.node'))) {
  const out = `${r.stderr ?? ''}\n${r.stdout ?? ''}`
  const first = out.split('\n').find(l => /error|not found|ERR!/i.test(l)) ?? (r.error?.message ?? `node-gyp exited with ${r.status}`)
  skip(first.trim().slice(0, 200))
}
console.log('bittorrent-tracker: native UDP addon built (recvmmsg/sendmmsg)')
