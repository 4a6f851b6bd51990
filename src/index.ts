/** Public entry: the tracker server (the `Client` default export comes with the client). */
export { Server } from './server/server.js'
export type { Filter, ServerOptions, TorrentView } from './server/server.js'
export type { RequestParams } from './server/frontends/context.js'
export type { TrackerStats } from './server/stats/peer-stats.js'
export { TrackerError, ERRORS } from './errors.js'
export type { ErrorCode } from './errors.js'
