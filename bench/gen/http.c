/*
 * HTTP tracker load generator: GET /announce, IPv4 or IPv6, one request in flight per
 * connection (no pipelining).
 *
 *   --keepalive   (default) `--conns C` persistent connections, each sending its next request as
 *                 soon as the previous response is complete. A server that closes after a
 *                 response (opentracker does; "Connection: close" in the response or HTTP/1.0
 *                 without keep-alive) is reconnected, and that reconnect counts in `reconnects`
 *                 and in the latency of the next request.
 *   --close       every request on a fresh connection with `Connection: close`; `--conns C`
 *                 of them in flight at once. Latency runs from connect() to the last byte.
 *
 * Requests look like a libtorrent client's: percent-encoded binary info_hash, peer_id, port,
 * uploaded, downloaded, left, event (started on the first pass), key, numwant, compact=1,
 * no_peer_id=1, with Host, User-Agent and Accept-Encoding headers. Responses are read by
 * Content-Length, chunked encoding, or until the server closes; a body holding "failure reason"
 * counts as an error, a status other than 200 as `bad`. `items` counts compact peers returned.
 */
#include "common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define RBUF 16384

enum { C_IDLE, C_CONNECTING, C_WRITING, C_READING };

struct conn {
  int fd;
  int state;
  uint64_t start_ns;      /* when this request began (connect or send) */
  int counted;            /* started inside the current window */
  size_t wlen, woff;
  char wbuf[1024];
  size_t rlen;
  char rbuf[RBUF];
};

static struct common_opts O;
static int keepalive = 1, nconns = 64;
static int ep;
static struct conn *conns;
static struct sockaddr_storage ss;
static socklen_t sslen;
static uint64_t next_peer = 0, total_peers;
static char (*hash_enc)[61];  /* percent-encoded info hashes */
static char host_header[96];

static void enc_bytes (const uint8_t *b, size_t n, char *out) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    uint8_t c = b[i];
    if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' || c == '_' || c == '.' || c == '~') {
      *out++ = (char)c;
    } else {
      *out++ = '%'; *out++ = hex[c >> 4]; *out++ = hex[c & 15];
    }
  }
  *out = 0;
}

static void build_request (struct conn *c) {
  uint64_t k = next_peer++;
  if (k + 1 >= total_peers) phase.pass_done = 1;
  uint32_t t = (uint32_t)(k % O.torrents), j = (uint32_t)((k / O.torrents) % O.peers);
  uint8_t pid[20];
  char pid_enc[61];
  peer_id_of(t, j, pid);
  enc_bytes(pid, 20, pid_enc);
  int n = snprintf(c->wbuf, sizeof c->wbuf,
    "GET /announce?info_hash=%s&peer_id=%s&port=%u&uploaded=0&downloaded=0&left=%" PRIu64 "%s"
    "&key=%08X&numwant=50&compact=1&no_peer_id=1 HTTP/1.1\r\n"
    "Host: %s\r\nUser-Agent: qBittorrent/4.6.3\r\nAccept-Encoding: gzip\r\n%s\r\n",
    hash_enc[t], pid_enc, (unsigned)port_of(t, j, O.peers), left_of(j), k < total_peers ? "&event=started" : "",
    (unsigned)(k * 2654435761u), host_header, keepalive ? "" : "Connection: close\r\n");
  if (n <= 0 || (size_t)n >= sizeof c->wbuf) die("request too long");
  c->wlen = (size_t)n;
  c->woff = 0;
  c->rlen = 0;
}

static void set_events (struct conn *c, uint32_t events, int op) {
  struct epoll_event ev = { .events = events, .data.ptr = c };
  if (epoll_ctl(ep, op, c->fd, &ev) != 0) die("epoll_ctl: %s", strerror(errno));
}

static void conn_close (struct conn *c) {
  if (c->fd >= 0) close(c->fd); /* also removes it from epoll */
  c->fd = -1;
  c->state = C_IDLE;
}

static void try_write (struct conn *c);

/*
 * Opens a connection for the request already built in c->wbuf and sends it as soon as it can:
 * on loopback the handshake has usually completed when connect() returns. The socket is watched
 * edge-triggered for both directions from the start, so no epoll_ctl per request.
 */
static void conn_open (struct conn *c) {
  c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) die("socket: %s", strerror(errno));
  if (keepalive) {
    /* Several requests per connection: never let Nagle hold one back. (A lone write on a new
       connection goes out at once anyway.) */
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  int r = connect(c->fd, (struct sockaddr *)&ss, sslen);
  if (r != 0 && errno != EINPROGRESS) {
    if (phase.measuring) win.extra[0]++;
    close(c->fd);
    c->fd = -1;
    c->state = C_IDLE;
    return;
  }
  set_events(c, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, EPOLL_CTL_ADD);
  c->state = C_CONNECTING;
  try_write(c);
}

