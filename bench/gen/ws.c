/*
 * WebTorrent (WebSocket) tracker load generator: announces carrying offers, answers to the
 * offers relayed to us.
 *
 * Clients: one WebSocket per simulated browser, C = T of them (T = --torrents). Each client has
 * one peer id (like a WebTorrent client, "-WW2000-" and 12 binary bytes) and is in P torrents
 * (P = --peers, T divisible by P): client c is in torrents (c + k*T/P) % T for k < P, so every
 * torrent has P distinct clients and the data set is T torrents x P peers, as for UDP and HTTP.
 * Info hashes are the same binary 20 bytes as the other generators; binary strings travel as
 * JSON strings the way JSON.stringify writes them (UTF-8 for 0x80-0xff, \u00XX escapes).
 *
 * Join stage (not measured): every client connects (at most 256 handshakes in flight) and
 * announces in its P torrents with event "started" and no offers; it ends when all those
 * announces are answered (bounded by --warmup-max).
 * Then: `--window W` announces outstanding, each from a different client (at most one per
 * client), walking clients round-robin; each announce carries `--offers N` offers (numwant N)
 * with a ~600-byte SDP. Every offer the tracker relays to a client is answered at once with an
 * answer to that peer and offer id. Measured: announce responses (rate and latency: send to
 * reply) plus, in the extra fields, offers received, answers sent and received, and the
 * offer-to-answer round trip (an offer id carries its send time).
 *
 * An announce unanswered after `--timeout-ms` (5 s) frees its slot and counts in `timeouts`; a
 * reply is matched to its announce by client and info hash.
 *
 *   ws --port P [--host 127.0.0.1] [--window W] [--offers N] [--pid SERVER_PID] [--torrents T] [--peers P] ...
 */
#include "common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

enum { S_IDLE, S_CONNECTING, S_HANDSHAKE, S_OPEN, S_DEAD };

struct client {
  int fd, state;
  uint32_t idx;
  int busy, counted;       /* one measured announce outstanding */
  uint32_t busy_torrent;   /* ... in this torrent */
  uint64_t sent_ns;
  int warm_pending;        /* join announces not yet answered */
  int dirty, want_out;
  char *rbuf; size_t rlen, rcap;
  char *wbuf; size_t wlen, woff, wcap;
};

static struct common_opts O;
static int window_n = 64, offers_n = 5, timeout_ms = 5000;
static int ep;
static struct client *clients;
static uint32_t nclients;
static struct sockaddr_storage ss;
static socklen_t sslen;
static char host_header[96];
static char (*ih_json)[128];   /* JSON string tokens (with quotes) of the info hashes */
static char (*pid_json)[128];  /* ... of the client peer ids */
static struct client **dirty_list;
static size_t ndirty;
static uint64_t warm_done, warm_total, opened, dead_clients;
static uint64_t next_announce;
static int outstanding;
static uint32_t *relay_hist;   /* offer -> answer round trip, 10 us buckets up to 10 s */
static uint64_t relay_count;
#define RELAY_BUCKETS 1000000

static const char SDP_OFFER[] =
  "v=0\\r\\no=- 4611731400430051336 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\na=group:BUNDLE 0\\r\\n"
  "a=extmap-allow-mixed\\r\\na=msid-semantic: WMS\\r\\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\\r\\n"
  "c=IN IP4 0.0.0.0\\r\\na=candidate:1467250027 1 udp 2122260223 192.168.1.20 54321 typ host generation 0 network-id 1\\r\\n"
  "a=candidate:842163049 1 udp 1686052607 203.0.113.7 54321 typ srflx raddr 192.168.1.20 rport 54321 generation 0 network-id 1\\r\\n"
  "a=ice-ufrag:Zx9q\\r\\na=ice-pwd:3u6dWcM2pVb1Qk8rT0yLsN5e\\r\\na=ice-options:trickle\\r\\n"
  "a=fingerprint:sha-256 4A:1F:9C:22:7B:E0:13:5D:88:C4:6F:0A:B9:31:D7:42:E5:8B:06:9F:CA:77:12:3E:D0:58:A4:B1:6C:29:F3:80\\r\\n"
  "a=setup:actpass\\r\\na=mid:0\\r\\na=sctp-port:5000\\r\\na=max-message-size:262144\\r\\n";
