/**
 * An announce interval with random spread: `interval` seconds ± `fraction` of it, uniformly, as
 * whole seconds and never below 1. Clients that announced together then drift apart.
 */
export function jitterInterval (interval: number, fraction: number): number {
  if (fraction <= 0) return interval
  const spread = Math.floor(interval * fraction)
  if (spread === 0) return interval
  const v = interval - spread + Math.floor(Math.random() * (2 * spread + 1))
  return v < 1 ? 1 : v
}
