// Rewrites the README's `$ bittorrent-tracker --help` block from the built CLI's HELP text, so
// the README never drifts from the options table (test/config/docs.test.ts checks it).
import { readFileSync, writeFileSync } from 'node:fs'
const { HELP } = await import(new URL('../dist/cli/args.js', import.meta.url))
const file = new URL('../README.md', import.meta.url)
const readme = readFileSync(file, 'utf8')
const re = /(\$ bittorrent-tracker --help\n)[\s\S]*?```/
if (!re.test(readme)) { console.error('README has no --help block'); process.exit(1) }
writeFileSync(file, readme.replace(re, (_, head) => head + HELP + '```'))
