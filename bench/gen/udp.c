/*
 * UDP tracker load generator (BEP 15), IPv4 or IPv6: announce or scrape.
 *
 * `--sockets S` connected UDP sockets, each one simulated client with its own source port: it
 * sends one connect request, then keeps `--window W` requests outstanding with that connection
 * id (renewed every 30 s, well inside every tracker's validity window). A response frees its
 * slot and the slot's next request goes out in the same sendmmsg batch; responses are read with
 * recvmmsg, so the generator costs few system calls per request. A request unanswered after
 * `--timeout-ms` counts as a timeout and its slot sends a fresh one (stale answers are ignored by
 * transaction id).
 *
 * Announces walk the data set of common.h; the first pass uses event "started" (and `--full-pass`
 * makes warm-up wait for it), later ones event none, numwant -1 (the tracker's default). Scrape
 * asks for `--hashes N` consecutive torrents per request; with `--full-pass` its warm-up first
 * announces every peer once so the swarms exist (the harness populates them instead).
 *
 * Output: one JSON line per measurement window (see common.h); `items` is the number of peers
 * (announce: 6-byte IPv4 or 18-byte IPv6 entries, by the socket's family) or hash entries (scrape)
 * in the responses, `peer_bytes` the bytes of peer entries in announce responses.
 *
 *   udp --port P [--host 127.0.0.1|::1] [--mode announce|scrape] [--pid SERVER_PID] ...
 *   udp --print-hashes T       (hex info hashes of the data set, one a line: opentracker's whitelist)
 */
#include "common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define MAX_BATCH 64
#define PKT_MAX 2048
#define PROTOCOL_ID 0x41727101980ull

struct slot {
  uint32_t tid;
  uint64_t sent_ns;
  uint8_t busy, is_connect, counted_in_window;
};

struct usock {
  int fd;
  uint64_t conn_id;
  int have_conn;
  uint64_t conn_time_ns;
  uint32_t seq;
  struct slot *slots; /* window + 1: the last one carries connect requests */
  /* Requests queued for the next sendmmsg. */
  int nq;
  uint8_t qbuf[MAX_BATCH][PKT_MAX];
  struct iovec qiov[MAX_BATCH];
  struct mmsghdr qmsg[MAX_BATCH];
};

static struct common_opts O;
static int mode_scrape = 0, nsockets = 8, window = 16, hashes_per_scrape = 1, timeout_ms = 1000;
static int family = AF_INET;
static struct usock *socks;
static uint64_t next_peer = 0, total_peers;
static uint8_t (*hashes)[20];

static void put32 (uint8_t *p, uint32_t v) { v = htonl(v); memcpy(p, &v, 4); }
static void put64 (uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }
static uint32_t get32 (const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return ntohl(v); }
static uint64_t get64 (const uint8_t *p) { return ((uint64_t)get32(p) << 32) | get32(p + 4); }

/* Builds the next request for slot `si` of socket `s` into its send queue. */
static void queue_request (struct usock *s, int si, uint64_t t) {
  if (s->nq >= MAX_BATCH) die("send queue overflow");
  struct slot *sl = &s->slots[si];
  uint8_t *b = s->qbuf[s->nq];
  size_t len;
  s->seq++;
  sl->tid = ((s->seq & 0xffff) << 16) | (uint32_t)si;
  if (sl->is_connect) {
    put64(b, PROTOCOL_ID);
    put32(b + 8, 0);
    put32(b + 12, sl->tid);
    len = 16;
  } else {
    int announce = !mode_scrape || !phase.pass_done;
    if (announce) {
      uint64_t k = next_peer++;
      if (k + 1 >= total_peers && !phase.pass_done) phase.pass_done = 1;
      uint32_t tt = (uint32_t)(k % O.torrents), j = (uint32_t)((k / O.torrents) % O.peers);
      int first_pass = k < total_peers;
      put64(b, s->conn_id);
      put32(b + 8, 1);
      put32(b + 12, sl->tid);
      memcpy(b + 16, hashes[tt], 20);
      peer_id_of(tt, j, b + 36);
      put64(b + 56, 0);                 /* downloaded */
      put64(b + 64, left_of(j));        /* left */
      put64(b + 72, 0);                 /* uploaded */
      put32(b + 80, first_pass ? 2 : 0); /* event: started, then none */
      put32(b + 84, 0);                 /* ip: the source address */
      put32(b + 88, (uint32_t)(k * 2654435761u)); /* key */
      put32(b + 92, 0xffffffffu);       /* num_want -1: the tracker's default */
      uint16_t port = htons(port_of(tt, j, O.peers));
      memcpy(b + 96, &port, 2);
      len = 98;
    } else {
      put64(b, s->conn_id);
      put32(b + 8, 2);
      put32(b + 12, sl->tid);
      uint64_t k = next_peer;
      next_peer += (uint64_t)hashes_per_scrape;
      for (int h = 0; h < hashes_per_scrape; h++) memcpy(b + 16 + 20 * h, hashes[(k + (uint64_t)h) % O.torrents], 20);
      len = 16 + 20 * (size_t)hashes_per_scrape;
    }
  }
  s->qiov[s->nq].iov_base = b;
  s->qiov[s->nq].iov_len = len;
  memset(&s->qmsg[s->nq].msg_hdr, 0, sizeof s->qmsg[s->nq].msg_hdr);
  s->qmsg[s->nq].msg_hdr.msg_iov = &s->qiov[s->nq];
  s->qmsg[s->nq].msg_hdr.msg_iovlen = 1;
  s->nq++;
  sl->busy = 1;
  sl->sent_ns = t;
  sl->counted_in_window = (uint8_t)phase.measuring;
}

