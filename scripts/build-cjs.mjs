#!/usr/bin/env node
// CommonJS build, dist/index.cjs, so programs written as the seed README shows run unchanged:
//   const Client = require('bittorrent-tracker'); const Server = require('bittorrent-tracker').Server
// The ESM sources are bundled (ESM-only dependencies such as bittorrent-peerid included);
// `ws` and `prom-client` stay ordinary requires.
import { build } from 'esbuild'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

const entry = `
const m = require('./src/index.ts')
const Client = m.Client
Client.Client = Client
Client.Server = m.Server
Client.TrackerError = m.TrackerError
Client.ERRORS = m.ERRORS
Client.WorkerPool = m.WorkerPool
Client.default = Client
module.exports = Client
`

await build({
  stdin: { contents: entry, resolveDir: ROOT, sourcefile: 'cjs-entry.js', loader: 'js' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: ['node20'],
  external: ['ws', 'prom-client'],
  // No import.meta in CommonJS: src/server/native/loader.ts finds the package root, and
  // WorkerPool its worker entry, from __dirname.
  define: { 'import.meta.url': '""' },
  outfile: resolve(ROOT, 'dist/index.cjs'),
  logLevel: 'warning'
})