static const char SDP_ANSWER[] =
  "v=0\\r\\no=- 7290315186645712345 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\na=group:BUNDLE 0\\r\\n"
  "a=msid-semantic: WMS\\r\\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\\r\\nc=IN IP4 0.0.0.0\\r\\n"
  "a=candidate:2999745851 1 udp 2122260223 192.168.1.30 61234 typ host generation 0 network-id 1\\r\\n"
  "a=ice-ufrag:Qm3a\\r\\na=ice-pwd:Hk2vX9nB4cR7tY1uW6zE0pLs\\r\\na=ice-options:trickle\\r\\n"
  "a=fingerprint:sha-256 7C:03:E9:5A:11:B4:8D:26:F0:9E:43:C7:2B:68:D1:05:AF:3C:97:E2:50:1B:84:6D:C9:0F:72:A8:35:EB:16:4D\\r\\n"
  "a=setup:active\\r\\na=mid:0\\r\\na=sctp-port:5000\\r\\na=max-message-size:262144\\r\\n";

/* ---------------------------------------------------------------------------------------- */
/* JSON strings holding binary (latin1) data                                                 */
/* ---------------------------------------------------------------------------------------- */

/* Writes b as a JSON string token the way JSON.stringify does, quotes included; returns length. */
static size_t json_bin (const uint8_t *b, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  char *o = out;
  *o++ = '"';
  for (size_t i = 0; i < n; i++) {
    uint8_t c = b[i];
    if (c == '"' || c == '\\') { *o++ = '\\'; *o++ = (char)c; }
    else if (c == '\b') { *o++ = '\\'; *o++ = 'b'; }
    else if (c == '\f') { *o++ = '\\'; *o++ = 'f'; }
    else if (c == '\n') { *o++ = '\\'; *o++ = 'n'; }
    else if (c == '\r') { *o++ = '\\'; *o++ = 'r'; }
    else if (c == '\t') { *o++ = '\\'; *o++ = 't'; }
    else if (c < 0x20) { *o++ = '\\'; *o++ = 'u'; *o++ = '0'; *o++ = '0'; *o++ = hex[c >> 4]; *o++ = hex[c & 15]; }
    else if (c < 0x80) *o++ = (char)c;
    else { *o++ = (char)(0xc0 | (c >> 6)); *o++ = (char)(0x80 | (c & 0x3f)); }
  }
  *o++ = '"';
  *o = 0;
  return (size_t)(o - out);
}

