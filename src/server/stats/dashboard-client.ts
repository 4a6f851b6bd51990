/**
 * The /stats page's script, in the browser. render.ts inlines this function's source
 * (`dashboardMain.toString()`), so it must not use anything outside its own body but browser
 * globals. It polls stats.json (next to the page, with the page's `?token=`), and writes every
 * value with textContent — client names and versions come from peers and are never parsed as
 * HTML. `?refresh=ms` changes the polling period (default 5 s, at least 500 ms).
 */
export function dashboardMain (): void {
  type Json = any
  const SVG = 'http://www.w3.org/2000/svg'
  const W = 600
  const H = 200
  const PAD_L = 56
  const PAD_B = 18
  const params = new URLSearchParams(location.search)
  const token = params.get('token')
  const refresh = Math.max(500, Number(params.get('refresh')) > 0 ? Number(params.get('refresh')) : 5000)
  const url = 'stats.json' + (token !== null ? '?token=' + encodeURIComponent(token) : '')
  const RATE_SERIES = ['http.announce', 'http.scrape', 'udp.connect', 'udp.announce', 'udp.scrape', 'ws.announce', 'ws.scrape', 'errors']
  const SWARM_SERIES = ['peers', 'torrents']

  const byId = (id: string): HTMLElement => document.getElementById(id) as HTMLElement
  const get = (o: Json, path: string): Json => path.split('.').reduce((v: Json, k: string) => v?.[k], o)
  const mib = (b: number): string => (b / 1048576).toFixed(1) + ' MiB'
  const dur = (s: number): string => {
    const d = Math.floor(s / 86400)
    const h = Math.floor(s % 86400 / 3600)
    const m = Math.floor(s % 3600 / 60)
    return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m` : `${m}m ${s % 60}s`
  }
  const fmt = (v: Json, f: string | undefined): string =>
    typeof v !== 'number' ? '' : f === 'mib' ? mib(v) : f === 'dur' ? dur(v) : f === 'ms' ? v + ' ms' : String(v)

  /** Replaces a tbody's rows; every cell is text. `cls[i]` is the i-th cell's class. */
  const rows = (tbody: HTMLElement, data: Array<Array<string | number>>, cls: string[], header: boolean): void => {
    const frag = document.createDocumentFragment()
    for (const r of data) {
      const tr = document.createElement('tr')
      r.forEach((v, i) => {
        const cell = document.createElement(header && i === 0 ? 'th' : 'td')
        if (header && i === 0) cell.setAttribute('scope', 'row')
        if (cls[i] !== '') cell.className = cls[i]
        cell.textContent = String(v)
        tr.appendChild(cell)
      })
      frag.appendChild(tr)
    }
    tbody.replaceChildren(frag)
  }

  const el = (name: string, attrs: Record<string, string | number>, text?: string): SVGElement => {
    const e = document.createElementNS(SVG, name)
    for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k]))
    if (text !== undefined) e.textContent = text
    return e
  }

  /** Draws `names` of `hist` as lines in svg #id, keeps its <title>, and describes it in <desc>. */
  const chart = (id: string, hist: Json, names: string[], unit: string): void => {
    const svg = byId(id)
    const n: number = hist.t.length
    let max = 0
    for (const k of names) for (const v of hist.series[k]) if (v > max) max = v
    const top = max > 0 ? niceCeil(max) : 1
    // Until an hour of samples exists, the x axis spans the samples there are.
    const slots = Math.max(n - 1, 1)
    const spanS = Math.round(slots * (hist.sampleSeconds as number))
    for (const c of Array.from(svg.children)) if (c.tagName !== 'title' && c.tagName !== 'desc') c.remove()
    for (let g = 0; g <= 4; g++) {
      const y = (H - PAD_B) - g * (H - PAD_B - 8) / 4
      svg.appendChild(el('line', { class: 'grid', x1: PAD_L, x2: W, y1: y, y2: y }))
      svg.appendChild(el('text', { x: PAD_L - 4, y: y + 4, 'text-anchor': 'end' }, short(top * g / 4)))
    }
    svg.appendChild(el('text', { x: PAD_L, y: H - 4 }, spanS < 120 ? `−${spanS} s` : `−${Math.round(spanS / 60)} min`))
    svg.appendChild(el('text', { x: W, y: H - 4, 'text-anchor': 'end' }, 'now'))
    const parts: string[] = []
    names.forEach((k, i) => {
      const vals: number[] = hist.series[k]
      if (n === 0) return
      let d = ''
      for (let j = 0; j < n; j++) {
        // Newest sample at the right edge.
        const x = W - (n - 1 - j) * (W - PAD_L) / slots
        const y = (H - PAD_B) - vals[j] / top * (H - PAD_B - 8)
        d += (j === 0 ? 'M' : 'L') + x.toFixed(1) + ' ' + y.toFixed(1)
      }
      svg.appendChild(el('path', { class: 's' + String(i), d }))
      let peak = 0
      for (const v of vals) if (v > peak) peak = v
      parts.push(`${k}: now ${vals[n - 1]}${unit}, peak ${peak}${unit}`)
    })
    const desc = svg.querySelector('desc')
    if (desc !== null) desc.textContent = n === 0 ? 'No samples yet.' : `${n} samples. ` + parts.join('; ') + '.'
  }
  const niceCeil = (v: number): number => {
    const p = Math.pow(10, Math.floor(Math.log10(v)))
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p
    return 10 * p
  }
  const short = (v: number): string => v >= 1e6 ? (v / 1e6).toFixed(1) + 'M' : v >= 1e3 ? (v / 1e3).toFixed(1) + 'k' : String(Math.round(v * 100) / 100)

  const legend = (id: string, names: string[], label: string): void => {
    const fig = byId(id)
    const frag = document.createDocumentFragment()
    frag.appendChild(document.createTextNode(label))
    names.forEach((k, i) => {
      const item = document.createElement('span')
      item.className = 'item'
      const key = document.createElement('span')
      key.className = 'key k' + String(i)
      key.setAttribute('aria-hidden', 'true')
      item.appendChild(key)
      item.appendChild(document.createTextNode(k))
      frag.appendChild(document.createTextNode(' '))
      frag.appendChild(item)
    })
    fig.replaceChildren(frag)
  }
  legend('legend-requests', RATE_SERIES, 'Requests per second:')
  legend('legend-swarms', SWARM_SERIES, 'Count:')

  const render = (d: Json): void => {
    for (const e of Array.from(document.querySelectorAll<HTMLElement>('[data-k]'))) {
      const text = fmt(get(d, e.dataset.k as string), e.dataset.f)
      if (e.textContent !== text) e.textContent = text
    }
    const req: Array<Array<string | number>> = []
    for (const p of Object.keys(d.requests)) {
      for (const a of Object.keys(d.requests[p])) {
        const r = d.requests[p][a]
        req.push([p, a, r.ok, r.error, r.dropped, r.rate])
      }
    }
    rows(byId('requests'), req, ['', 'l', '', '', '', ''], true)
    rows(byId('top'), d.topTorrents.map((t: Json) => [t.infoHash, t.peers, t.complete, t.incomplete, t.downloaded]), ['hash', '', '', '', ''], false)
    const cl: Array<Array<string | number>> = []
    for (const name of Object.keys(d.clients).sort()) {
      for (const v of Object.keys(d.clients[name]).sort()) cl.push([name, v, d.clients[name][v]])
    }
    rows(byId('clients'), cl, ['', 'l', ''], false)
    chart('chart-requests', d.history, RATE_SERIES, '/s')
    chart('chart-swarms', d.history, SWARM_SERIES, '')
    byId('status').textContent = 'Updated ' + new Date(d.time).toLocaleTimeString() + ', every ' + String(refresh / 1000) + ' s'
    document.documentElement.dataset.updated = String(d.time)
  }

  const poll = async (): Promise<void> => {
    try {
      const r = await fetch(url, { cache: 'no-store', headers: { accept: 'application/json' } })
      if (!r.ok) throw new Error('HTTP ' + String(r.status))
      render(await r.json())
    } catch (err) {
      byId('status').textContent = 'Update failed (' + String((err as Error).message) + '); retrying'
    }
    setTimeout(() => { void poll() }, refresh)
  }
  void poll()
}
