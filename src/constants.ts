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
/** Bytes a WS socket may have buffered before messages and pongs to it are dropped (slow consumer). */
export const WS_MAX_BUFFERED = 1024 * 1024

// ---- WebSocket framing (RFC 6455, our own server side: src/server/frontends/ws-socket.ts) ----

/** Largest frame payload accepted from a client, in bytes (larger: close 1009). */
export const WS_MAX_FRAME = WS_MAX_PAYLOAD
/** Largest message (all fragments together) accepted from a client, in bytes (larger: close 1009). */
export const WS_MAX_MESSAGE = WS_MAX_PAYLOAD
/** Most fragments one message may come in (more: close 1009), so tiny fragments cannot pile up. */
export const WS_MAX_FRAGMENTS = 1024
/** Control frames (close, ping, pong) carry at most this many payload bytes and are never fragmented. */
export const WS_MAX_CONTROL_PAYLOAD = 125
/** After our close frame (or a protocol error), the socket is destroyed if not closed within this, in ms. */
export const WS_CLOSE_TIMEOUT_MS = 5_000
/** RFC 6455 §1.3: appended to Sec-WebSocket-Key before hashing into Sec-WebSocket-Accept. */
export const WS_ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
/** Close codes (RFC 6455 §7.4.1). */
export const WS_CLOSE_NORMAL = 1000
export const WS_CLOSE_GOING_AWAY = 1001
export const WS_CLOSE_PROTOCOL_ERROR = 1002
export const WS_CLOSE_INVALID_PAYLOAD = 1007
export const WS_CLOSE_TOO_BIG = 1009

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

// ---- Redis store ----

/**
 * Longest wait for one Redis reply, in ms: past it the request fails with STORE_UNAVAILABLE
 * (a client retries; a hung request would hold its socket and the client's announce).
 */
export const REDIS_COMMAND_TIMEOUT_MS = 1_000
/** Longest wait for the first connection at start, and per reconnection attempt, in ms. */
export const REDIS_CONNECT_TIMEOUT_MS = 2_000
/** Cap of the exponential back-off between reconnection attempts, in ms. */
export const REDIS_RECONNECT_MAX_MS = 1_000
/** Removes (WebSocket closes) remembered while Redis is away, to send once it is back. */
export const REDIS_MAX_FAILED_REMOVES = 100_000
/** Stale peers removed per sweep script call, so one huge swarm never blocks Redis for long. */
export const REDIS_SWEEP_BATCH = 1_000
/** Period of the reload of the synchronous view (/stats counters, `server.torrents`), in ms. */
export const REDIS_VIEW_REFRESH_MS = 2_000
/**
 * Swarms whose peers the synchronous view holds (`server.torrents`): a snapshot of a shared
 * store is bounded in memory and in Redis work per refresh.
 */
export const REDIS_VIEW_MAX_SWARMS = 1_000
/** Peers (over all its swarms) the synchronous view holds at most: swarms beyond it are left out. */
export const REDIS_VIEW_MAX_PEERS = 100_000
/** A filter that has not answered after this long refuses the request, in ms. */
export const FILTER_TIMEOUT_MS = 10_000
/** WebSocket heartbeat: a socket that has not answered the previous ping is closed, in ms. */
export const WS_HEARTBEAT_MS = 60_000

// ---- Access lists ----

/**
 * Quiet time after the last change event of an access-list file before it is re-read, in ms:
 * editors and `mv` fire several events per save, and a half-written file must not be loaded.
 */
export const ACCESS_LIST_DEBOUNCE_MS = 200
/** Largest access-list file read, in bytes (about 2.5 million 40-hex lines). */
export const ACCESS_LIST_MAX_BYTES = 100 * 1024 * 1024
// ---- Private tracker mode (passkeys) and the admin API ----

/**
 * A passkey is 16 to 64 characters of [A-Za-z0-9]: URL-safe in every transport (HTTP path, BEP 41
 * URL data, WebSocket path) without escaping, and long enough to be unguessable. Generated keys
 * are 32 lowercase hex characters (128 random bits), which fit this rule.
 */
