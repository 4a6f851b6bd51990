/**
 * The `--help` text, generated from the options table (src/config/options.ts): the seed's lines
 * first and word for word, then the options added since.
 */
import { ALL } from '../config/options.js'

const WIDTH = 34

function line (flags: string, text: string): string {
  const left = `    ${flags.startsWith('--') ? '    ' : ''}${flags}`
  return `${left.length > WIDTH - 2 ? `${left}  ` : left.padEnd(WIDTH)}${text}`
}

function optionLines (): string[] {
  const out: string[] = []
  for (const o of ALL) {
    if (o.flags.length > 0) out.push(line(`${o.flags.join(', ')}${o.arg !== undefined ? ` ${o.arg}` : ''}`, o.help))
    for (const [flags, text] of o.extraHelp ?? []) out.push(line(flags, text))
  }
  return out
}

export const HELP = `  bittorrent-tracker - Start a bittorrent tracker server

  Usage:
    bittorrent-tracker [OPTIONS]

  If no --http, --udp, or --ws option is supplied, all tracker types will be started.
  Options come from, each overriding the one before: defaults, the --config file, environment
  variables BITTORRENT_TRACKER_<OPTION> (e.g. BITTORRENT_TRACKER_PORT), then these flags.

  Options:
${optionLines().join('\n')}

  Please report bugs!  https://github.com/feross/bittorrent-tracker/issues
`
