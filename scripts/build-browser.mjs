#!/usr/bin/env node
// Browser bundle of the tracker client: dist/browser/bittorrent-tracker.js, one ES module whose
// default export (and `Client`) is the Client, plus `Peer`.
//
// Node-only modules are swapped for browser ones:
//   src/client/socket-impl.ts  (the `ws` package)  → src/client/socket-impl-browser.ts (global WebSocket)
//   'events' (Node built-in)                       → the npm `events` package (platform 'browser')
//   UDP trackers: src/client/client.ts never imports udp-tracker.ts (the Node entry src/index.ts
//   registers it), so in the bundle a `udp:` URL gets an "unsupported" warning.
// The build fails if anything Node-only is still reachable: a `node:` import, a Node built-in,
// `ws`, or udp-tracker.ts.
//
// Usage: node scripts/build-browser.mjs [--outfile path] [--minify] [--also ./module.js]
//   --also: re-export one more module from the bundle (the tests use it to check the refusal).
import { build } from 'esbuild'
import { builtinModules } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const CLIENT_DIR = join(ROOT, 'src', 'client')

function arg (name) {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const outfile = resolve(ROOT, arg('--outfile') ?? 'dist/browser/bittorrent-tracker.js')
const minify = process.argv.includes('--minify')
const also = arg('--also')

const NODE_BUILTINS = new Set(builtinModules.filter(m => !m.startsWith('_')))
// Node's `events` has a browser twin on npm, which esbuild picks for platform 'browser'.
NODE_BUILTINS.delete('events')

/** Problems found while resolving; the build fails if there are any. */
const problems = []

const browserSwaps = {
  name: 'browser-swaps',
  setup (b) {
    // The client's WebSocket implementation: `ws` in Node, the global WebSocket here.
    b.onResolve({ filter: /(^|\/)socket-impl\.js$/ }, args => {
      if (resolve(args.resolveDir) !== CLIENT_DIR) return undefined
      return { path: join(CLIENT_DIR, 'socket-impl-browser.ts') }
    })
    // Anything Node-only that is still imported is an error, reported with its importer.
    b.onResolve({ filter: /.*/ }, args => {
      const spec = args.path
      const bare = spec.split('/')[0]
      const where = args.importer !== '' ? relative(ROOT, args.importer) : '(entry)'
      if (spec.startsWith('node:') || NODE_BUILTINS.has(spec) || NODE_BUILTINS.has(bare)) {
        problems.push(`${where} imports the Node built-in '${spec}'`)
        return { path: spec, external: true }
      }
      if (spec === 'ws' || spec.startsWith('ws/')) {
        problems.push(`${where} imports the Node WebSocket package '${spec}'`)
        return { path: spec, external: true }
      }
      if (/(^|\/)udp-tracker\.js$/.test(spec)) {
        problems.push(`${where} imports '${spec}' (UDP trackers need node:dgram)`)
        return { path: spec, external: true }
      }
      return undefined
    })
  }
}

const entry = [
  "export { Client as default, Client } from './src/client/client.js'",
  "export { Peer } from './src/client/peer.js'",
  ...(also !== undefined ? [`export * from ${JSON.stringify(also)}`] : [])
].join('\n')

const result = await build({
  stdin: { contents: entry, resolveDir: ROOT, sourcefile: 'browser-entry.js', loader: 'js' },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  outfile,
  minify,
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
  plugins: [browserSwaps]
})

// Belt and braces: nothing external may be left in the output at all.
for (const [file, out] of Object.entries(result.metafile.outputs)) {
  for (const imp of out.imports ?? []) {
    if (imp.external) problems.push(`${relative(ROOT, file)} still imports '${imp.path}'`)
  }
}
if (problems.length > 0) {
  console.error('browser build failed: Node-only modules are reachable from the client:')
  for (const p of [...new Set(problems)]) console.error('  ' + p)
  process.exit(1)
}
const bytes = result.metafile.outputs[relative(process.cwd(), outfile)]?.bytes ??
  Object.values(result.metafile.outputs).find(o => o.entryPoint !== undefined || o.exports?.length > 0)?.bytes
console.log(`browser bundle: ${relative(ROOT, outfile)}${bytes !== undefined ? ` (${bytes} bytes)` : ''}`)
