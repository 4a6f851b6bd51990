// docs/configuration.md is generated from the options table and must not go stale.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config/load.js'
import { configurationMarkdown } from '../../src/config/docs.js'
import { ALL, envName } from '../../src/config/options.js'
import { HELP } from '../../src/cli/args.js'

const DOC = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8')

test('docs/configuration.md is what the table generates (run scripts/gen-config-docs.mjs after a change)', () => {
  assert.equal(DOC, configurationMarkdown())
})

test('every option has its own row naming its key, flags and environment variable, and a help line', () => {
  const rows = DOC.split('\n').filter(l => l.startsWith('| ') && !l.startsWith('| file key'))
  assert.equal(rows.length, ALL.length)
  ALL.forEach((o, i) => {
    const row = rows[i]
    assert.ok(o.doc.length > 10 && row.includes(o.doc.replace(/\|/g, '\\|')), `${o.key}: doc`)
    if (o.scope === 'file') assert.ok(row.startsWith(`| \`${o.key}\` |`), `${o.key}: key`)
    if (o.scope !== 'cli') assert.ok(row.includes(`\`${envName(o.key)}\``), `${o.key}: environment`)
    for (const f of [...o.flags, ...(o.negation !== undefined ? [o.negation] : []), ...Object.keys(o.presets ?? {})]) {
      assert.ok(row.includes(`\`${f}\``), `${o.key}: flag ${f}`)
      assert.ok(HELP.includes(f), `--help lacks ${f}`)
    }
  })
})

test("the README's `--help` block is the real help text", () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const m = /\$ bittorrent-tracker --help\n([\s\S]*?)```/.exec(readme)
  assert.ok(m !== null, 'README has a --help block')
  assert.equal(m[1], HELP)
})

test('the TOML examples of the README and docs/configuration.md are valid configurations', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const examples = [...readme.matchAll(/```toml\n([\s\S]*?)```/g), ...DOC.matchAll(/```toml\n([\s\S]*?)```/g)].map(m => m[1])
  assert.equal(examples.length, 2)
  const dir = mkdtempSync(join(tmpdir(), 'bt-doc-example-'))
  try {
    for (const text of examples) {
      const f = join(dir, 'tracker.toml')
      writeFileSync(f, text)
      const c = loadConfig(['--config', f]).config
      assert.equal(c.allowlist, join(dir, 'torrents.txt'))
      assert.ok(c.clientDeny.includes('-XL'))
      assert.equal(c.logLevel, 'warn')
    }
  } finally { rmSync(dir, { recursive: true, force: true }) }
})
