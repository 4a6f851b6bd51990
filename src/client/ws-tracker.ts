/**
 * WebTorrent WebSocket tracker connection (SPEC §4). Skeleton: filled in below.
 */
import type { AnnounceOpts, ScrapeOpts, TrackerConnection, TrackerOwner } from './tracker.js'

export class WebSocketTracker implements TrackerConnection {
  readonly announceUrl: string
  private readonly owner: TrackerOwner

  constructor (owner: TrackerOwner, announceUrl: string) {
    this.owner = owner
    this.announceUrl = announceUrl
  }

  announce (_opts: AnnounceOpts): void {}
  scrape (_opts?: ScrapeOpts): void {}
  setInterval (_ms?: number): void {}
  destroy (cb?: (err?: Error | null) => void): void {
    if (cb !== undefined) queueMicrotask(() => cb(null))
  }
}
