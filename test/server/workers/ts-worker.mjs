// Worker threads do not inherit the test runner's TypeScript loader on Node 20: register tsx,
// then load the TypeScript worker named in workerData.entry.
import { workerData } from 'node:worker_threads'
import { register } from 'tsx/esm/api'

register()
await import(workerData.entry)