/* Decodes a JSON string token (quotes included) holding code points <= 0xff into bytes. */
static int json_unbin (const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen) {
  if (n < 2 || s[0] != '"' || s[n - 1] != '"') return -1;
  size_t o = 0;
  for (size_t i = 1; i + 1 < n; i++) {
    unsigned c = (uint8_t)s[i];
    if (o >= cap) return -1;
    if (c == '\\') {
      char e = s[++i];
      if (e == 'u') {
        if (i + 4 >= n) return -1;
        char hx[5] = { s[i + 1], s[i + 2], s[i + 3], s[i + 4], 0 };
        unsigned long v = strtoul(hx, NULL, 16);
        if (v > 0xff) return -1;
        out[o++] = (uint8_t)v;
        i += 4;
      } else {
        out[o++] = (uint8_t)(e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e);
      }
    } else if (c >= 0xc0 && c <= 0xc3) {
      out[o++] = (uint8_t)(((c & 0x03) << 6) | ((uint8_t)s[++i] & 0x3f));
    } else if (c >= 0x80) {
      return -1; /* a code point above 0xff: not a binary string */
    } else {
      out[o++] = (uint8_t)c;
    }
  }
  *outlen = o;
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* A top-level JSON object scanner: raw token ranges of the keys we care about               */
/* ---------------------------------------------------------------------------------------- */

struct msg {
  const char *info_hash, *peer_id, *offer_id;
  size_t info_hash_len, peer_id_len, offer_id_len;
  int has_offer, has_answer, has_failure, has_interval;
};

static const char *skip_ws (const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
  return p;
}

static const char *skip_string (const char *p, const char *e) {
  p++; /* opening quote */
  while (p < e) {
    if (*p == '\\') p += 2;
    else if (*p == '"') return p + 1;
    else p++;
  }
  return NULL;
}

static const char *skip_value (const char *p, const char *e) {
  if (p >= e) return NULL;
  if (*p == '"') return skip_string(p, e);
  if (*p == '{' || *p == '[') {
    int depth = 0;
    while (p < e) {
      if (*p == '"') { p = skip_string(p, e); if (p == NULL) return NULL; continue; }
      if (*p == '{' || *p == '[') depth++;
      else if (*p == '}' || *p == ']') { if (--depth == 0) return p + 1; }
      p++;
    }
    return NULL;
  }
  while (p < e && *p != ',' && *p != '}' && *p != ']') p++;
  return p;
}

static int scan_msg (const char *p, size_t n, struct msg *m) {
  const char *e = p + n;
  memset(m, 0, sizeof *m);
  p = skip_ws(p, e);
  if (p >= e || *p != '{') return -1;
  p++;
  for (;;) {
    p = skip_ws(p, e);
    if (p >= e) return -1;
    if (*p == '}') return 0;
    if (*p == ',') { p++; continue; }
    if (*p != '"') return -1;
    const char *k = p + 1, *ke = skip_string(p, e);
    if (ke == NULL) return -1;
    size_t klen = (size_t)(ke - 1 - k);
    p = skip_ws(ke, e);
    if (p >= e || *p != ':') return -1;
    p = skip_ws(p + 1, e);
    const char *v = p, *ve = skip_value(p, e);
    if (ve == NULL) return -1;
#define KEY(s) (klen == sizeof(s) - 1 && memcmp(k, s, klen) == 0)
    if (KEY("info_hash")) { m->info_hash = v; m->info_hash_len = (size_t)(ve - v); }
    else if (KEY("peer_id")) { m->peer_id = v; m->peer_id_len = (size_t)(ve - v); }
    else if (KEY("offer_id")) { m->offer_id = v; m->offer_id_len = (size_t)(ve - v); }
    else if (KEY("offer")) m->has_offer = 1;
    else if (KEY("answer")) m->has_answer = 1;
    else if (KEY("failure reason")) m->has_failure = 1;
    else if (KEY("interval")) m->has_interval = 1;
#undef KEY
    p = ve;
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Connections and frames                                                                    */
/* ---------------------------------------------------------------------------------------- */

static void ensure (char **buf, size_t *cap, size_t need) {
  if (need <= *cap) return;
  size_t c = *cap ? *cap : 4096;
  while (c < need) c *= 2;
  *buf = realloc(*buf, c);
  if (*buf == NULL) die("out of memory");
  *cap = c;
}

static void mark_dirty (struct client *c) {
  if (!c->dirty) { c->dirty = 1; dirty_list[ndirty++] = c; }
}

static void append (struct client *c, const char *data, size_t n) {
  if (c->woff > 0 && c->woff == c->wlen) c->woff = c->wlen = 0;
  ensure(&c->wbuf, &c->wcap, c->wlen + n);
  memcpy(c->wbuf + c->wlen, data, n);
  c->wlen += n;
  mark_dirty(c);
}

static const uint8_t MASK[4] = { 0x3a, 0x91, 0x5c, 0xe7 };

/* Appends one masked client frame. */
static void send_frame (struct client *c, int opcode, const char *payload, size_t n) {
  if (c->state != S_OPEN) return;
  if (c->woff > 0 && c->woff == c->wlen) c->woff = c->wlen = 0;
  ensure(&c->wbuf, &c->wcap, c->wlen + n + 14);
  uint8_t *h = (uint8_t *)c->wbuf + c->wlen;
  size_t hl;
  h[0] = (uint8_t)(0x80 | opcode);
  if (n < 126) { h[1] = (uint8_t)(0x80 | n); hl = 2; }
  else if (n < 65536) { h[1] = 0x80 | 126; h[2] = (uint8_t)(n >> 8); h[3] = (uint8_t)n; hl = 4; }
  else { h[1] = 0x80 | 127; for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i)); hl = 10; }
  memcpy(h + hl, MASK, 4);
  hl += 4;
  uint8_t *d = h + hl;
  for (size_t i = 0; i < n; i++) d[i] = (uint8_t)payload[i] ^ MASK[i & 3];
  c->wlen += hl + n;
  mark_dirty(c);
}

static void set_events (struct client *c, uint32_t events, int op) {
  struct epoll_event ev = { .events = events, .data.ptr = c };
  if (epoll_ctl(ep, op, c->fd, &ev) != 0) die("epoll_ctl: %s", strerror(errno));
}

static void kill_client (struct client *c) {
  if (c->state == S_DEAD) return;
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  if (c->busy) { c->busy = 0; outstanding--; }
  c->state = S_DEAD;
  dead_clients++;
  if (c->warm_pending > 0) { warm_done += (uint64_t)c->warm_pending; c->warm_pending = 0; }
}

static void flush_client (struct client *c) {
  if (c->fd < 0) return;
  while (c->woff < c->wlen) {
    ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        if (!c->want_out) { c->want_out = 1; set_events(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD); }
        return;
      }
      kill_client(c);
      return;
    }
    c->woff += (size_t)n;
  }
  c->woff = c->wlen = 0;
  if (c->want_out) { c->want_out = 0; set_events(c, EPOLLIN, EPOLL_CTL_MOD); }
}

