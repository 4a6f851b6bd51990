export * from './codec.js'