/* Starts the next request on c: on its open connection (keep-alive) or a new one. */
static void next_request (struct conn *c, uint64_t t) {
  if (phase.finished) { conn_close(c); return; }
  build_request(c);
  c->start_ns = t;
  c->counted = phase.measuring;
  if (c->fd >= 0) {
    c->state = C_WRITING;
    try_write(c);
  } else {
    conn_open(c);
  }
}

/* Sends what is left of the request; on EAGAIN (not connected yet, or a full buffer) the next
   EPOLLOUT edge calls again. */
static void try_write (struct conn *c) {
  while (c->woff < c->wlen) {
    ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == ENOTCONN) return;
      if (c->state == C_CONNECTING) {
        /* The connection failed (refused, reset): retried from the main loop. */
        if (phase.measuring) win.extra[0]++;
        conn_close(c);
        return;
      }
      /* The server closed a kept-alive connection before we wrote: reconnect, same request. */
      if (phase.measuring) win.reconnects++;
      conn_close(c);
      c->woff = 0;
      conn_open(c);
      return;
    }
    c->woff += (size_t)n;
  }
  c->state = C_READING;
}

static int ci_prefix (const char *s, const char *end, const char *p) {
  size_t n = strlen(p);
  return (size_t)(end - s) >= n && strncasecmp(s, p, n) == 0;
}

/*
 * Is the response in c->rbuf complete? Returns 1 complete, 0 need more, -1 malformed.
 * `eof`: the server has closed. Sets *server_closes when the server will close after it.
 */
static int response_complete (struct conn *c, int eof, int *server_closes, size_t *body_off, size_t *body_len) {
  char *buf = c->rbuf, *end = buf + c->rlen;
  char *hdr_end = memmem(buf, c->rlen, "\r\n\r\n", 4);
  if (hdr_end == NULL) return eof ? -1 : 0;
  long clen = -1;
  int chunked = 0, http10 = ci_prefix(buf, end, "HTTP/1.0"), ka_header = 0, close_header = 0;
  for (char *line = memchr(buf, '\n', (size_t)(hdr_end - buf)); line != NULL && line < hdr_end; line = memchr(line + 1, '\n', (size_t)(hdr_end - line))) {
    char *l = line + 1;
    if (ci_prefix(l, hdr_end, "content-length:")) clen = strtol(l + 15, NULL, 10);
    else if (ci_prefix(l, hdr_end, "transfer-encoding:") && memmem(l, (size_t)(hdr_end - l) < 40 ? (size_t)(hdr_end - l) : 40, "chunked", 7) != NULL) chunked = 1;
    else if (ci_prefix(l, hdr_end, "connection:")) {
      char *v = l + 11;
      while (*v == ' ') v++;
      if (ci_prefix(v, hdr_end, "close")) close_header = 1;
      else if (ci_prefix(v, hdr_end, "keep-alive")) ka_header = 1;
    }
  }
  *server_closes = close_header || (http10 && !ka_header);
  char *body = hdr_end + 4;
  *body_off = (size_t)(body - buf);
  if (clen >= 0) {
    if (end - body < clen) return eof ? -1 : 0;
    *body_len = (size_t)clen;
    return 1;
  }
  if (chunked) {
    /* Only the end matters: walk the chunk sizes until the 0-size chunk. */
    char *p = body;
    size_t total = 0;
    for (;;) {
      char *nl = memmem(p, (size_t)(end - p), "\r\n", 2);
      if (nl == NULL) return eof ? -1 : 0;
      long sz = strtol(p, NULL, 16);
      if (sz < 0) return -1;
      if (sz == 0) {
        if (memmem(nl, (size_t)(end - nl), "\r\n\r\n", 4) == NULL) return eof ? -1 : 0;
        *body_len = total; /* the body stays chunk-framed in the buffer; fine for the checks */
        return 1;
      }
      if (end - (nl + 2) < sz + 2) return eof ? -1 : 0;
      total += (size_t)sz;
      p = nl + 2 + sz + 2;
    }
  }
  /* Neither: the body runs until the server closes. */
  *server_closes = 1;
  if (!eof) return 0;
  *body_len = (size_t)(end - body);
  return 1;
}

/* Counts compact peers in a bencoded announce body ("5:peers<len>:..."). */
static uint64_t count_peers (const char *body, size_t len) {
  const char *p = memmem(body, len, "5:peers", 7);
  if (p == NULL) return 0;
  long n = strtol(p + 7, NULL, 10);
  return n > 0 ? (uint64_t)n / 6 : 0;
}

