import type { TrackerStats } from './peer-stats.js'

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml (s: string): string {
  return s.replace(/[&<>"']/g, c => ESCAPES[c])
}

/** The `/stats` page. Every value that comes from a peer (client names, versions) is escaped. */
export function renderStatsHtml (s: TrackerStats): string {
  let clients = ''
  for (const name of Object.keys(s.clients).sort()) {
    const versions = s.clients[name]
    for (const version of Object.keys(versions).sort()) {
      clients += `<li><strong>${escapeHtml(name)}</strong> ${escapeHtml(version)} : ${versions[version]}</li>\n`
    }
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tracker statistics</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body>
<h1>${s.torrents} torrents (${s.activeTorrents} active)</h1>
<h2>Connected Peers: ${s.peersAll}</h2>
<h3>Peers Seeding Only: ${s.peersSeederOnly}</h3>
<h3>Peers Leeching Only: ${s.peersLeecherOnly}</h3>
<h3>Peers Seeding &amp; Leeching: ${s.peersSeederAndLeecher}</h3>
<h3>IPv4 Peers: ${s.peersIPv4}</h3>
<h3>IPv6 Peers: ${s.peersIPv6}</h3>
<h3>Clients:</h3>
<ul>
${clients}</ul>
</body></html>
`
}