static uint32_t torrent_of (uint32_t c, uint32_t k) {
  return (c + k * (O.torrents / O.peers)) % O.torrents;
}

static char scratch[65536];

static void send_announce (struct client *c, uint32_t k, int warm, uint64_t t) {
  uint32_t tor = torrent_of(c->idx, k);
  char *o = scratch;
  o += sprintf(o, "{\"action\":\"announce\",\"info_hash\":%s,\"peer_id\":%s,\"numwant\":%d,\"uploaded\":0,\"downloaded\":0,\"left\":%" PRIu64 ",",
               ih_json[tor], pid_json[c->idx], warm ? 0 : offers_n, left_of(k));
  if (warm) o += sprintf(o, "\"event\":\"started\",\"offers\":[]}");
  else {
    o += sprintf(o, "\"offers\":[");
    for (int i = 0; i < offers_n; i++) {
      uint8_t oid[20];
      memcpy(oid, &t, 8);
      memcpy(oid + 8, &c->idx, 4);
      uint64_t r = next_announce * 8 + (uint64_t)i;
      memcpy(oid + 12, &r, 8);
      o += sprintf(o, "%s{\"offer\":{\"type\":\"offer\",\"sdp\":\"%s\"},\"offer_id\":", i ? "," : "", SDP_OFFER);
      o += json_bin(oid, 20, o);
      *o++ = '}';
    }
    o += sprintf(o, "]}");
  }
  send_frame(c, 1, scratch, (size_t)(o - scratch));
}

