import { STATS_TOP_TORRENTS } from '../../constants.js'
import type { StatsExtras } from './collector.js'
import { dashboardMain } from './dashboard-client.js'
import type { TrackerStats } from './peer-stats.js'

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml (s: string): string {
  return s.replace(/[&<>"']/g, c => ESCAPES[c])
}

/** The whole /stats.json document: the reference's fields, then ours. */
export type StatsDocument = TrackerStats & StatsExtras

/** Totals shown as cards: [label, /stats.json field]. The page script updates the same fields. */
const TOTALS: ReadonlyArray<readonly [string, string]> = [
  ['Torrents', 'torrents'], ['Active torrents', 'activeTorrents'], ['Peers', 'peersAll'],
  ['Seeding only', 'peersSeederOnly'], ['Leeching only', 'peersLeecherOnly'], ['Seeding & leeching', 'peersSeederAndLeecher'],
  ['IPv4 peers', 'peersIPv4'], ['IPv6 peers', 'peersIPv6'], ['Seeders (all swarms)', 'swarmPeers.seeders'],
  ['Leechers (all swarms)', 'swarmPeers.leechers'], ['WebSocket connections', 'wsConnections']
]

const CSS = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--mute:#57606a;--card:#f4f6f8;--line:#d0d7de;
--c0:#0969da;--c1:#8250df;--c2:#1a7f37;--c3:#bc4c00;--c4:#cf222e;--c5:#4d2d00;--c6:#0a3069;--c7:#d1242f}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--mute:#9198a1;--card:#161b22;--line:#30363d;
--c0:#4493f8;--c1:#ab7df8;--c2:#3fb950;--c3:#db6d28;--c4:#f85149;--c5:#d29922;--c6:#79c0ff;--c7:#ff7b72}}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,sans-serif;background:var(--bg);color:var(--fg)}
header,main{max-width:1100px;margin:0 auto;padding:0 16px}h1{font-size:1.5rem;margin:16px 0 4px}
h2{font-size:1.15rem;margin:24px 0 8px}h3{font-size:1rem;margin:16px 0 4px}#status{color:var(--mute);margin:0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px;margin:0}
.cards div{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:8px 10px}
.cards dt{color:var(--mute);font-size:.85rem}.cards dd{margin:0;font-size:1.3rem;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
caption{text-align:left;color:var(--mute);padding:4px 0}th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:right}
th:first-child,td:first-child,.l{text-align:left}td.hash{font-family:ui-monospace,monospace;font-size:.8rem;word-break:break-all}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:16px}
figure{margin:0}svg{width:100%;height:auto;display:block;background:var(--card);border:1px solid var(--line);border-radius:6px}
svg text{fill:var(--mute);font-size:11px}svg path{fill:none;stroke-width:1.5}svg .grid{stroke:var(--line);stroke-width:1}
figcaption{font-size:.85rem;color:var(--mute)}.item{white-space:nowrap}.key{display:inline-block;width:10px;height:3px;vertical-align:middle;margin:0 4px 0 10px}
${[0, 1, 2, 3, 4, 5, 6, 7].map(i => `.s${i}{stroke:var(--c${i})}.k${i}{background:var(--c${i})}`).join('')}
a{color:var(--c0)}:focus-visible{outline:2px solid var(--c0);outline-offset:2px}
@media (max-width:600px){th,td{padding:4px 5px}td.hash{min-width:21ch;font-size:.75rem}svg text{font-size:20px}}
`

/**
 * The /stats dashboard: one page with its CSS and script inline (nothing from elsewhere). It is
 * complete without JavaScript — the numbers of this moment, server-rendered and escaped — and
 * the script then polls /stats.json, draws the charts and updates every value as text.
 */
export function renderStatsHtml (s: StatsDocument): string {
  const totals = TOTALS.map(([label, key]) =>
    `<div><dt>${escapeHtml(label)}</dt><dd data-k="${key}">${num(get(s, key))}</dd></div>`).join('')
  let requests = ''
  for (const p of Object.keys(s.requests)) {
    for (const a of Object.keys(s.requests[p])) {
      const r = s.requests[p][a]
      requests += `<tr><th scope="row">${p}</th><td class="l">${a}</td><td>${r.ok}</td><td>${r.error}</td><td>${r.dropped}</td><td>${r.rate}</td></tr>`
    }
  }
  const top = s.topTorrents.map(t =>
    `<tr><td class="hash">${escapeHtml(t.infoHash)}</td><td>${t.peers}</td><td>${t.complete}</td><td>${t.incomplete}</td><td>${t.downloaded}</td></tr>`).join('')
  let clients = ''
  for (const name of Object.keys(s.clients).sort()) {
    const versions = s.clients[name]
    for (const version of Object.keys(versions).sort()) {
      clients += `<tr><td>${escapeHtml(name)}</td><td class="l">${escapeHtml(version)}</td><td>${versions[version]}</td></tr>`
    }
  }
  const h = s.health
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tracker statistics</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>${CSS}</style></head>
<body>
<header><h1>Tracker statistics</h1><p id="status">Snapshot of ${new Date(s.time).toISOString()}</p></header>
<main>
<section aria-labelledby="h-totals"><h2 id="h-totals">Totals</h2>
<dl class="cards" id="totals" aria-live="polite">${totals}</dl></section>
<section aria-labelledby="h-req"><h2 id="h-req">Requests</h2>
<div class="scroll" tabindex="0" role="region" aria-labelledby="h-req"><table><caption>Requests since start by protocol and action; rate in requests per second over the last sample</caption>
<thead><tr><th scope="col">Protocol</th><th scope="col" class="l">Action</th><th scope="col">OK</th><th scope="col">Error</th><th scope="col">Dropped</th><th scope="col">Rate /s</th></tr></thead>
<tbody id="requests">${requests}</tbody></table></div>
<h3>The last hour</h3>
<div class="charts">
<figure><svg id="chart-requests" viewBox="0 0 600 200" role="img" aria-labelledby="chart-requests-t chart-requests-d"><title id="chart-requests-t">Requests per second, last hour</title><desc id="chart-requests-d">No samples yet.</desc></svg>
<figcaption id="legend-requests">Requests per second by protocol and action.</figcaption></figure>
<figure><svg id="chart-swarms" viewBox="0 0 600 200" role="img" aria-labelledby="chart-swarms-t chart-swarms-d"><title id="chart-swarms-t">Peers and torrents, last hour</title><desc id="chart-swarms-d">No samples yet.</desc></svg>
<figcaption id="legend-swarms">Peer entries and active torrents.</figcaption></figure>
</div></section>
<section aria-labelledby="h-top"><h2 id="h-top">Top torrents by peers</h2>
<div class="scroll" tabindex="0" role="region" aria-labelledby="h-top"><table><caption>The ${STATS_TOP_TORRENTS} largest swarms by peers, ranked at every history sample</caption>
<thead><tr><th scope="col">Info hash</th><th scope="col">Peers</th><th scope="col">Seeders</th><th scope="col">Leechers</th><th scope="col">Downloads</th></tr></thead>
<tbody id="top">${top}</tbody></table></div></section>
<section aria-labelledby="h-clients"><h2 id="h-clients">Clients</h2>
<div class="scroll" tabindex="0" role="region" aria-labelledby="h-clients"><table><caption>Peers by client name and version (from peer ids)</caption>
<thead><tr><th scope="col">Client</th><th scope="col" class="l">Version</th><th scope="col">Peers</th></tr></thead>
<tbody id="clients">${clients}</tbody></table></div></section>
<section aria-labelledby="h-health"><h2 id="h-health">Server health</h2>
<dl class="cards" id="health">
<div><dt>Uptime</dt><dd data-k="health.uptimeSeconds" data-f="dur">${duration(h.uptimeSeconds)}</dd></div>
<div><dt>Memory (RSS)</dt><dd data-k="health.rssBytes" data-f="mib">${mib(h.rssBytes)}</dd></div>
<div><dt>Heap used</dt><dd data-k="health.heapUsedBytes" data-f="mib">${mib(h.heapUsedBytes)}</dd></div>
<div><dt>Event-loop lag p99</dt><dd data-k="health.eventLoopLagMs.p99" data-f="ms">${h.eventLoopLagMs.p99} ms</dd></div>
<div><dt>Event-loop lag max</dt><dd data-k="health.eventLoopLagMs.max" data-f="ms">${h.eventLoopLagMs.max} ms</dd></div>
<div><dt>Workers</dt><dd data-k="health.workers">${h.workers}</dd></div>
</dl></section>
</main>
<script type="module">${NAME_SHIM}(${dashboardMain.toString()})()</script>
</body></html>
`
}

/**
 * Under tsx (the tests run the TypeScript sources) functions are compiled with esbuild's
 * keepNames, whose `__name(fn, "name")` calls end up in `dashboardMain.toString()`; this no-op
 * stands in for esbuild's helper. The tsc build needs none.
 */
const NAME_SHIM = 'var __name=function(f){return f};'

function get (o: unknown, path: string): unknown {
  let v: unknown = o
  for (const k of path.split('.')) v = (v as Record<string, unknown> | undefined)?.[k]
  return v
}

function num (v: unknown): string {
  return typeof v === 'number' ? String(v) : ''
}

/** Same formats as the page script (dashboard-client.ts). */
function mib (bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`
}

function duration (s: number): string {
  const d = Math.floor(s / 86400)
  const h = Math.floor(s % 86400 / 3600)
  const m = Math.floor(s % 3600 / 60)
  return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m` : `${m}m ${s % 60}s`
}
