// Child process of test/client/hostile-tracker.test.ts: a Client on the trackers named in argv[2]
// (JSON: { announce: string[], waitFor: string[] }), destroyed once a warning matching each of
// `waitFor` has arrived and the parent has written a line to stdin (its trackers are mid-request). Prints one JSON line — the events emitted after destroy() and the timers
// and sockets our client code created that are still alive — then must exit by itself.
import { createHook } from 'node:async_hooks'
import Client from '../../src/index.js'

const TRACKED = new Set(['Timeout', 'UDPWRAP', 'TCPWRAP', 'GETADDRINFOREQWRAP', 'UDPSENDWRAP'])
const OURS = /[/\\]src[/\\]client[/\\]/
const live = new Map<number, string>()
/** Off once destroy has called back: the child's own report timer is not the client's. */
let tracking = true
createHook({
  init (id, type) {
    if (!tracking) return
    const stack = new Error().stack ?? ''
    if (TRACKED.has(type) && OURS.test(stack)) live.set(id, process.env.CHILD_DEBUG === '1' ? type + stack : type)
  },
  destroy (id) { live.delete(id) }
}).enable()

const { announce, waitFor } = JSON.parse(process.argv[2]) as { announce: string[], waitFor: string[] }
const pending = waitFor.map(s => new RegExp(s))
const after: string[] = []
let destroyed = false
let parentReady = false
process.stdin.once('data', () => {
  parentReady = true
  process.stdin.destroy()
  if (pending.length === 0) destroy()
})
const c = new Client({
  infoHash: 'cc'.repeat(20),
  peerId: 'dd'.repeat(20),
  port: 6881,
  announce,
  timeouts: { request: 10_000, udp: 50, udpRetransmits: 8, retryMin: 50, retryMax: 100, destroyGrace: 200 }
})
for (const e of ['update', 'peer', 'scrape', 'warning', 'error']) {
  c.on(e, (v: unknown) => {
    if (destroyed) after.push(`${e}: ${v instanceof Error ? v.message : String(v)}`)
    else if (e === 'warning') {
      const i = pending.findIndex(r => r.test((v as Error).message))
      if (i >= 0) pending.splice(i, 1)
      if (pending.length === 0 && parentReady) destroy()
    }
  })
}
function destroy (): void {
  if (destroyed) return
  destroyed = true
  c.destroy(() => {
    tracking = false
    // A moment for the handles closed by destroy to run their destroy hooks.
    setTimeout(() => {
      process.stdout.write(JSON.stringify({ after, live: [...live.values()].sort() }) + '\n')
    }, 100)
  })
}
c.start()
c.scrape()