static void flush_queue (struct usock *s) {
  int off = 0;
  while (off < s->nq) {
    int n = sendmmsg(s->fd, s->qmsg + off, (unsigned)(s->nq - off), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == ENOBUFS || errno == ECONNREFUSED) {
        /* Dropped on our side: the slots time out and resend. */
        if (phase.measuring) win.extra[0] += (uint64_t)(s->nq - off);
        break;
      }
      die("sendmmsg: %s", strerror(errno));
    }
    off += n;
  }
  s->nq = 0;
}

static void on_packet (struct usock *s, const uint8_t *p, size_t len, uint64_t t) {
  if (len < 8) { if (phase.measuring) win.bad++; return; }
  uint32_t action = get32(p), tid = get32(p + 4);
  int si = (int)(tid & 0xffff);
  if (si > window) { if (phase.measuring) win.bad++; return; }
  struct slot *sl = &s->slots[si];
  if (!sl->busy || sl->tid != tid) return; /* stale: that request already timed out */
  sl->busy = 0;
  if (sl->is_connect) {
    if (action == 0 && len >= 16) {
      s->conn_id = get64(p + 8);
      s->have_conn = 1;
      s->conn_time_ns = t;
    }
    return;
  }
  if (phase.measuring && sl->counted_in_window) {
    if (action == 3) win.errors++;
    else if (action == 1 && len >= 20) {
      win.responses++;
      win.items += (len - 20) / (family == AF_INET6 ? 18 : 6);
      win.extra[1] += len - 20;
      hist_add(t - sl->sent_ns);
    } else if (action == 2 && len >= 8) {
      win.responses++;
      win.items += (len - 8) / 12;
      hist_add(t - sl->sent_ns);
    } else win.bad++;
  }
  if (!phase.finished) queue_request(s, si, t);
}

static void usage (void) {
  die("usage: udp --port P [--host H] [--mode announce|scrape] [--sockets S] [--window W] [--hashes N] "
      "[--timeout-ms MS] [--pid PID] [--torrents T] [--peers P] [--warmup S] [--full-pass] [--duration S] [--windows N]");
}

