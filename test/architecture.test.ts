// Keeps the layering of DESIGN.md true: protocol ← server/core ← server/frontends ← server.ts ← cli,
// browser-safe codecs, and a client that never reaches into the server.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, resolve, dirname } from 'node:path'

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
                  : path.startsWith('cli/') && !(d === 'index.js' || d === 'constants.js' || d.startsWith('cli/') || d.startsWith('node:'))
                    ? 'the CLI uses the public API (and the named defaults) only'
                    : undefined
      if (rule !== undefined) broken.push(`${path} imports ${d}: ${rule}`)
    }
  }
  assert.deepEqual(broken, [])
})

test('the rules see the imports (the scanner is not blind)', () => {
  const server = all.find(f => f.path === 'server/server.ts')
  assert.ok(server !== undefined)
  assert.ok(server.deps.includes('node:dgram'))
  assert.ok(server.deps.includes('server/core/tracker.js'))
})
