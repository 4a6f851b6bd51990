/**
 * Limits, defaults and protocol constants — the one place they are defined.
 * Each says its unit and why it has the value it has.
 */

// ---- Announce semantics (BEP 3, SPEC §5) ----

/** Default announce interval told to HTTP/UDP clients, in ms (the seed's CLI default: 10 minutes). */
export const DEFAULT_ANNOUNCE_INTERVAL_MS = 10 * 60 * 1000
/** WebSocket peers are told to re-announce this many times as often (reference: interval / 5 → 2 min). */
export const WS_INTERVAL_DIVISOR = 5
/** `min interval` sent to HTTP clients, as a fraction of `interval` (clients must not announce faster). */
export const MIN_INTERVAL_DIVISOR = 2
/** A peer silent for this many announce intervals is dropped (SPEC §5: "about two intervals"). */
export const PEER_EXPIRY_INTERVALS = 2
/** Peers returned when the client does not say how many it wants (BEP 3 convention, reference: 50). */
export const DEFAULT_NUMWANT = 50
/** Most peers returned by one announce over HTTP or WS: bounds response size and CPU per request. */
export const MAX_NUMWANT = 200
/**
 * Most peers in one UDP announce reply, per address family, so the reply fits one unfragmented
 * datagram: 20 header bytes + 74 × 6 = 464 (IPv4) and 20 + 74 × 18 = 1352 (IPv6) both stay under
 * the 1472/1452-byte payload of a 1500-byte MTU path, and a reply never exceeds 1400 bytes.
 */
export const MAX_UDP_PEERS = 74
/** How often the sweeper refreshes "now" and expires peers, in ms. */
export const SWEEP_INTERVAL_MS = 30 * 1000

// ---- HTTP (BEP 3, 7, 23, 48) ----

/** Longest request target (path + query) accepted, in bytes; longer → failure reason. */
export const MAX_URL_LENGTH = 8192
/** Most `info_hash` params in one HTTP scrape (matches the UDP limit). */
export const MAX_SCRAPE_HASHES = 74
/** Most query parameters in one request: a bound on parsing work. */
export const MAX_QUERY_PARAMS = 256
/** Ports are u16 and 0 is not a listening port. */
export const MAX_PORT = 65535

// ---- UDP (BEP 15, 41) ----

/** The magic protocol id of a UDP connect request (BEP 15). */
export const UDP_PROTOCOL_ID = 0x41727101980n
export const UDP_ACTION_CONNECT = 0
export const UDP_ACTION_ANNOUNCE = 1
export const UDP_ACTION_SCRAPE = 2
export const UDP_ACTION_ERROR = 3
/** Fixed part of a UDP announce request, in bytes; BEP 41 options may follow. */
export const UDP_ANNOUNCE_MIN_LENGTH = 98
/** Connect request length in bytes. */
export const UDP_CONNECT_LENGTH = 16
/** Header of every UDP request: connection id u64, action u32, transaction id u32. */
export const UDP_HEADER_LENGTH = 16
/** Most info hashes in one UDP scrape (BEP 15: "up to about 74"). */
export const UDP_MAX_SCRAPE_HASHES = 74
/**
 * A connection id is issued for a time window of this length; ids of the current and the previous
 * window are accepted, so an id lives between 1 and 2 windows (BEP 15: client may use it 1 minute,
 * tracker accepts it 2).
 */
export const UDP_CONNECTION_ID_WINDOW_MS = 60 * 1000
/** Largest UDP datagram read; a bigger one is not a tracker request. */
export const UDP_MAX_PACKET = 2048
/** Most BEP 41 URL-data bytes kept from one request (options carry at most 255 each). */
export const UDP_MAX_URL_DATA = 1024

// ---- WebSocket (WebTorrent) ----

/** Largest WS frame accepted, in bytes (an offer SDP is a few KB; 10 offers fit comfortably). */
export const WS_MAX_PAYLOAD = 64 * 1024
/** Most offers relayed per announce (WebTorrent sends 10 by default). */
export const WS_MAX_OFFERS = 20
/** Most swarms one WS socket may be in at once. */
export const WS_MAX_SWARMS_PER_SOCKET = 100
/** Most outstanding relayed offers remembered per socket (answers are checked against them). */
export const WS_MAX_PENDING_OFFERS = 200
/** An offer relayed longer ago than this can no longer be answered, in ms. */
export const WS_OFFER_TTL_MS = 60 * 1000
/** Longest offer_id accepted (WebTorrent uses 20-character binary strings). */
export const WS_MAX_OFFER_ID_LENGTH = 64
/** Longest SDP accepted in an offer or answer, in characters. */
export const WS_MAX_SDP_LENGTH = 16 * 1024
/** Bytes a socket may have buffered before offers to it are dropped (slow consumer). */
export const WS_MAX_BUFFERED = 1024 * 1024

