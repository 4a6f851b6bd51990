/*
 * Batched UDP I/O for the tracker (Linux): recvmmsg/sendmmsg on a non-blocking socket driven by a
 * uv_poll_t on the calling env's loop (so it works in worker threads too), plus listenFd() for a
 * shared-port TCP listener. JS sees four ArrayBuffers per socket: received datagrams (data slab
 * and per-datagram meta) and replies to send (same layout). One JS call per batch of up to
 * UB_BATCH datagrams; it returns how many reply slots it filled.
 *
 * Meta record (UB_META_SIZE bytes per slot, native byte order for the integers):
 *   0 u32 length | 4 u16 port | 6 u8 family (4 or 6) | 7 u8 unused | 8 address[16] (network order,
 *   IPv4 in the first 4 bytes) | 24 u32 IPv6 scope id | 28 unused
 */
#define _GNU_SOURCE /* recvmmsg, sendmmsg */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define UB_BATCH 64
/* Largest datagram kept; longer ones are reported with their true length and cut. */
#define UB_SLOT_SIZE 2048
#define UB_META_SIZE 32
/* Replies waiting for the socket to become writable; beyond this they are dropped and counted. */
#define UB_QUEUE_MAX 4096
/* Batches read per readable event before yielding to the rest of the loop (level-triggered). */
#define UB_MAX_BATCHES_PER_WAKE 8

enum { ST_RECV_CALLS, ST_RECEIVED, ST_SEND_CALLS, ST_SENT, ST_QUEUED, ST_DROPPED, ST_EAGAIN, ST_SEND_ERRORS, ST_TRUNCATED, ST_COUNT };

typedef struct {
  struct sockaddr_storage addr;
  socklen_t addrlen;
  uint32_t len;
  uint8_t data[UB_SLOT_SIZE];
} queued_t;

typedef struct ub_socket {
  napi_env env;
  uv_poll_t poll;
  int fd;
  int family;
  int open;        /* fd open and polled */
  int handle_live; /* uv handle not yet closed */
  int finalized;   /* JS object gone */
  int polling_writable;
  napi_ref self;     /* strong while open: keeps the object, its buffers and callback alive */
  napi_ref callback;
  napi_async_context async;
  uint8_t *recv_data, *recv_meta, *send_data, *send_meta;
  struct mmsghdr rmsg[UB_BATCH];
  struct iovec riov[UB_BATCH];
  struct sockaddr_storage raddr[UB_BATCH];
  struct mmsghdr smsg[UB_BATCH];
  struct iovec siov[UB_BATCH];
  struct sockaddr_storage saddr[UB_BATCH];
  struct mmsghdr qmsg[UB_BATCH]; /* for the ring, apart from smsg: send_slots uses both at once */
  struct iovec qiov[UB_BATCH];
  queued_t *queue; /* ring, allocated on first EAGAIN */
  uint32_t qhead, qcount;
  double stats[ST_COUNT];
} ub_socket;

/* ------------------------------------------------------------------------------------------- */
/* Errors: thrown as Error with code (errno name), errno (negative, as Node), syscall. */

static void throw_errno (napi_env env, int err, const char *syscall, const char *detail) {
  char msg[256];
  const char *name = uv_err_name(-err);
  if (detail != NULL && detail[0] != '\0') snprintf(msg, sizeof msg, "%s %s %s", syscall, name, detail);
  else snprintf(msg, sizeof msg, "%s %s", syscall, name);
  napi_value m, code, e, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, m, &e);
  napi_create_int32(env, -err, &v);
  napi_set_named_property(env, e, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "syscall", v);
  napi_throw(env, e);
}

static void throw_type (napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)

/* ------------------------------------------------------------------------------------------- */
/* Addresses */

static int parse_addr (int family, const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  if (family == 4) {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (host[0] == '\0') a->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return -1;
    *len = sizeof *a;
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (host[0] == '\0') a->sin6_addr = in6addr_any;
    else if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return -1;
    *len = sizeof *a;
  }
  return 0;
}

static void meta_from_addr (uint8_t *m, uint32_t len, const struct sockaddr_storage *ss) {
  memset(m, 0, UB_META_SIZE);
  memcpy(m, &len, 4);
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    uint16_t port = ntohs(a->sin_port);
    memcpy(m + 4, &port, 2);
    m[6] = 4;
    memcpy(m + 8, &a->sin_addr, 4);
  } else {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    uint16_t port = ntohs(a->sin6_port);
    memcpy(m + 4, &port, 2);
    m[6] = 6;
    memcpy(m + 8, &a->sin6_addr, 16);
    memcpy(m + 24, &a->sin6_scope_id, 4);
  }
}

