declare module 'bittorrent-peerid' {
  /** Parses a peer id (hex string or bytes) into a client name and version. */
  export default function peerid (peerId: string | Uint8Array): { client: string, version?: string }
}
