/**
 * docs/configuration.md, generated from the options table (scripts/gen-config-docs.mjs writes
 * it; test/config/docs.test.ts fails while the file is stale).
 */
import { ALL, envName } from './options.js'
import type { OptionSpec } from './options.js'

function cell (s: string): string {
  return s.replace(/\|/g, '\\|')
}

function defaultText (o: OptionSpec): string {
  if (o.secret === true && o.default === undefined) return 'random'
  if (o.default === undefined) return 'unset'
  if (Array.isArray(o.default)) return o.default.length === 0 ? '`[]`' : `\`${JSON.stringify(o.default)}\``
  return `\`${JSON.stringify(o.default)}\``
}

function flagsText (o: OptionSpec): string {
  const flags = [...o.flags, ...(o.negation !== undefined ? [o.negation] : []), ...Object.keys(o.presets ?? {}).map(f => `${f} (= \`${String(o.presets![f])}\`)`)]
  return flags.map(f => f.includes('(') ? f.replace(/^(\S+)/, '`$1`') : `\`${f}\``).join(' ')
}

export function configurationMarkdown (): string {
  const rows = ALL.map(o => {
    const key = o.scope === 'file' ? `\`${o.key}\`` : `— (${o.scope === 'cli' ? 'command line only' : 'command line, environment'})`
    const env = o.scope === 'cli' ? '—' : `\`${envName(o.key)}\``
    return `| ${key} | ${flagsText(o)} | ${env} | ${cell(o.expects)} | ${defaultText(o)} | ${cell(o.doc)} |`
  })
  return `<!-- Generated from src/config/options.ts by scripts/gen-config-docs.mjs; do not edit by hand. -->
# Configuration

Every option of the \`bittorrent-tracker\` command can come from four places; each overrides the
one before it:

1. the default;
2. a configuration file named by \`--config FILE\` (or \`BITTORRENT_TRACKER_CONFIG\`): TOML when
   the name ends in \`.toml\`, JSON when it ends in \`.json\`; a flat table whose keys are the
   **file key** column below. Relative paths in it (\`allowlist\`, \`denylist\`) are taken from
   the file's directory;
3. environment variables: \`BITTORRENT_TRACKER_\` followed by the file key in UPPER_SNAKE_CASE
   (\`httpHostname\` → \`BITTORRENT_TRACKER_HTTP_HOSTNAME\`). Booleans are \`true\`/\`false\`
   (also \`1\`/\`0\`, \`yes\`/\`no\`, \`on\`/\`off\`), lists are comma-separated;
4. command-line flags. As in the seed, naming any of \`--http\`, \`--udp\`, \`--ws\` starts only
   the transports named, whatever the file or environment say. A list flag may be repeated.

An unknown file key, an unknown \`BITTORRENT_TRACKER_*\` variable, a value of the wrong type or
out of range, an unknown level, an unreadable or unparsable file (the message names the file,
the key and, for a syntax error, the line and column), both \`allowlist\` and \`denylist\`, or no
transport left enabled: the command prints \`bittorrent-tracker: <what>\` on stderr and exits 2
before binding anything.

\`--print-config\` prints the effective configuration as TOML (\`--print-config=json\`: JSON) and
exits 0; \`udpSecret\` is shown as \`"(redacted)"\`, unset options are left out.

| file key | flags | environment | value | default | what |
|---|---|---|---|---|---|
${rows.join('\n')}

## Example

\`\`\`toml
port = 6969
httpHostname = "0.0.0.0"
ws = false
interval = 900000
trustProxy = true
logLevel = "warn"
allowlist = "torrents.txt"   # next to this file
clientDeny = ["-XL", "-SD"]
\`\`\`

## Access lists

\`allowlist\` / \`denylist\`: one info hash per line, 40 hex characters or 32 base32 characters;
\`#\` starts a comment; blank lines are ignored. An announce for a torrent not allowed fails on
every transport with the failure reason \`torrent not allowed on this tracker\`; a scrape that
names one fails as a whole with that reason (UDP scrape answers are positional, so leaving one
out is not possible there; all transports behave alike); a full scrape lists only allowed
torrents. \`clientAllow\` / \`clientDeny\`: peer id prefixes, matched byte for byte, on announce
only (HTTP and UDP scrapes carry no peer id); a refused client gets
\`client not allowed on this tracker\`.

The file is re-read when it changes (the directory is watched, so editors' and \`mv\`'s replace
works; changes are debounced) and on \`SIGHUP\`. The new list is parsed completely and then swapped
in at once: requests are never paused and swarms are left as they are. A file that fails to read
or parse keeps the previous list in force and logs an error naming the file and line. When the
path is a symlink, replacing the link is seen; editing the file it points to (in another
directory) is seen on \`SIGHUP\` only.

## Logs

The command writes JSON lines (pino): \`level\` (a label), \`time\` (ISO 8601), \`pid\`,
\`hostname\`, \`msg\`, and fields per line (\`transport\`, \`address\`, \`port\` on start-up;
\`code\` on warnings, the catalog code of what a client did wrong; \`file\`, \`count\` on access
list reloads). \`error\` and \`fatal\` lines go to stderr, the others to stdout.
\`--log-level\` picks the least severe level written; \`-q\` is \`error\`, \`-s\` is \`silent\`.
`
}
