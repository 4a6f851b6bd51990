// The README's self-contained examples (those that start their own tracker on port 0) run as
// written against the built package and exit 0.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { execFile } from 'node:child_process'

const ROOT = resolve('.')
const blocks = [...readFileSync(join(ROOT, 'README.md'), 'utf8').matchAll(/```js\n([\s\S]*?)```/g)]
  .map(m => m[1])
  .filter(code => code.includes("from 'bittorrent-tracker'") && code.includes('.listen(0'))
let dir: string

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'bt-readme-'))
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(ROOT, join(dir, 'node_modules', 'bittorrent-tracker'))
})
after(() => rmSync(dir, { recursive: true, force: true }))

test('the README has runnable examples', () => {
  assert.ok(blocks.length >= 2, `found ${blocks.length}`)
})

for (const [i, code] of blocks.entries()) {
  test(`README example ${i + 1} runs and exits 0`, async () => {
    const file = join(dir, `example-${i}.mjs`)
    writeFileSync(file, code)
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [file], { cwd: dir, timeout: 20_000 }, (err, stdout, stderr) => {
        if (err !== null) reject(new Error(`${err.message}\n${stderr}`))
        else resolve(stdout)
      })
    })
    assert.doesNotMatch(out, /error:|warning:/, out)
    assert.match(out, /update|complete|\{/)
  })
}
