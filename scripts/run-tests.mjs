#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's test runner (Node 20 has no glob in --test).
// Usage: node scripts/run-tests.mjs [substring filter...]
import { readdirSync, statSync, readFileSync, rmSync, mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { spawn } from 'node:child_process'

function walk (dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(p, out)
    else if (name.endsWith('.test.ts')) out.push(p)
  }
  return out
}

const filters = process.argv.slice(2)
const files = walk('test', []).filter(f => filters.length === 0 || filters.some(s => f.includes(s)))
if (files.length === 0) {
  console.error('no test files matched')
  process.exit(1)
}
// The UDP server tests run twice: on the native batch addon, then on node:dgram (the fallback
// when the addon cannot be built), which BITTORRENT_TRACKER_NATIVE=0 selects.
const BOTH_UDP_BACKENDS = ['test/server/server.test.ts', 'test/server/hostile.test.ts', 'test/server/workers/steer.test.ts']
const dgramRun = files.filter(f => BOTH_UDP_BACKENDS.some(b => f.endsWith(b)))

// Each run's failures also go to a file, repeated at the very end: CI keeps only the tail.
const failDir = mkdtempSync(join(tmpdir(), 'tracker-test-failures-'))
const failFiles = []

function run (list, env) {
  const failFile = join(failDir, `run-${failFiles.length}.txt`)
  failFiles.push(failFile)
  const reporters = [
    '--test-reporter=tap', '--test-reporter-destination=stdout',
    '--test-reporter=./scripts/failure-reporter.mjs', `--test-reporter-destination=${failFile}`
  ]
  return new Promise(resolve => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...reporters, ...list], { stdio: 'inherit', env })
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)))
  })
}

function failuresOf (file) {
  try { return readFileSync(file, 'utf8') } catch { return '' }
}

let code = await run(files, process.env)
if (dgramRun.length > 0 && process.env.BITTORRENT_TRACKER_NATIVE !== '0') {
  console.log(`\n# the UDP server tests again on node:dgram (BITTORRENT_TRACKER_NATIVE=0): ${dgramRun.join(' ')}`)
  const again = await run(dgramRun, { ...process.env, BITTORRENT_TRACKER_NATIVE: '0' })
  if (code === 0) code = again
}
const failed = failFiles.map(failuresOf).join('')
rmSync(failDir, { recursive: true, force: true })
if (failed !== '') console.log(`\n# FAILURES (repeated from above)\n${failed}`)
else if (code !== 0) console.log(`\n# the test runner exited with ${code} but reported no failing test`)
process.exit(code)