/* The destination of a reply from its meta record; 0 when it does not fit this socket. */
static socklen_t addr_from_meta (const ub_socket *s, const uint8_t *m, struct sockaddr_storage *ss) {
  uint16_t port;
  memcpy(&port, m + 4, 2);
  memset(ss, 0, sizeof(struct sockaddr_in6));
  if (s->family == 4) {
    if (m[6] != 4) return 0;
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    memcpy(&a->sin_addr, m + 8, 4);
    return sizeof *a;
  }
  if (m[6] != 6) return 0;
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(port);
  memcpy(&a->sin6_addr, m + 8, 16);
  memcpy(&a->sin6_scope_id, m + 24, 4);
  return sizeof *a;
}

/* ------------------------------------------------------------------------------------------- */
/* Sending */

static void update_poll (ub_socket *s);

/* Copies a reply into the ring; false when the ring is full (the reply is dropped). */
static int enqueue (ub_socket *s, const uint8_t *data, uint32_t len, const struct sockaddr_storage *addr, socklen_t addrlen) {
  if (s->queue == NULL) {
    s->queue = malloc(sizeof(queued_t) * UB_QUEUE_MAX);
    if (s->queue == NULL) return 0;
  }
  if (s->qcount == UB_QUEUE_MAX) return 0;
  queued_t *q = &s->queue[(s->qhead + s->qcount) % UB_QUEUE_MAX];
  memcpy(&q->addr, addr, addrlen);
  q->addrlen = addrlen;
  q->len = len;
  memcpy(q->data, data, len);
  s->qcount++;
  return 1;
}

/*
 * sendmmsg over msgs[0..n): continues after a partial send from the first unsent message, skips a
 * message the kernel refuses for itself (bad destination, too big), stops at EAGAIN/ENOBUFS.
 * Returns how many leading messages are done (sent or refused); the rest must wait.
 */
static unsigned send_batch (ub_socket *s, struct mmsghdr *msgs, unsigned n) {
  unsigned done = 0;
  while (done < n) {
    s->stats[ST_SEND_CALLS]++;
    int r = sendmmsg(s->fd, msgs + done, n - done, 0);
    if (r > 0) {
      done += (unsigned)r;
      s->stats[ST_SENT] += r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      s->stats[ST_EAGAIN]++;
      break;
    }
    /* This one message failed (sendmmsg reports an error only for the first): drop it. */
    s->stats[ST_SEND_ERRORS]++;
    done++;
  }
  return done;
}