/* Reads until the response is complete (then stops: nothing else is due on this connection),
   the socket is drained (wait for the next EPOLLIN edge) or the server closes. */
static void on_readable (struct conn *c, uint64_t t, uint32_t ev) {
  int eof = 0, r = 0, server_closes = 0;
  size_t body_off = 0, body_len = 0;
  for (;;) {
    if (c->rlen >= RBUF) { r = -1; break; }
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, RBUF - c->rlen, 0);
    if (n > 0) {
      c->rlen += (size_t)n;
      r = response_complete(c, 0, &server_closes, &body_off, &body_len);
      if (r != 0) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    eof = 1; /* closed, or reset */
    r = response_complete(c, 1, &server_closes, &body_off, &body_len);
    if (r == 0) r = -1;
    break;
  }
  if (r < 0) {
    /* A kept-alive connection closed before any byte of the response: the server dropped it
       (idle or at its limit). Retry the same request on a new connection. */
    if (c->rlen == 0 && eof) {
      if (phase.measuring) win.reconnects++;
      conn_close(c);
      c->woff = 0;
      conn_open(c);
      return;
    }
    if (phase.measuring && c->counted) win.bad++;
    conn_close(c);
    next_request(c, t);
    return;
  }
  if (phase.measuring && c->counted) {
    if (c->rlen < 12 || memcmp(c->rbuf + 9, "200", 3) != 0) win.bad++;
    else if (memmem(c->rbuf + body_off, body_len, "failure reason", 14) != NULL) win.errors++;
    else {
      win.responses++;
      win.items += count_peers(c->rbuf + body_off, c->rlen - body_off);
      hist_add(t - c->start_ns);
    }
  }
  /* A server that closes after answering without saying so (opentracker): its FIN came with the
     wakeup, so reconnect now rather than write into a closed connection. */
  if (ev & EPOLLRDHUP) server_closes = 1;
  if (!keepalive || server_closes || eof) {
    if (keepalive && phase.measuring) win.reconnects++;
    conn_close(c);
  }
  next_request(c, t);
}

static void usage (void) {
  die("usage: http --port P [--host H] [--keepalive|--close] [--conns C] [--pid PID] [--torrents T] [--peers P] "
      "[--warmup S] [--full-pass] [--duration S] [--windows N]");
}

int main (int argc, char **argv) {
  common_defaults(&O);
  for (int i = 1; i < argc; i++) {
    if (common_arg(&O, argc, argv, &i)) continue;
    if (strcmp(argv[i], "--keepalive") == 0) keepalive = 1;
    else if (strcmp(argv[i], "--close") == 0) keepalive = 0;
    else if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc) nconns = atoi(argv[++i]);
    else usage();
  }
  if (O.port <= 0 || nconns < 1 || O.torrents < 1 || O.peers < 1) usage();
  signal(SIGPIPE, SIG_IGN);
  total_peers = (uint64_t)O.torrents * O.peers;
  hash_enc = xcalloc(O.torrents, sizeof *hash_enc);
  for (uint32_t t = 0; t < O.torrents; t++) {
    uint8_t h[20];
    info_hash_of(t, h);
    enc_bytes(h, 20, hash_enc[t]);
  }
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

  ep = epoll_create1(0);
  conns = xcalloc((size_t)nconns, sizeof *conns);
  phase_init(&O);
  extra_names[0] = "connect_failed";
  uint64_t t = now_ns();
  for (int i = 0; i < nconns; i++) {
    conns[i].fd = -1;
    next_request(&conns[i], t);
  }
  struct epoll_event evs[512];
  uint64_t last_retry = t;
  for (;;) {
    t = now_ns();
    if (phase_tick(t)) break;
    int n = epoll_wait(ep, evs, 512, 10);
    t = now_ns();
    for (int e = 0; e < n; e++) {
      struct conn *c = evs[e].data.ptr;
      if (c->fd < 0) continue;
      uint32_t ev = evs[e].events;
      if ((c->state == C_CONNECTING || c->state == C_WRITING) && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) try_write(c);
      if (c->fd >= 0 && c->state == C_READING && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) on_readable(c, t, ev);
    }
    if (n > 0) coalesce_pause(&O);
    /* Connections that failed to connect get a new attempt (same request) every 10 ms. */
    if (t - last_retry > 10000000ull) {
      last_retry = t;
      for (int i = 0; i < nconns; i++) {
        if (conns[i].fd < 0 && !phase.finished) { conns[i].woff = 0; conn_open(&conns[i]); }
      }
    }
  }
  return 0;
}