static void on_text (struct client *c, const char *p, size_t n, uint64_t t) {
  struct msg m;
  if (scan_msg(p, n, &m) != 0) { if (phase.measuring) win.bad++; return; }
  if (m.has_failure) {
    if (phase.measuring) win.errors++;
    if (win.errors == 1 && phase.measuring) fprintf(stderr, "gen: first failure: %.*s\n", (int)(n < 300 ? n : 300), p);
    /* A failed announce still ends it. */
    if (c->warm_pending > 0) { c->warm_pending--; warm_done++; }
    else if (c->busy) { c->busy = 0; outstanding--; }
    return;
  }
  if (m.has_offer) {
    if (phase.measuring) win.extra[0]++;
    if (m.info_hash == NULL || m.peer_id == NULL || m.offer_id == NULL) { if (phase.measuring) win.bad++; return; }
    char *o = scratch;
    o += sprintf(o, "{\"action\":\"announce\",\"info_hash\":%.*s,\"peer_id\":%s,\"to_peer_id\":%.*s,"
                    "\"answer\":{\"type\":\"answer\",\"sdp\":\"%s\"},\"offer_id\":%.*s}",
                 (int)m.info_hash_len, m.info_hash, pid_json[c->idx], (int)m.peer_id_len, m.peer_id,
                 SDP_ANSWER, (int)m.offer_id_len, m.offer_id);
    send_frame(c, 1, scratch, (size_t)(o - scratch));
    if (phase.measuring) win.extra[1]++;
    return;
  }
  if (m.has_answer) {
    if (phase.measuring) {
      win.extra[2]++;
      uint8_t oid[64];
      size_t ol;
      if (m.offer_id != NULL && json_unbin(m.offer_id, m.offer_id_len, oid, sizeof oid, &ol) == 0 && ol == 20) {
        uint64_t sent;
        memcpy(&sent, oid, 8);
        if (sent <= t && sent >= phase.window_start_ns) {
          uint64_t b = (t - sent) / 10000;
          relay_hist[b < RELAY_BUCKETS ? b : RELAY_BUCKETS - 1]++;
          relay_count++;
        }
      } else win.bad++;
    }
    return;
  }
  /* An announce reply. */
  if (c->warm_pending > 0) { c->warm_pending--; warm_done++; return; }
  const char *want = ih_json[c->busy_torrent];
  if (!c->busy || m.info_hash == NULL || m.info_hash_len != strlen(want) || memcmp(m.info_hash, want, m.info_hash_len) != 0) {
    if (phase.measuring) win.extra[3]++; /* unsolicited, or late for an announce that timed out */
    return;
  }
  c->busy = 0;
  outstanding--;
  if (phase.measuring && c->counted) {
    win.responses++;
    hist_add(t - c->sent_ns);
  }
}

/* Parses whole frames from c->rbuf. */
static void on_frames (struct client *c, uint64_t t) {
  size_t off = 0;
  for (;;) {
    if (c->rlen - off < 2) break;
    uint8_t *h = (uint8_t *)c->rbuf + off;
    int opcode = h[0] & 0x0f, fin = h[0] & 0x80;
    uint64_t len = h[1] & 0x7f;
    size_t hl = 2;
    if (h[1] & 0x80) { kill_client(c); return; } /* servers never mask */
    if (len == 126) { if (c->rlen - off < 4) break; len = ((uint64_t)h[2] << 8) | h[3]; hl = 4; }
    else if (len == 127) {
      if (c->rlen - off < 10) break;
      len = 0;
      for (int i = 0; i < 8; i++) len = (len << 8) | h[2 + i];
      hl = 10;
    }
    if (c->rlen - off < hl + len) { ensure(&c->rbuf, &c->rcap, off + hl + len); break; }
    char *payload = c->rbuf + off + hl;
    if (!fin) { if (phase.measuring) win.bad++; }
    else if (opcode == 1 || opcode == 2) on_text(c, payload, (size_t)len, t);
    else if (opcode == 9) send_frame(c, 10, payload, (size_t)len);
    else if (opcode == 8) { if (phase.measuring) win.extra[4]++; kill_client(c); return; }
    off += hl + (size_t)len;
  }
  if (off > 0) {
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
  }
}

static void on_open (struct client *c) {
  c->state = S_OPEN;
  opened++;
  c->warm_pending = (int)O.peers;
  for (uint32_t k = 0; k < O.peers; k++) send_announce(c, k, 1, 0);
}

static void on_readable (struct client *c, uint64_t t) {
  for (;;) {
    ensure(&c->rbuf, &c->rcap, c->rlen + 4096);
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
    if (n > 0) { c->rlen += (size_t)n; if ((size_t)n < 4096) break; continue; }
    if (n == 0) { if (phase.measuring) win.extra[4]++; kill_client(c); return; }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) break;
    kill_client(c);
    return;
  }
  if (c->state == S_HANDSHAKE) {
    char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (end == NULL) return;
    if (c->rlen < 12 || memcmp(c->rbuf + 9, "101", 3) != 0) {
      fprintf(stderr, "gen: handshake refused: %.*s\n", (int)(c->rlen < 200 ? c->rlen : 200), c->rbuf);
      kill_client(c);
      return;
    }
    size_t hl = (size_t)(end + 4 - c->rbuf);
    memmove(c->rbuf, c->rbuf + hl, c->rlen - hl);
    c->rlen -= hl;
    on_open(c);
  }
  if (c->state == S_OPEN) on_frames(c, t);
}

