// Keeps the layering of DESIGN.md true: protocol ← server/core ← server/frontends ← server.ts ← cli,
// browser-safe codecs, and a client that never reaches into the server.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, resolve, dirname } from 'node:path'
import { builtinModules } from 'node:module'

const SRC = resolve('src')

function files (dir: string): string[] {
  return readdirSync(dir).flatMap(n => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** Import specifiers of a file, resolved to src-relative paths for relative ones. */
function imports (file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const out: string[] = []
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/g)) {
    const spec = m[1]
    out.push(spec.startsWith('.') ? relative(SRC, resolve(dirname(file), spec)) : spec)
  }
  return out
}

const all = files(SRC).map(f => ({ path: relative(SRC, f), deps: imports(f) }))

/** Node built-ins, bare or `node:`; `events` has a browser twin on npm that the bundle uses. */
const NODE_ONLY = new Set(builtinModules.filter(m => m !== 'events'))
const isNodeOnly = (d: string): boolean => d.startsWith('node:') || NODE_ONLY.has(d.split('/')[0])
/** The client modules that may be Node-only: the browser bundle leaves out or swaps exactly these. */
const CLIENT_NODE_ONLY = new Set(['client/udp-tracker.ts', 'client/socket-impl.ts'])

test('the layering rules hold for every source file', () => {
  const broken: string[] = []
  for (const { path, deps } of all) {
    for (const d of deps) {
      const rule =
        path.startsWith('protocol/') && (d.startsWith('node:') || d.startsWith('server/') || d.startsWith('client/') || d.startsWith('cli/'))
          ? 'protocol/ is pure and browser-safe'
          : path.startsWith('server/core/') && d.startsWith('server/frontends/')
            ? 'core never touches frontends'
            : path.startsWith('server/store/') && (d.startsWith('server/core/') || d.startsWith('server/frontends/'))
              ? 'stores sit below the core'
              : path.startsWith('client/') && d.startsWith('server/')
                ? 'the client never imports the server'
                : path.startsWith('client/') && d === 'node:dgram' && path !== 'client/udp-tracker.ts'
                  ? 'only client/udp-tracker.ts may use node:dgram'
                  : path.startsWith('client/') && !CLIENT_NODE_ONLY.has(path) && (isNodeOnly(d) || d === 'ws' || d === 'client/udp-tracker.js')
                    ? 'the client is browser-safe: only udp-tracker.ts (left out of the bundle) and socket-impl.ts (swapped) may reach Node'
                  : path.startsWith('cli/') && !(d === 'index.js' || d === 'constants.js' || d.startsWith('cli/') || d.startsWith('config/') || d.startsWith('node:') || d === 'pino')
                    ? 'the CLI uses the public API (and the named constants), the config module and pino only'
                    : path.startsWith('config/') && !(d === 'constants.js' || d === 'errors.js' || d.startsWith('config/') || d.startsWith('node:') || d === 'smol-toml')
                      ? 'config/ reads options only: constants, errors, node:* and smol-toml, never the server'
                      : undefined
      if (rule !== undefined) broken.push(`${path} imports ${d}: ${rule}`)
    }
  }
  assert.deepEqual(broken, [])
})

test('the rules see the imports (the scanner is not blind)', () => {
  const udp = all.find(f => f.path === 'client/udp-tracker.ts')
  assert.ok(udp !== undefined && udp.deps.includes('node:dgram') && udp.deps.includes('node:dns'))
  assert.ok(all.find(f => f.path === 'client/socket-impl.ts')?.deps.includes('ws'))
  assert.ok(all.find(f => f.path === 'client/socket-pool.ts')?.deps.includes('client/socket-impl.js'))
  assert.ok(all.find(f => f.path === 'client/client.ts')?.deps.includes('events'))
  assert.ok(isNodeOnly('node:dns') && isNodeOnly('dns') && isNodeOnly('fs/promises') && !isNodeOnly('events') && !isNodeOnly('ws'))
  const server = all.find(f => f.path === 'server/server.ts')
  assert.ok(server !== undefined)
  assert.ok(server.deps.includes('node:dgram'))
  assert.ok(server.deps.includes('server/core/tracker.js'))
  const bin = all.find(f => f.path === 'cli/bin.ts')
  assert.ok(bin !== undefined)
  assert.ok(bin.deps.includes('config/load.js'))
  const load = all.find(f => f.path === 'config/load.ts')
  assert.ok(load !== undefined)
  assert.ok(load.deps.includes('smol-toml'))
})