/* Sends queued replies in order; true when the ring is empty afterwards. */
static int flush_queue (ub_socket *s) {
  while (s->qcount > 0) {
    unsigned n = s->qcount < UB_BATCH ? s->qcount : UB_BATCH;
    for (unsigned i = 0; i < n; i++) {
      queued_t *q = &s->queue[(s->qhead + i) % UB_QUEUE_MAX];
      s->qiov[i].iov_base = q->data;
      s->qiov[i].iov_len = q->len;
      memset(&s->qmsg[i], 0, sizeof s->qmsg[i]);
      s->qmsg[i].msg_hdr.msg_name = &q->addr;
      s->qmsg[i].msg_hdr.msg_namelen = q->addrlen;
      s->qmsg[i].msg_hdr.msg_iov = &s->qiov[i];
      s->qmsg[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned done = send_batch(s, s->qmsg, n);
    s->qhead = (s->qhead + done) % UB_QUEUE_MAX;
    s->qcount -= done;
    if (done < n) return 0;
  }
  return 1;
}

/* Sends reply slots [0, n) of the send slab (or queues them behind earlier replies). */
static void send_slots (ub_socket *s, unsigned n) {
  unsigned k = 0;
  for (unsigned i = 0; i < n; i++) {
    const uint8_t *m = s->send_meta + (size_t)i * UB_META_SIZE;
    uint32_t len;
    memcpy(&len, m, 4);
    socklen_t alen = addr_from_meta(s, m, &s->saddr[k]);
    if (len > UB_SLOT_SIZE || alen == 0) { s->stats[ST_SEND_ERRORS]++; continue; }
    s->siov[k].iov_base = s->send_data + (size_t)i * UB_SLOT_SIZE;
    s->siov[k].iov_len = len;
    memset(&s->smsg[k], 0, sizeof s->smsg[k]);
    s->smsg[k].msg_hdr.msg_name = &s->saddr[k];
    s->smsg[k].msg_hdr.msg_namelen = alen;
    s->smsg[k].msg_hdr.msg_iov = &s->siov[k];
    s->smsg[k].msg_hdr.msg_iovlen = 1;
    k++;
  }
  /* Order matters to clients only per source, but keeping it overall is free: queue behind. */
  unsigned done = (s->qcount == 0 || flush_queue(s)) ? send_batch(s, s->smsg, k) : 0;
  for (unsigned i = done; i < k; i++) {
    if (enqueue(s, s->siov[i].iov_base, (uint32_t)s->siov[i].iov_len, &s->saddr[i], s->smsg[i].msg_hdr.msg_namelen)) s->stats[ST_QUEUED]++;
    else s->stats[ST_DROPPED]++;
  }
  update_poll(s);
}

/* ------------------------------------------------------------------------------------------- */
/* Receiving */

static void on_poll (uv_poll_t *h, int status, int events);

static void update_poll (ub_socket *s) {
  if (!s->open) return;
  int want = s->qcount > 0;
  if (want == s->polling_writable) return;
  s->polling_writable = want;
  uv_poll_start(&s->poll, UV_READABLE | (want ? UV_WRITABLE : 0), on_poll);
}

static void call_js (ub_socket *s, unsigned n) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value self, cb, arg, result;
  napi_get_reference_value(env, s->self, &self);
  napi_get_reference_value(env, s->callback, &cb);
  napi_create_uint32(env, n, &arg);
  /* make_callback: async hooks context, and the microtask queue runs afterwards. */
  napi_status st = napi_make_callback(env, s->async, self, cb, 1, &arg, &result);
  if (st == napi_ok && s->open) {
    uint32_t replies = 0;
    if (napi_get_value_uint32(env, result, &replies) == napi_ok && replies > 0) {
      send_slots(s, replies > UB_BATCH ? UB_BATCH : replies);
    }
  } else if (st == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

static void on_readable (ub_socket *s) {
  for (int b = 0; b < UB_MAX_BATCHES_PER_WAKE && s->open; b++) {
    for (unsigned i = 0; i < UB_BATCH; i++) {
      s->rmsg[i].msg_hdr.msg_namelen = sizeof s->raddr[i];
      s->rmsg[i].msg_hdr.msg_flags = 0;
    }
    s->stats[ST_RECV_CALLS]++;
    /* MSG_TRUNC: msg_len is the datagram's true length, so JS can refuse oversized ones. */
    int n = recvmmsg(s->fd, s->rmsg, UB_BATCH, MSG_DONTWAIT | MSG_TRUNC, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      /* EAGAIN: drained. Any other error (ICMP-reported ones on Linux) is per packet: retry later. */
      return;
    }
    if (n == 0) return;
    for (int i = 0; i < n; i++) {
      uint32_t len = s->rmsg[i].msg_len;
      if (len > UB_SLOT_SIZE) s->stats[ST_TRUNCATED]++;
      meta_from_addr(s->recv_meta + (size_t)i * UB_META_SIZE, len, &s->raddr[i]);
    }
    s->stats[ST_RECEIVED] += n;
    call_js(s, (unsigned)n);
    if (n < UB_BATCH) return;
  }
}

static void on_poll (uv_poll_t *h, int status, int events) {
  ub_socket *s = h->data;
  if (!s->open) return;
  if (status < 0) return; /* EBADF cannot happen while open; nothing useful to report per event */
  if ((events & UV_WRITABLE) && s->qcount > 0) {
    flush_queue(s);
    update_poll(s);
  }
  if (events & UV_READABLE) on_readable(s);
}

/* ------------------------------------------------------------------------------------------- */
/* Lifetime */

static void maybe_free (ub_socket *s) {
  if (s->handle_live || !s->finalized) return;
  free(s->queue);
  free(s);
}

static void on_handle_closed (uv_handle_t *h) {
  ub_socket *s = h->data;
  s->handle_live = 0;
  maybe_free(s);
}

static void cleanup_hook (void *arg);

/* Stops polling, closes the fd and lets go of the JS object. Idempotent. */
static void close_socket (ub_socket *s, int in_teardown) {
  if (!s->open) return;
  s->open = 0;
  uv_poll_stop(&s->poll);
  close(s->fd);
  s->fd = -1;
  uv_close((uv_handle_t *)&s->poll, on_handle_closed);
  if (!in_teardown) {
    napi_remove_env_cleanup_hook(s->env, cleanup_hook, s);
    napi_async_destroy(s->env, s->async);
    napi_delete_reference(s->env, s->callback);
    s->callback = NULL;
    napi_reference_unref(s->env, s->self, NULL);
  }
}

/* The env (main thread or a worker) is going away with the socket still open. */
static void cleanup_hook (void *arg) {
  close_socket((ub_socket *)arg, 1);
}

static void finalize (napi_env env, void *data, void *hint) {
  (void)hint;
  ub_socket *s = data;
  /* Only reachable once closed (a strong ref is held while open), or at env teardown. */
  if (s->open) close_socket(s, 1);
  if (s->self != NULL) napi_delete_reference(env, s->self);
  s->self = NULL;
  s->finalized = 1;
  maybe_free(s);
}

/* ------------------------------------------------------------------------------------------- */
/* JS API */

static int get_string (napi_env env, napi_value v, char *buf, size_t size) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) return -1;
  return len + 1 >= size ? -1 : 0;
}

static int get_bool_prop (napi_env env, napi_value obj, const char *name) {
  napi_value v;
  bool b = false;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return 0;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return 0;
  return b ? 1 : 0;
}

static int get_int_prop (napi_env env, napi_value obj, const char *name) {
  napi_value v;
  int32_t n = 0;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return 0;
  if (napi_get_value_int32(env, v, &n) != napi_ok) return 0;
  return n;
}

static ub_socket *unwrap (napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok || data == NULL) {
    throw_type(env, "not a UdpSocket");
    return NULL;
  }
  return data;
}