static void start_connect (struct client *c) {
  c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) die("socket: %s (raise the open-files limit?)", strerror(errno));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int r = connect(c->fd, (struct sockaddr *)&ss, sslen);
  if (r != 0 && errno != EINPROGRESS) die("connect: %s", strerror(errno));
  c->state = S_CONNECTING;
  set_events(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void on_connected (struct client *c) {
  int err = 0;
  socklen_t el = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
  if (err != 0) { fprintf(stderr, "gen: connect: %s\n", strerror(err)); kill_client(c); return; }
  c->state = S_HANDSHAKE;
  c->want_out = 0;
  set_events(c, EPOLLIN, EPOLL_CTL_MOD);
  char req[512];
  int n = snprintf(req, sizeof req,
    "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", host_header);
  append(c, req, (size_t)n);
}

static double relay_quantile (double q) {
  if (relay_count == 0) return -1;
  uint64_t rank = (uint64_t)(q * (double)(relay_count - 1)) + 1, seen = 0;
  for (uint32_t i = 0; i < RELAY_BUCKETS; i++) {
    seen += relay_hist[i];
    if (seen >= rank) return (i + 0.5) * 10.0;
  }
  return -1;
}

static void usage (void) {
  die("usage: ws --port P [--host H] [--window W] [--offers N] [--pid PID] [--torrents T] [--peers P] "
      "[--warmup S] [--warmup-max S] [--duration S] [--windows N]");
}

int main (int argc, char **argv) {
  common_defaults(&O);
  for (int i = 1; i < argc; i++) {
    if (common_arg(&O, argc, argv, &i)) continue;
    if (strcmp(argv[i], "--window") == 0 && i + 1 < argc) window_n = atoi(argv[++i]);
    else if (strcmp(argv[i], "--offers") == 0 && i + 1 < argc) offers_n = atoi(argv[++i]);
    else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) timeout_ms = atoi(argv[++i]);
    else usage();
  }
  if (O.port <= 0 || window_n < 1 || offers_n < 0 || offers_n > 20 || O.torrents < 1 || O.peers < 1 || O.torrents % O.peers != 0) usage();
  signal(SIGPIPE, SIG_IGN);
  nclients = O.torrents;
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }

  memset(&ss, 0, sizeof ss);
  if (strchr(O.host, ':') != NULL) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)O.port);
    if (inet_pton(AF_INET6, O.host, &a->sin6_addr) != 1) die("bad host %s", O.host);
    sslen = sizeof *a;
    snprintf(host_header, sizeof host_header, "[%s]:%d", O.host, O.port);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)O.port);
    if (inet_pton(AF_INET, O.host, &a->sin_addr) != 1) die("bad host %s", O.host);
    sslen = sizeof *a;
    snprintf(host_header, sizeof host_header, "%s:%d", O.host, O.port);
  }

  ih_json = xcalloc(O.torrents, sizeof *ih_json);
  for (uint32_t t = 0; t < O.torrents; t++) {
    uint8_t h[20];
    info_hash_of(t, h);
    json_bin(h, 20, ih_json[t]);
  }
  pid_json = xcalloc(nclients, sizeof *pid_json);
  clients = xcalloc(nclients, sizeof *clients);
  dirty_list = xcalloc(nclients, sizeof *dirty_list);
  relay_hist = xcalloc(RELAY_BUCKETS, sizeof *relay_hist);
  for (uint32_t c = 0; c < nclients; c++) {
    uint8_t id[20];
    uint64_t s = 0x776562746f7272ull ^ ((uint64_t)c * 0x9e3779b97f4a7c15ull);
    memcpy(id, "-WW2000-", 8);
    uint64_t a = splitmix64(&s), b = splitmix64(&s);
    memcpy(id + 8, &a, 8);
    memcpy(id + 16, &b, 4);
    json_bin(id, 20, pid_json[c]);
    clients[c].fd = -1;
    clients[c].idx = c;
  }
  ep = epoll_create1(0);

  /* Join stage: connect everyone, announce everywhere without offers. */
  warm_total = (uint64_t)nclients * O.peers;
  uint64_t t0 = now_ns(), t = t0;
  uint32_t next_connect = 0;
  struct epoll_event evs[1024];
  int stage_join = 1;
  uint64_t last_scan = t0;
  phase.o = &O;
  for (;;) {
    t = now_ns();
    if (stage_join) {
      int handshaking = (int)(next_connect - opened - dead_clients);
      while (next_connect < nclients && handshaking < 256) { start_connect(&clients[next_connect++]); handshaking++; }
      if (opened + dead_clients >= nclients && warm_done >= warm_total) {
        stage_join = 0;
        fprintf(stderr, "gen: joined %" PRIu64 " clients (%" PRIu64 " failed) in %.1f s\n", opened, dead_clients, (double)(t - t0) / 1e9);
        phase_init(&O);
        extra_names[0] = "offers_received";
        extra_names[1] = "answers_sent";
        extra_names[2] = "answers_received";
        extra_names[3] = "unsolicited";
        extra_names[4] = "closed";
        extra_names[5] = "relay_p50_us";
        extra_names[6] = "relay_p99_us";
      } else if ((double)(t - t0) / 1e9 > O.warmup_max_s) {
        die("join stage incomplete after %.0f s: %" PRIu64 "/%u open, %" PRIu64 "/%" PRIu64 " join announces answered",
            O.warmup_max_s, opened, nclients, warm_done, warm_total);
      }
    } else {
      int was_measuring = phase.measuring;
      if (phase.measuring && t >= phase.window_end_ns) {
        win.extra[5] = (uint64_t)relay_quantile(0.5);
        win.extra[6] = (uint64_t)relay_quantile(0.99);
      }
      if (phase_tick(t)) break;
      if (phase.measuring && (!was_measuring || phase.window_start_ns == t)) {
        memset(relay_hist, 0, RELAY_BUCKETS * sizeof *relay_hist);
        relay_count = 0;
      }
      /* An announce unanswered for --timeout-ms frees its slot and counts as a timeout. */
      if (t - last_scan > 100000000ull) {
        last_scan = t;
        for (uint32_t i = 0; i < nclients; i++) {
          struct client *c = &clients[i];
          if (c->busy && t - c->sent_ns > (uint64_t)timeout_ms * 1000000ull) {
            c->busy = 0;
            outstanding--;
            if (phase.measuring && c->counted) win.timeouts++;
          }
        }
      }
      /* Keep the window full: each announce from a different idle client. */
      uint32_t tries = 0;
      while (outstanding < window_n && tries < nclients) {
        uint64_t g = next_announce++;
        struct client *c = &clients[g % nclients];
        tries++;
        if (c->state != S_OPEN || c->busy) continue;
        uint32_t k = (uint32_t)((g / nclients) % O.peers);
        c->busy = 1;
        c->busy_torrent = torrent_of(c->idx, k);
        c->counted = phase.measuring;
        c->sent_ns = t;
        outstanding++;
        send_announce(c, k, 0, t);
      }
    }
    for (size_t i = 0; i < ndirty; i++) { dirty_list[i]->dirty = 0; flush_client(dirty_list[i]); }
    ndirty = 0;
    int n = epoll_wait(ep, evs, 1024, 10);
    t = now_ns();
    for (int e = 0; e < n; e++) {
      struct client *c = evs[e].data.ptr;
      if (c->fd < 0) continue;
      if (c->state == S_CONNECTING) { on_connected(c); continue; }
      if (evs[e].events & EPOLLOUT) flush_client(c);
      if (c->fd >= 0 && (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) on_readable(c, t);
    }
    if (n > 0) coalesce_pause(&O);
  }
  return 0;
}
