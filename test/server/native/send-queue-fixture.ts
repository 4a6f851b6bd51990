/**
 * Run by udp-batch.test.ts inside a private network namespace whose loopback has a slow tbf
 * qdisc: packets wait in the qdisc while counting against the sender's SO_SNDBUF, so a burst of
 * replies meets EAGAIN for real. A native socket with a small send buffer sends a burst of
 * 2048-byte datagrams (more than its ring holds) to a receiver; prints what each side counted.
 * Usage: node --import tsx send-queue-fixture.ts <count>
 */
import { nativeAddon, STAT_NAMES } from '../../../src/server/native/loader.js'

const count = Number(process.argv[2])
const addon = nativeAddon()
if (addon === undefined) throw new Error('native addon not available')
const { BATCH, SLOT_SIZE, META_SIZE } = addon

const seen = new Set<number>()
let last = -1
let inOrder = true
const receiver = new addon.UdpSocket(4, '127.0.0.1', 0, { recvBufferSize: 64 << 20 }, function (n) {
  const meta = new Uint32Array(this.recvMeta)
  const data = new DataView(this.recvData)
  for (let i = 0; i < n; i++) {
    if (meta[i * (META_SIZE / 4)] !== SLOT_SIZE) continue
    const seq = data.getUint32(i * SLOT_SIZE)
    if (seq <= last) inOrder = false
    last = seq
    seen.add(seq)
  }
  return 0
})
const port = receiver.address()[1]
const sender = new addon.UdpSocket(4, '127.0.0.1', 0, { sendBufferSize: 4096 }, () => 0)
const meta = new Uint32Array(sender.sendMeta)
const bytes = new Uint8Array(sender.sendMeta)
const data = new DataView(sender.sendData)
for (let s = 0; s < BATCH; s++) {
  const o = s * META_SIZE
  meta[o / 4] = SLOT_SIZE
  new Uint16Array(sender.sendMeta, o + 4, 1)[0] = port
  bytes[o + 6] = 4
  bytes.set([127, 0, 0, 1], o + 8)
}
// The whole burst in one turn: nothing is read or flushed by the loop in between.
for (let next = 0; next < count;) {
  const n = Math.min(BATCH, count - next)
  for (let s = 0; s < n; s++) data.setUint32(s * SLOT_SIZE, next + s)
  sender.send(n)
  next += n
}
const stats = (h: { stats: () => number[] }): Record<string, number> =>
  Object.fromEntries(STAT_NAMES.map((name, i) => [name, h.stats()[i]]))
const afterBurst = stats(sender)
// Bounded wait for the queue to drain through the qdisc.
const started = Date.now()
const timer = setInterval(() => {
  const s = stats(sender)
  if ((s.queueLength === 0 && seen.size >= s.sent) || Date.now() - started > 20_000) {
    clearInterval(timer)
    console.log(JSON.stringify({ afterBurst, sender: s, receiverStats: stats(receiver), received: seen.size, inOrder, queueMax: addon.QUEUE_MAX }))
    sender.close()
    receiver.close()
  }
}, 50)