static napi_value make_buffer (napi_env env, napi_value self, const char *name, size_t size, uint8_t **ptr) {
  napi_value ab;
  void *p;
  if (napi_create_arraybuffer(env, size, &p, &ab) != napi_ok) return NULL;
  memset(p, 0, size);
  *ptr = p;
  if (napi_set_named_property(env, self, name, ab) != napi_ok) return NULL;
  return ab;
}

/* new UdpSocket(family, host, port, { reusePort, reuseAddr, recvBufferSize, sendBufferSize }, onBatch) */
static napi_value sock_new (napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], self;
  CHECK(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  int32_t family = 0, port = -1;
  char host[64];
  napi_valuetype t;
  if (argc < 5 || napi_get_value_int32(env, argv[0], &family) != napi_ok || (family != 4 && family != 6)) {
    throw_type(env, "family must be 4 or 6");
    return NULL;
  }
  if (get_string(env, argv[1], host, sizeof host) != 0) { throw_type(env, "host must be an IP address string"); return NULL; }
  if (napi_get_value_int32(env, argv[2], &port) != napi_ok || port < 0 || port > 65535) {
    napi_throw_range_error(env, "ERR_SOCKET_BAD_PORT", "port must be an integer 0-65535");
    return NULL;
  }
  napi_typeof(env, argv[3], &t);
  if (t != napi_object) { throw_type(env, "options must be an object"); return NULL; }
  napi_typeof(env, argv[4], &t);
  if (t != napi_function) { throw_type(env, "onBatch must be a function"); return NULL; }

  struct sockaddr_storage ss;
  socklen_t slen;
  char *zone = strchr(host, '%');
  if (zone != NULL) *zone = '\0';
  if (parse_addr(family, host, port, &ss, &slen) != 0) {
    throw_errno(env, EINVAL, "bind", host);
    return NULL;
  }
  if (zone != NULL && family == 6) ((struct sockaddr_in6 *)&ss)->sin6_scope_id = if_nametoindex(zone + 1);

  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { throw_errno(env, errno, "socket", ""); return NULL; }
  int one = 1;
  int err = 0;
  const char *what = "bind";
  if (family == 6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) { err = errno; what = "setsockopt"; }
  if (!err && get_bool_prop(env, argv[3], "reuseAddr") && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) { err = errno; what = "setsockopt"; }
  if (!err && get_bool_prop(env, argv[3], "reusePort") && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) { err = errno; what = "setsockopt"; }
  int rcv = get_int_prop(env, argv[3], "recvBufferSize");
  int snd = get_int_prop(env, argv[3], "sendBufferSize");
  if (!err && rcv > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv) != 0) { err = errno; what = "setsockopt"; }
  if (!err && snd > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd) != 0) { err = errno; what = "setsockopt"; }
  if (!err && bind(fd, (struct sockaddr *)&ss, slen) != 0) err = errno;
  if (err) {
    char detail[96];
    snprintf(detail, sizeof detail, family == 6 ? "[%s]:%d" : "%s:%d", host, port);
    close(fd);
    throw_errno(env, err, what, detail);
    return NULL;
  }

  ub_socket *s = calloc(1, sizeof *s);
  if (s == NULL) { close(fd); throw_errno(env, ENOMEM, "socket", ""); return NULL; }
  s->env = env;
  s->fd = fd;
  s->family = family;
  if (make_buffer(env, self, "recvData", (size_t)UB_BATCH * UB_SLOT_SIZE, &s->recv_data) == NULL ||
      make_buffer(env, self, "recvMeta", (size_t)UB_BATCH * UB_META_SIZE, &s->recv_meta) == NULL ||
      make_buffer(env, self, "sendData", (size_t)UB_BATCH * UB_SLOT_SIZE, &s->send_data) == NULL ||
      make_buffer(env, self, "sendMeta", (size_t)UB_BATCH * UB_META_SIZE, &s->send_meta) == NULL) {
    close(fd);
    free(s);
    return NULL;
  }
  for (unsigned i = 0; i < UB_BATCH; i++) {
    s->riov[i].iov_base = s->recv_data + (size_t)i * UB_SLOT_SIZE;
    s->riov[i].iov_len = UB_SLOT_SIZE;
    s->rmsg[i].msg_hdr.msg_name = &s->raddr[i];
    s->rmsg[i].msg_hdr.msg_iov = &s->riov[i];
    s->rmsg[i].msg_hdr.msg_iovlen = 1;
  }
  uv_loop_t *loop;
  napi_value name;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok ||
      napi_create_string_utf8(env, "bittorrent-tracker:udp-batch", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, self, name, &s->async) != napi_ok) {
    close(fd);
    free(s);
    return NULL;
  }
  int uerr = uv_poll_init(loop, &s->poll, fd);
  if (uerr != 0) {
    close(fd);
    napi_async_destroy(env, s->async);
    free(s);
    throw_errno(env, -uerr, "uv_poll_init", "");
    return NULL;
  }
  s->poll.data = s;
  s->handle_live = 1;
  s->open = 1;
  napi_create_reference(env, argv[4], 1, &s->callback);
  if (napi_wrap(env, self, s, finalize, NULL, &s->self) != napi_ok) {
    s->open = 0;
    close(fd);
    uv_close((uv_handle_t *)&s->poll, NULL);
    return NULL;
  }
  napi_reference_ref(env, s->self, NULL);
  napi_add_env_cleanup_hook(env, cleanup_hook, s);
  uv_poll_start(&s->poll, UV_READABLE, on_poll);
  return self;
}

