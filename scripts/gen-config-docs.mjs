// Writes docs/configuration.md from the options table (run `npm run build` first).
import { mkdirSync, writeFileSync } from 'node:fs'
import { configurationMarkdown } from '../dist/config/docs.js'

mkdirSync(new URL('../docs/', import.meta.url), { recursive: true })
writeFileSync(new URL('../docs/configuration.md', import.meta.url), configurationMarkdown())
console.log('docs/configuration.md written')
