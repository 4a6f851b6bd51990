/** Public entry (Node): the tracker client (default export) and the tracker server. */
import { Client, registerTrackerClass } from './client/client.js'
import { UdpTracker } from './client/udp-tracker.js'

// UDP needs node:dgram, so client.ts leaves it out; this Node entry plugs it in.
registerTrackerClass('udp:', UdpTracker)

export default Client
export { Client }
export type {
  ClientAnnounceOpts, ClientOptions, IdInput, ScrapeCallback, ScrapeData, ScrapeResults, StaticScrapeOptions, UpdateData
} from './client/client.js'
export type { ClientTimeouts, TrackerWarning } from './client/common.js'
export { Server, StateFileWarning } from './server/server.js'
export { AccessList, AccessListError } from './server/access/access-list.js'
export type { AccessListOptions } from './server/access/access-list.js'
export type { Filter, PrivateOptions, ServerOptions, TlsOptions, TorrentView, UdpBackendOption, UdpSocket } from './server/server.js'
export type { RateLimit, StrikeLimit } from './server/frontends/abuse.js'
export { nativeStatus, listenFd } from './server/native/loader.js'
export type { NativeStatus } from './server/native/loader.js'
export { WorkerPool, workerCount } from './server/workers/pool.js'
export type { WorkerPoolOptions, WorkerServerOptions } from './server/workers/pool.js'
export type { RequestParams } from './server/frontends/context.js'
export type { TrackerStats } from './server/stats/peer-stats.js'
export { OptionError, TrackerError, ERRORS } from './errors.js'
export type { ErrorCode } from './errors.js'