/* send(n): sends reply slots [0, n) now (or queues what the kernel cannot take yet). */
static napi_value sock_send (napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  ub_socket *s = unwrap(env, info, &argc, argv);
  if (s == NULL) return NULL;
  uint32_t n = 0;
  if (argc < 1 || napi_get_value_uint32(env, argv[0], &n) != napi_ok || n > UB_BATCH) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "send(n): n must be an integer 0-64");
    return NULL;
  }
  if (!s->open) { throw_errno(env, EBADF, "send", ""); return NULL; }
  if (n > 0) send_slots(s, n);
  return NULL;
}

static napi_value sock_close (napi_env env, napi_callback_info info) {
  size_t argc = 0;
  ub_socket *s = unwrap(env, info, &argc, NULL);
  if (s != NULL) close_socket(s, 0);
  return NULL;
}

static napi_value sock_ref (napi_env env, napi_callback_info info) {
  size_t argc = 0;
  ub_socket *s = unwrap(env, info, &argc, NULL);
  if (s != NULL && s->open) uv_ref((uv_handle_t *)&s->poll);
  return NULL;
}

static napi_value sock_unref (napi_env env, napi_callback_info info) {
  size_t argc = 0;
  ub_socket *s = unwrap(env, info, &argc, NULL);
  if (s != NULL && s->open) uv_unref((uv_handle_t *)&s->poll);
  return NULL;
}

