// The filter adapter: an Error's message is the failure reason, whatever its text.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { Server } from '../../src/index.js'

test("cb(new Error(text)) refuses with exactly that text, even text the adapter uses internally", async () => {
  const server = new Server({ udp: false, ws: false, stats: false, filter: (_h, _p, cb) => cb(new Error('filter did not answer')) })
  const warnings: string[] = []
  server.on('warning', (e: Error) => warnings.push(e.message))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  try {
    const port = (server.http!.address() as AddressInfo).port
    const res = await fetch(`http://127.0.0.1:${port}/announce?info_hash=${'%aa'.repeat(20)}&peer_id=${'b'.repeat(20)}&port=6881`)
    assert.equal(Buffer.from(await res.arrayBuffer()).toString('latin1'), 'd14:failure reason21:filter did not answere')
    assert.deepEqual(warnings, ['filter did not answer'])
    assert.deepEqual(Object.keys(server.torrents), [])
  } finally {
    await new Promise<void>(resolve => server.close(() => resolve()))
  }
})