export const PASSKEY_PATTERN = /^[A-Za-z0-9]{16,64}$/
/** Random bytes in a generated passkey (hex-encoded: 32 characters). */
export const PASSKEY_RANDOM_BYTES = 16
/**
 * Most (passkey, torrent, peer) entries remembered for upload/download deltas. Each entry also
 * expires with its peer (silent longer than the peer TTL); the oldest goes first past the cap.
 */
export const MAX_ACCOUNTING_PEERS = 1_000_000
/** Largest admin API request body, in bytes (a JSON object with one passkey is under 100). */
export const ADMIN_MAX_BODY = 4096

// ---- Restarts without loss (state file, graceful shutdown) ----

/** How often the state file is written while running, in ms (a crash loses at most this much). */
export const STATE_SAVE_INTERVAL_MS = 60_000
/**
 * A save builds the state file in slices of about this much work, in ms, and lets the event
 * loop run between them (a whole save of 1M torrents in one go stalled it ~1 s).
 */
export const STATE_SAVE_SLICE_MS = 5
/** The state file is built, hashed and written in pieces of this many bytes (1 MiB). */
export const STATE_SAVE_PIECE_BYTES = 1 << 20
/**
 * Longest a graceful shutdown (`drain`) waits for requests in flight before closing what is left,
 * in ms. The CLI force-exits after SHUTDOWN_TIMEOUT_MS whatever happens.
 */
export const DRAIN_TIMEOUT_MS = 5_000
/** The CLI exits at the latest this long after SIGTERM/SIGINT, saved or not, in ms. */
export const SHUTDOWN_TIMEOUT_MS = 10_000
/** How often idle keep-alive connections are closed while draining, in ms. */
export const DRAIN_POLL_MS = 50
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
/** How long a worker reuses the other workers' per-client peer counts for `/stats`, ms. */
export const WORKER_CLIENTS_CACHE_MS = 2000
/** Listen backlog of each worker's own TCP socket (SO_REUSEPORT mode); Node's default. */
export const WORKER_LISTEN_BACKLOG = 511
/** Longest the main thread waits for workers to close their sockets before ending them, ms. */
export const WORKER_CLOSE_TIMEOUT_MS = 4000

// ---- HTTP server timeouts (slow clients must not hold sockets) ----

/** Time a client has to send its request headers, in ms. */
export const HTTP_HEADERS_TIMEOUT_MS = 15_000
/** Time a client has to send a whole request, in ms. */
export const HTTP_REQUEST_TIMEOUT_MS = 30_000

// ---- HTTP fast path (plain-HTTP GET announce/scrape read on node:net; see http-fast.ts) ----
// A request outside these limits is not refused here: it is handed to node:http, whose own
// limits and answers (400, 408, 431) then apply exactly as without the fast path.

/** Most bytes of one request head (request line + headers) the fast path reads. */
export const HTTP_FAST_MAX_HEAD_BYTES = 8192 + 1024
/** Most header lines in one request the fast path reads. */
export const HTTP_FAST_MAX_HEADERS = 32
/** Most pipelined requests of one connection awaiting their responses; past it, reading stops. */
export const HTTP_FAST_MAX_PIPELINED = 16
/** Unsent response bytes of one connection past which reading stops until the client reads. */
export const HTTP_FAST_MAX_BUFFERED_BYTES = 64 * 1024
/** How often idle keep-alive and slow (slowloris) fast-path connections are looked for, in ms. */
export const HTTP_FAST_SWEEP_MS = 1000

// ---- Statistics and metrics (/stats, /stats.json, /metrics, /health) ----

/** One dashboard history sample every this many ms (10 s: an hour is 360 points, ~3 KB a series). */
export const STATS_SAMPLE_MS = 10_000
/** History samples kept (360 × 10 s = the last hour). */
export const STATS_HISTORY_SAMPLES = 360
/** Torrents listed in the dashboard's "top torrents by peers". */
export const STATS_TOP_TORRENTS = 10
/**
 * Torrents visited per event-loop turn while ranking the top torrents (once per sample): the
 * ranking walks swarms, not peers, and yields between chunks so no request waits behind it.
 */
export const STATS_TOP_SCAN_CHUNK = 5_000
/** Resolution of the event-loop delay monitor, ms (perf_hooks.monitorEventLoopDelay). */
export const EVENT_LOOP_MONITOR_RESOLUTION_MS = 20
/**
 * Upper bounds of the request latency histogram, in seconds: a tracker answers from memory in
 * tens of µs, so the buckets are fine at the bottom; the top ones catch a slow filter or store.
 */