/* address(): [ip, port] of the bound socket. */
static napi_value sock_address (napi_env env, napi_callback_info info) {
  size_t argc = 0;
  ub_socket *s = unwrap(env, info, &argc, NULL);
  if (s == NULL) return NULL;
  if (!s->open) { throw_errno(env, EBADF, "getsockname", ""); return NULL; }
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(s->fd, (struct sockaddr *)&ss, &len) != 0) { throw_errno(env, errno, "getsockname", ""); return NULL; }
  char ip[INET6_ADDRSTRLEN];
  int port;
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    port = ntohs(a->sin_port);
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
    port = ntohs(a->sin6_port);
  }
  napi_value arr, v;
  CHECK(napi_create_array_with_length(env, 2, &arr));
  napi_create_string_utf8(env, ip, NAPI_AUTO_LENGTH, &v);
  napi_set_element(env, arr, 0, v);
  napi_create_int32(env, port, &v);
  napi_set_element(env, arr, 1, v);
  return arr;
}

/* stats(): counters, in the order of the ST_* names (STAT_NAMES on the module). */
static napi_value sock_stats (napi_env env, napi_callback_info info) {
  size_t argc = 0;
  ub_socket *s = unwrap(env, info, &argc, NULL);
  if (s == NULL) return NULL;
  napi_value arr, v;
  CHECK(napi_create_array_with_length(env, ST_COUNT + 1, &arr));
  for (unsigned i = 0; i < ST_COUNT; i++) {
    napi_create_double(env, s->stats[i], &v);
    napi_set_element(env, arr, i, v);
  }
  napi_create_uint32(env, s->qcount, &v);
  napi_set_element(env, arr, ST_COUNT, v);
  return arr;
}

/* listenFd(kind, host, port, backlog): a non-blocking listening TCP socket with SO_REUSEADDR and
   SO_REUSEPORT (IPV6_V6ONLY for tcp6), for net.Server.listen({ fd }) in several threads. */
static napi_value listen_fd (napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char kind[8], host[64];
  int32_t port = -1, backlog = 0;
  if (argc < 4 || get_string(env, argv[0], kind, sizeof kind) != 0 || (strcmp(kind, "tcp4") != 0 && strcmp(kind, "tcp6") != 0)) {
    throw_type(env, "kind must be 'tcp4' or 'tcp6'");
    return NULL;
  }
  if (get_string(env, argv[1], host, sizeof host) != 0) { throw_type(env, "host must be an IP address string"); return NULL; }
  if (napi_get_value_int32(env, argv[2], &port) != napi_ok || port < 0 || port > 65535) {
    napi_throw_range_error(env, "ERR_SOCKET_BAD_PORT", "port must be an integer 0-65535");
    return NULL;
  }
  if (napi_get_value_int32(env, argv[3], &backlog) != napi_ok || backlog < 1) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "backlog must be a positive integer");
    return NULL;
  }
  int family = kind[3] == '4' ? 4 : 6;
  struct sockaddr_storage ss;
  socklen_t slen;
  if (parse_addr(family, host, port, &ss, &slen) != 0) { throw_errno(env, EINVAL, "listen", host); return NULL; }
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { throw_errno(env, errno, "socket", ""); return NULL; }
  int one = 1, err = 0;
  const char *what = "setsockopt";
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      (family == 6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)) err = errno;
  if (!err) { what = "bind"; if (bind(fd, (struct sockaddr *)&ss, slen) != 0) err = errno; }
  if (!err) { what = "listen"; if (listen(fd, backlog) != 0) err = errno; }
  if (err) {
    char detail[96];
    snprintf(detail, sizeof detail, family == 6 ? "[%s]:%d" : "%s:%d", host, port);
    close(fd);
    throw_errno(env, err, what, detail);
    return NULL;
  }
  napi_value r;
  CHECK(napi_create_int32(env, fd, &r));
  return r;
}

static void set_uint (napi_env env, napi_value obj, const char *name, uint32_t v) {
  napi_value n;
  napi_create_uint32(env, v, &n);
  napi_set_named_property(env, obj, name, n);
}

/* Defined at the end of this file. */
static napi_value steer_reuseport (napi_env env, napi_callback_info info);

