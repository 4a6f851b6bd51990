/** The HTTP tracker codec: pure, browser-safe; used by the server frontend and the client. */

export * from './query.js'
export * from './announce.js'
export * from './scrape.js'