export const LATENCY_BUCKETS_S = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5] as const

// ---- Client ----

/** Announce interval used until a tracker names its own (the reference's 30 minutes), ms. */
export const CLIENT_DEFAULT_INTERVAL_MS = 30 * 60_000
/** No re-announce comes sooner than this, whatever the tracker or `setInterval` says, ms. */
export const CLIENT_MIN_REANNOUNCE_MS = 1_000
/**
 * Shortest re-announce interval a tracker may impose, ms: a smaller `interval` it sends is
 * raised to this (libtorrent's equivalent is 5 min). A broken or hostile tracker saying
 * `interval: 1` would otherwise have every client announce each second (over WebSocket, with
 * fresh WebRTC offers each time). `setInterval()` is the app's own choice and is not raised.
 */
export const CLIENT_MIN_TRACKER_INTERVAL_MS = 60_000
/** Largest tracker response body a client reads, in bytes (a full 200-peer answer is ~20 KB). */
export const CLIENT_MAX_RESPONSE_BYTES = 1024 * 1024
/**
 * Most peers one tracker answer gives the app as 'peer' events (distinct addresses). Trackers
 * send up to ~200 (our MAX_NUMWANT, opentracker's cap); a 1 MiB body could hold 174,000, all
 * emitted in one synchronous burst.
 */
export const CLIENT_MAX_PEERS_PER_ANSWER = 1000
/**
 * Longest `tracker id` a client keeps and echoes back, in characters. Real ones are a few bytes;
 * a huge one would ride along on every later announce (HTTP: the URL grows past any server's
 * limit, and every announce to that tracker fails from then on).
 */
export const CLIENT_MAX_TRACKER_ID_LENGTH = 1024
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

// ---- Abuse controls (off in `new Server()`, on in the CLI; see README "Operating") ----

/**
 * Per-address request rates the CLI enforces by default, as [requests per second, burst]. One
 * address may hide many clients (a NAT, a university, carrier-grade NAT): a client announces each
 * torrent once per interval (10 min), so 1,000 clients with 10 torrents each behind one address
 * make ~17 requests/s. UDP counts connect and announce packets; WS counts every message
 * (announces, answers, scrapes). Generous on purpose: they stop floods, not busy networks.
 */
export const CLI_RATE_LIMIT_HTTP: readonly [number, number] = [50, 500]
export const CLI_RATE_LIMIT_UDP: readonly [number, number] = [100, 1000]
export const CLI_RATE_LIMIT_WS: readonly [number, number] = [50, 500]
/**
 * Addresses remembered per rate-limit table. The table is bounded so a flood from many (spoofed)
 * sources costs fixed memory (~100 B an entry); when full, the oldest entry that is not being
 * limited right now is forgotten.
 */
export const RATE_LIMIT_MAX_ADDRESSES = 65_536
/** IPv6 clients are limited per /64 (one host is usually given a whole /64), in bits. */
export const RATE_LIMIT_IPV6_PREFIX_BITS = 64
/** Entries looked at when a full table must forget one (prefers forgetting idle addresses). */
export const RATE_LIMIT_EVICTION_PROBES = 8
/**
 * Bad UDP connection ids from one address before it is ignored (CLI default). An honest client
 * sends a few after a tracker restart (its id became invalid) before it reconnects; a scanner or
 * a broken client sends them without end.
 */
export const UDP_BAD_ID_MAX = 20
/** Window in which UDP_BAD_ID_MAX bad ids must arrive to cause a ban, in ms. */
export const UDP_BAD_ID_WINDOW_MS = 60_000
/** How long such an address is ignored, in ms. */
export const UDP_BAD_ID_BAN_MS = 10 * 60_000
/**
 * Random spread of the announce interval the CLI tells clients, as a fraction (±10%): clients
 * that started together (a tracker restart, a popular release) drift apart instead of
 * re-announcing in one burst.
 */
export const CLI_INTERVAL_JITTER = 0.1
/** Largest jitter accepted: more would let `interval` fall near `min interval`. */
export const MAX_INTERVAL_JITTER = 0.5