NAPI_MODULE_INIT () {
  napi_property_descriptor methods[] = {
    { "send", NULL, sock_send, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, sock_close, NULL, NULL, NULL, napi_default, NULL },
    { "ref", NULL, sock_ref, NULL, NULL, NULL, napi_default, NULL },
    { "unref", NULL, sock_unref, NULL, NULL, NULL, napi_default, NULL },
    { "address", NULL, sock_address, NULL, NULL, NULL, napi_default, NULL },
    { "stats", NULL, sock_stats, NULL, NULL, NULL, napi_default, NULL }
  };
  napi_value cls, fn;
  if (napi_define_class(env, "UdpSocket", NAPI_AUTO_LENGTH, sock_new, NULL, sizeof methods / sizeof methods[0], methods, &cls) != napi_ok) return NULL;
  napi_set_named_property(env, exports, "UdpSocket", cls);
  if (napi_create_function(env, "listenFd", NAPI_AUTO_LENGTH, listen_fd, NULL, &fn) != napi_ok) return NULL;
  napi_set_named_property(env, exports, "listenFd", fn);
  if (napi_create_function(env, "steerReuseport", NAPI_AUTO_LENGTH, steer_reuseport, NULL, &fn) != napi_ok) return NULL;
  napi_set_named_property(env, exports, "steerReuseport", fn);
  set_uint(env, exports, "BATCH", UB_BATCH);
  set_uint(env, exports, "SLOT_SIZE", UB_SLOT_SIZE);
  set_uint(env, exports, "META_SIZE", UB_META_SIZE);
  set_uint(env, exports, "QUEUE_MAX", UB_QUEUE_MAX);
  return exports;
}

/* steerReuseport(socket, shards): attaches a classic BPF program (SO_ATTACH_REUSEPORT_CBPF) to
   the SO_REUSEPORT group of `socket`, so the kernel hands each BEP 15 announce or scrape to the
   group's socket number shard(info hash) (the group's sockets are numbered in the order they
   were bound) and no worker thread needs to pass it to another. Anything else (connects, short
   or odd packets) gets an out-of-range number: the kernel then picks by its usual flow hash.
   shard(h) = ((w0 ^ w1 ^ w2 ^ w3 ^ w4) * 0x9E3779B1 mod 2^32 >> 16) mod shards, w_i the
   big-endian 32-bit words of the 20-byte hash at payload offset 16: the same function as
   shardOf in src/server/workers/shard.ts. */
#include <linux/filter.h>
#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif
static napi_value steer_reuseport (napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  void *data = NULL;
  if (argc < 2 || napi_unwrap(env, argv[0], &data) != napi_ok || data == NULL) { throw_type(env, "not a UdpSocket"); return NULL; }
  ub_socket *s = data;
  uint32_t shards = 0;
  if (napi_get_value_uint32(env, argv[1], &shards) != napi_ok || shards < 1 || shards > 65536) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "shards must be an integer 1-65536");
    return NULL;
  }
  if (!s->open) { throw_errno(env, EBADF, "setsockopt", "SO_ATTACH_REUSEPORT_CBPF"); return NULL; }
  struct sock_filter code[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),                /* 0: A = payload length */
    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 36, 0, 20),       /* 1: < 36 bytes: to 22 */
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 8),                /* 2: A = action */
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 1, 0),         /* 3: announce: to 5 */
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 17),        /* 4: scrape: on, else to 22 */
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 16),               /* 5.. fold the hash's five words */
    BPF_STMT(BPF_MISC | BPF_TAX, 0),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 20),
    BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    BPF_STMT(BPF_MISC | BPF_TAX, 0),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 24),
    BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    BPF_STMT(BPF_MISC | BPF_TAX, 0),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 28),
    BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    BPF_STMT(BPF_MISC | BPF_TAX, 0),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 32),
    BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
    BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0x9E3779B1u),
    BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
    BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, shards),          /* 20 */
    BPF_STMT(BPF_RET | BPF_A, 0),                          /* 21 */
    BPF_STMT(BPF_RET | BPF_K, 0xffffffffu)                 /* 22: out of range: the kernel's choice */
  };
  struct sock_fprog prog = { .len = sizeof code / sizeof code[0], .filter = code };
  if (setsockopt(s->fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) != 0) {
    throw_errno(env, errno, "setsockopt", "SO_ATTACH_REUSEPORT_CBPF");
    return NULL;
  }
  return NULL;
}