// ---- Identity ----

/** Info hashes (v1, and v2 truncated per BEP 52) and peer ids are 20 bytes. */
export const ID_LENGTH = 20

// ---- Bencode ----

/**
 * Deepest list/dict nesting a bencode decoder accepts. Tracker responses nest 3 levels (dict →
 * list → dict); the bound keeps the recursive decoder's stack use small on hostile input.
 */
export const BENCODE_MAX_DEPTH = 32

// ---- Server housekeeping ----

/** Most torrents in a full scrape (a scrape with no info_hash); bounds the response size. */
export const MAX_FULL_SCRAPE = 1000
/** Torrents without peers remembered only for their `downloaded` count; oldest forgotten first. */
export const MAX_RETIRED_TORRENTS = 1_000_000
/** Peers the sweeper visits per tick, so expiry never blocks announces for long. */
export const SWEEP_BUDGET = 20_000
/** A filter that has not answered after this long refuses the request, in ms. */
export const FILTER_TIMEOUT_MS = 10_000
/** WebSocket heartbeat: a socket that has not answered the previous ping is closed, in ms. */
export const WS_HEARTBEAT_MS = 60_000

// ---- Worker threads (`--workers`) ----

/**
 * Bytes of each one-way message ring between two worker threads (power of two). Holds a few
 * thousand requests in flight; the largest message (a 64 KiB WebSocket offer, a full scrape of
 * MAX_FULL_SCRAPE torrents) must fit in it.
 */
export const WORKER_RING_BYTES = 1 << 20
/**
 * Requests and signals a worker keeps queued locally for one peer worker whose ring is full;
 * beyond it a request fails with WORKERS_BUSY (and a signal is dropped) instead of growing memory.
 */
export const WORKER_OVERFLOW_MAX = 8192
/** Largest swarm snapshot (`server.torrents[hash].peers`) one worker asks another for, in peers. */
export const WORKER_SNAPSHOT_MAX_PEERS = 5000
/** Longest a synchronous cross-worker read (the `torrents` view) waits for the owning worker, ms. */
export const WORKER_SYNC_TIMEOUT_MS = 5000
/** Listen backlog of each worker's own TCP socket (SO_REUSEPORT mode); Node's default. */
export const WORKER_LISTEN_BACKLOG = 511
/** Longest the main thread waits for workers to close their sockets before ending them, ms. */
export const WORKER_CLOSE_TIMEOUT_MS = 4000

// ---- HTTP server timeouts (slow clients must not hold sockets) ----

/** Time a client has to send its request headers, in ms. */
export const HTTP_HEADERS_TIMEOUT_MS = 15_000
/** Time a client has to send a whole request, in ms. */
export const HTTP_REQUEST_TIMEOUT_MS = 30_000

// ---- Client ----

/** Announce interval used until a tracker names its own (the reference's 30 minutes), ms. */
export const CLIENT_DEFAULT_INTERVAL_MS = 30 * 60_000
/** A tracker may not make a client re-announce more often than this, whatever it sends, ms. */
export const CLIENT_MIN_REANNOUNCE_MS = 1_000
/** Largest tracker response body a client reads, in bytes (a full 200-peer answer is ~20 KB). */
export const CLIENT_MAX_RESPONSE_BYTES = 1024 * 1024
/** Largest WebSocket tracker message a client accepts, in bytes. */
export const CLIENT_WS_MAX_PAYLOAD = 1024 * 1024
/** Longest wait for a WebSocket opening handshake, in ms. */
export const CLIENT_WS_HANDSHAKE_TIMEOUT_MS = 15_000
/**
 * Offers a client makes per WebSocket announce. WebTorrent asks for 10; each offer is an
 * RTCPeerConnection with its own ICE gathering, so more would cost much and gain little.
 */
export const CLIENT_WS_MAX_OFFERS = 10
/** WebRTC peers a client sets up at once (offers awaiting answers + connections being made). */
export const CLIENT_WS_MAX_PENDING_PEERS = 50
/** An offer we made that got no answer is dropped after this long, in ms. */
export const CLIENT_WS_OFFER_TIMEOUT_MS = 50_000
/** A WebRTC connection that has not opened its data channel by then is dropped, in ms. */
export const CLIENT_WS_CONNECT_TIMEOUT_MS = 30_000
/** Longest wait for ICE gathering (loopback/LAN: milliseconds; STUN: a few seconds), in ms. */
export const CLIENT_ICE_GATHER_TIMEOUT_MS = 5_000