int main (int argc, char **argv) {
  common_defaults(&O);
  for (int i = 1; i < argc; i++) {
    if (common_arg(&O, argc, argv, &i)) continue;
    if (strcmp(argv[i], "--print-hashes") == 0 && i + 1 < argc) { print_hashes((uint32_t)strtoul(argv[i + 1], NULL, 10)); return 0; }
    else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) mode_scrape = strcmp(argv[++i], "scrape") == 0;
    else if (strcmp(argv[i], "--sockets") == 0 && i + 1 < argc) nsockets = atoi(argv[++i]);
    else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc) window = atoi(argv[++i]);
    else if (strcmp(argv[i], "--hashes") == 0 && i + 1 < argc) hashes_per_scrape = atoi(argv[++i]);
    else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) timeout_ms = atoi(argv[++i]);
    else usage();
  }
  if (O.port <= 0 || nsockets < 1 || window < 1 || window > 60000 || O.torrents < 1 || O.peers < 1 ||
      hashes_per_scrape < 1 || hashes_per_scrape > 74) usage();
  signal(SIGPIPE, SIG_IGN);
  total_peers = (uint64_t)O.torrents * O.peers;
  hashes = xcalloc(O.torrents, 20);
  for (uint32_t t = 0; t < O.torrents; t++) info_hash_of(t, hashes[t]);

  struct sockaddr_storage ss;
  socklen_t sslen;
  memset(&ss, 0, sizeof ss);
  if (strchr(O.host, ':') != NULL) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    family = AF_INET6;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)O.port);
    if (inet_pton(AF_INET6, O.host, &a->sin6_addr) != 1) die("bad host %s", O.host);
    sslen = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)O.port);
    if (inet_pton(AF_INET, O.host, &a->sin_addr) != 1) die("bad host %s", O.host);
    sslen = sizeof *a;
  }

  int ep = epoll_create1(0);
  socks = xcalloc((size_t)nsockets, sizeof *socks);
  for (int i = 0; i < nsockets; i++) {
    struct usock *s = &socks[i];
    s->fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (s->fd < 0) die("socket: %s", strerror(errno));
    int sz = 4 << 20;
    setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    if (connect(s->fd, (struct sockaddr *)&ss, sslen) != 0) die("connect: %s", strerror(errno));
    s->slots = xcalloc((size_t)window + 1, sizeof(struct slot));
    s->slots[window].is_connect = 1;
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
  }

  /* Connect every socket (retrying a lost connect), bounded by 10 s. */
  uint64_t t0 = now_ns(), last_try = 0;
  for (;;) {
    uint64_t t = now_ns();
    int missing = 0;
    for (int i = 0; i < nsockets; i++) if (!socks[i].have_conn) missing++;
    if (missing == 0) break;
    if (t - t0 > 10000000000ull) die("no connect response from %s:%d within 10 s", O.host, O.port);
    if (t - last_try > 500000000ull) {
      last_try = t;
      for (int i = 0; i < nsockets; i++) {
        if (socks[i].have_conn) continue;
        queue_request(&socks[i], window, t);
        flush_queue(&socks[i]);
      }
    }
    struct epoll_event evs[64];
    int n = epoll_wait(ep, evs, 64, 50);
    for (int e = 0; e < n; e++) {
      struct usock *s = &socks[evs[e].data.u32];
      uint8_t buf[PKT_MAX];
      ssize_t r;
      while ((r = recv(s->fd, buf, sizeof buf, 0)) > 0) on_packet(s, buf, (size_t)r, now_ns());
    }
  }

  phase_init(&O);
  extra_names[0] = "send_dropped";
  extra_names[1] = "peer_bytes";
  uint64_t t = now_ns();
  for (int i = 0; i < nsockets; i++) {
    for (int si = 0; si < window; si++) {
      queue_request(&socks[i], si, t);
      if (socks[i].nq == MAX_BATCH) flush_queue(&socks[i]);
    }
    flush_queue(&socks[i]);
  }

  static uint8_t rbuf[MAX_BATCH][PKT_MAX];
  static struct iovec riov[MAX_BATCH];
  static struct mmsghdr rmsg[MAX_BATCH];
  for (int i = 0; i < MAX_BATCH; i++) {
    riov[i].iov_base = rbuf[i];
    riov[i].iov_len = PKT_MAX;
    rmsg[i].msg_hdr.msg_iov = &riov[i];
    rmsg[i].msg_hdr.msg_iovlen = 1;
  }
  uint64_t last_scan = t;
  for (;;) {
    t = now_ns();
    if (phase_tick(t)) break;
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, 10);
    for (int e = 0; e < n; e++) {
      struct usock *s = &socks[evs[e].data.u32];
      for (;;) {
        int r = recvmmsg(s->fd, rmsg, MAX_BATCH, MSG_DONTWAIT, NULL);
        if (r <= 0) break;
        uint64_t tr = now_ns();
        for (int m = 0; m < r; m++) {
          on_packet(s, rbuf[m], rmsg[m].msg_len, tr);
          if (s->nq == MAX_BATCH) flush_queue(s);
        }
        flush_queue(s);
        if (r < MAX_BATCH) break;
      }
    }
    if (n > 0) coalesce_pause(&O);
    t = now_ns();
    if (t - last_scan > 20000000ull) {
      last_scan = t;
      for (int i = 0; i < nsockets; i++) {
        struct usock *s = &socks[i];
        for (int si = 0; si < window; si++) {
          struct slot *sl = &s->slots[si];
          if (sl->busy && t - sl->sent_ns > (uint64_t)timeout_ms * 1000000ull) {
            if (phase.measuring && sl->counted_in_window) win.timeouts++;
            queue_request(s, si, t);
            if (s->nq == MAX_BATCH) flush_queue(s);
          }
        }
        /* Renew the connection id every 30 s (the connect slot is not counted). */
        struct slot *cs = &s->slots[window];
        if ((t - s->conn_time_ns > 30000000000ull && !cs->busy) || (cs->busy && t - cs->sent_ns > 1000000000ull)) queue_request(s, window, t);
        flush_queue(s);
      }
    }
  }
  return 0;
}
