/*
 * Shared pieces of the bench load generators (udp.c, http.c, ws.c): the synthetic data set
 * (info hashes, peer ids, ports), a latency histogram, CPU/RSS readings from /proc, the phase
 * clock (warm-up, then measurement windows) and the one JSON line printed per window.
 *
 * Data set: torrent t (0 <= t < T) has P peers; peer (t, j) has a distinct peer id and the port
 * 1024 + (t*P + j) % 60000, so the P peers of one swarm have distinct ports (all peers share the
 * loopback source address, and trackers key HTTP/UDP peers by address:port). Peer (t, j=0) is a
 * seeder (left 0), the others leechers. Requests walk the peers in the order k = 0, 1, ...:
 * t = k % T, j = (k / T) % P, so consecutive requests hit different swarms.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static void die (const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "gen: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

static void *xcalloc (size_t n, size_t size) {
  void *p = calloc(n, size);
  if (p == NULL) die("out of memory (%zu x %zu)", n, size);
  return p;
}

static uint64_t now_ns (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------------------------------- */
/* Data set                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static uint64_t splitmix64 (uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* 20 pseudo-random bytes for torrent t (any byte value, like a real SHA-1). */
static void info_hash_of (uint32_t t, uint8_t out[20]) {
  uint64_t s = 0x6274747261636b65ull ^ ((uint64_t)t * 0x100000001b3ull);
  uint8_t buf[24];
  for (int i = 0; i < 3; i++) {
    uint64_t v = splitmix64(&s);
    memcpy(buf + 8 * i, &v, 8);
  }
  memcpy(out, buf, 20);
}

/* A qBittorrent-style peer id: "-qB4630-" and 12 characters from [0-9A-Za-z] (URL-safe). */
static inline void peer_id_of (uint32_t t, uint32_t j, uint8_t out[20]) {
  static const char alnum[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  uint64_t s = ((uint64_t)t << 20) ^ (uint64_t)j ^ 0x7065657269640000ull;
  memcpy(out, "-qB4630-", 8);
  uint64_t a = splitmix64(&s), b = splitmix64(&s);
  for (int i = 0; i < 6; i++) { out[8 + i] = (uint8_t)alnum[a % 62]; a /= 62; }
  for (int i = 0; i < 6; i++) { out[14 + i] = (uint8_t)alnum[b % 62]; b /= 62; }
}

static inline uint16_t port_of (uint32_t t, uint32_t j, uint32_t P) {
  return (uint16_t)(1024 + ((uint64_t)t * P + j) % 60000);
}

static uint64_t left_of (uint32_t j) {
  return j == 0 ? 0 : 1048576;
}

/* ---------------------------------------------------------------------------------------- */
/* Latency histogram: 1 us buckets up to 1 s, one overflow bucket                            */
/* ---------------------------------------------------------------------------------------- */

#define HIST_BUCKETS 1000000
static uint32_t *hist;
static uint64_t hist_count, hist_over;

static void hist_reset (void) {
  if (hist == NULL) hist = xcalloc(HIST_BUCKETS, sizeof(uint32_t));
  else memset(hist, 0, HIST_BUCKETS * sizeof(uint32_t));
  hist_count = hist_over = 0;
}

static inline void hist_add (uint64_t ns) {
  uint64_t us = ns / 1000;
  hist_count++;
  if (us >= HIST_BUCKETS) hist_over++;
  else hist[us]++;
}

/* The q-quantile in microseconds; -1 when empty; HIST_BUCKETS when it lies in the overflow. */
static double hist_quantile (double q) {
  if (hist_count == 0) return -1;
  uint64_t rank = (uint64_t)(q * (double)(hist_count - 1)) + 1, seen = 0;
  for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
    seen += hist[i];
    if (seen >= rank) return (double)i + 0.5;
  }
  return HIST_BUCKETS;
}

/* ---------------------------------------------------------------------------------------- */
/* /proc readings                                                                            */
/* ---------------------------------------------------------------------------------------- */

static long clk_tck;

/* utime + stime of a whole process (all threads), in seconds; -1 if unreadable. */
static double proc_cpu_s (int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (p == NULL) return -1;
  /* After ')': field 3 (state) ... utime is field 14, stime 15. */
  unsigned long long utime = 0, stime = 0;
  int field = 2;
  for (char *s = p + 1; *s != 0 && field < 15; s++) {
    if (*s == ' ') {
      field++;
      if (field == 14) utime = strtoull(s + 1, NULL, 10);
      else if (field == 15) stime = strtoull(s + 1, NULL, 10);
    }
  }
  if (clk_tck <= 0) clk_tck = sysconf(_SC_CLK_TCK);
  return (double)(utime + stime) / (double)clk_tck;
}

static double self_cpu_s (void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* VmRSS of a process in KiB; -1 if unreadable. */
static long proc_rss_kb (int pid) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  char *p = strstr(buf, "VmRSS:");
  return p == NULL ? -1 : strtol(p + 6, NULL, 10);
}

/*
 * Scheduler statistics of one task: nanoseconds on a CPU and nanoseconds runnable but waiting
 * for one (run_delay). `which`: "self", or "<pid>/task/<tid>".
 */
struct sched_ns { unsigned long long run, wait; };

static struct sched_ns task_sched (const char *which) {
  struct sched_ns r = { 0, 0 };
  char path[96], buf[128];
  snprintf(path, sizeof path, "/proc/%s/schedstat", which);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return r;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return r;
  buf[n] = 0;
  char *p = buf;
  r.run = strtoull(p, &p, 10);
  r.wait = strtoull(p, &p, 10);
  return r;
}

static struct sched_ns server_main_sched (int pid) {
  char which[64];
  snprintf(which, sizeof which, "%d/task/%d", pid, pid);
  return task_sched(which);
}

/* Busy and total jiffies of one CPU from /proc/stat (busy = everything but idle and iowait). */
struct cpu_jiffies { unsigned long long busy, total; };

static struct cpu_jiffies cpu_core (int core) {
  struct cpu_jiffies r = { 0, 0 };
  char buf[16384], name[16];
  int fd = open("/proc/stat", O_RDONLY);
  if (fd < 0) return r;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return r;
  buf[n] = 0;
  snprintf(name, sizeof name, "\ncpu%d ", core);
  char *p = strstr(buf, name);
  if (p == NULL) return r;
  p += strlen(name);
  unsigned long long v[10] = { 0 };
  for (int i = 0; i < 10; i++) v[i] = strtoull(p, &p, 10);
  for (int i = 0; i < 8; i++) r.total += v[i]; /* guest time is already inside user */
  r.busy = r.total - v[3] - v[4];
  return r;
}

/* ---------------------------------------------------------------------------------------- */
/* Options common to every generator                                                         */
/* ---------------------------------------------------------------------------------------- */

struct common_opts {
  const char *host;
  int port;
  int server_pid;        /* whose CPU and RSS are read; 0: none */
  uint32_t torrents, peers;
  double warmup_s;       /* at least this long before the first window */
  double warmup_max_s;   /* ...but never longer than this, even if the full pass is not done */
  int full_pass;         /* warm-up must first announce every peer once */
  double duration_s;     /* one measurement window */
  int windows;           /* how many windows, back to back; 0: warm-up only */
  int server_core, gen_core;
  int coalesce_us;       /* pause after each busy loop turn, so one wakeup serves many responses */
};

static void common_defaults (struct common_opts *o) {
  o->host = "127.0.0.1";
  o->port = 0;
  o->server_pid = 0;
  o->torrents = 10000;
  o->peers = 10;
  o->warmup_s = 1;
  o->warmup_max_s = 120;
  o->full_pass = 0;
  o->duration_s = 5;
  o->windows = 1;
  o->server_core = 1;
  o->gen_core = 0;
  o->coalesce_us = 50;
}

/* Parses one common option at argv[*i]; returns 1 if it was one. */
static int common_arg (struct common_opts *o, int argc, char **argv, int *i) {
  const char *a = argv[*i];
#define NEXT() ((*i) + 1 < argc ? argv[++(*i)] : (die("%s needs a value", a), ""))
  if (strcmp(a, "--host") == 0) o->host = NEXT();
  else if (strcmp(a, "--port") == 0) o->port = atoi(NEXT());
  else if (strcmp(a, "--pid") == 0) o->server_pid = atoi(NEXT());
  else if (strcmp(a, "--torrents") == 0) o->torrents = (uint32_t)strtoul(NEXT(), NULL, 10);
  else if (strcmp(a, "--peers") == 0) o->peers = (uint32_t)strtoul(NEXT(), NULL, 10);
  else if (strcmp(a, "--warmup") == 0) o->warmup_s = atof(NEXT());
  else if (strcmp(a, "--warmup-max") == 0) o->warmup_max_s = atof(NEXT());
  else if (strcmp(a, "--full-pass") == 0) o->full_pass = 1;
  else if (strcmp(a, "--duration") == 0) o->duration_s = atof(NEXT());
  else if (strcmp(a, "--windows") == 0) o->windows = atoi(NEXT());
  else if (strcmp(a, "--server-core") == 0) o->server_core = atoi(NEXT());
  else if (strcmp(a, "--gen-core") == 0) o->gen_core = atoi(NEXT());
  else if (strcmp(a, "--coalesce-us") == 0) o->coalesce_us = atoi(NEXT());
  else return 0;
#undef NEXT
  return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* Phases and per-window results                                                             */
/* ---------------------------------------------------------------------------------------- */

/*
 * The phase clock. phase_tick() is called from the event loop; it switches from warm-up to the
 * first window when warm-up is over, closes a window when its time is up (printing its JSON line)
 * and sets `finished` after the last one. `measuring` is true inside a window: only then are
 * responses, latencies and errors counted.
 */
static struct {
  struct common_opts *o;
  uint64_t start_ns, window_start_ns, window_end_ns;
  int window;          /* index of the current window, -1 in warm-up */
  int measuring, finished, pass_done;
  double srv_cpu0, gen_cpu0;
  struct cpu_jiffies srv_core0, gen_core0;
  struct sched_ns srv_main0, gen_sched0;
} phase;

/* Counters of the current window (reset when a window opens). */
static struct {
  uint64_t responses, errors, timeouts, reconnects, bad;
  uint64_t items;      /* peers returned (announce) or hashes answered (scrape) */
  uint64_t extra[8];   /* generator-specific */
} win;

/*
 * Waking up costs more than handling a response (a context switch, and in a VM an exit or two),
 * so after a loop turn that handled events the generators pause for `coalesce_us`: responses
 * pile up meanwhile and the next turn reads them with few system calls. The windows of
 * outstanding requests are sized so that the tracker never runs dry during a pause; a pause adds
 * at most that much to a measured latency. 0 turns it off.
 */
static void coalesce_pause (const struct common_opts *o) {
  if (o->coalesce_us <= 0) return;
  struct timespec ts = { 0, (long)o->coalesce_us * 1000 };
  nanosleep(&ts, NULL);
}

static void phase_init (struct common_opts *o) {
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* 1 us, not the default 50 us, for the pauses */
  phase.o = o;
  phase.start_ns = now_ns();
  phase.window = -1;
  phase.measuring = 0;
  phase.finished = o->windows <= 0 && !o->full_pass;
  phase.pass_done = !o->full_pass;
  hist_reset();
}

static void window_open (uint64_t t) {
  phase.window++;
  phase.measuring = 1;
  phase.window_start_ns = t;
  phase.window_end_ns = t + (uint64_t)(phase.o->duration_s * 1e9);
  memset(&win, 0, sizeof win);
  hist_reset();
  phase.srv_cpu0 = phase.o->server_pid > 0 ? proc_cpu_s(phase.o->server_pid) : 0;
  phase.gen_cpu0 = self_cpu_s();
  phase.srv_core0 = cpu_core(phase.o->server_core);
  phase.gen_core0 = cpu_core(phase.o->gen_core);
  if (phase.o->server_pid > 0) phase.srv_main0 = server_main_sched(phase.o->server_pid);
  phase.gen_sched0 = task_sched("self");
}

/* Extra key/value pairs printed with each window (set by the generator). */
static const char *extra_names[8];

static void window_close (uint64_t t) {
  double secs = (double)(t - phase.window_start_ns) / 1e9;
  double srv = phase.o->server_pid > 0 ? proc_cpu_s(phase.o->server_pid) - phase.srv_cpu0 : -1;
  double gen = self_cpu_s() - phase.gen_cpu0;
  struct cpu_jiffies sc = cpu_core(phase.o->server_core), gc = cpu_core(phase.o->gen_core);
  double srv_core = sc.total > phase.srv_core0.total ? (double)(sc.busy - phase.srv_core0.busy) / (double)(sc.total - phase.srv_core0.total) : -1;
  double gen_core = gc.total > phase.gen_core0.total ? (double)(gc.busy - phase.gen_core0.busy) / (double)(gc.total - phase.gen_core0.total) : -1;
  long rss = phase.o->server_pid > 0 ? proc_rss_kb(phase.o->server_pid) : -1;
  struct sched_ns sm = phase.o->server_pid > 0 ? server_main_sched(phase.o->server_pid) : phase.srv_main0;
  struct sched_ns gs = task_sched("self");
  /* Time the tracker's main thread and the generator were runnable but waiting for their CPU. */
  double srv_main_run = (double)(sm.run - phase.srv_main0.run) / 1e9, srv_main_wait = (double)(sm.wait - phase.srv_main0.wait) / 1e9;
  double gen_wait = (double)(gs.wait - phase.gen_sched0.wait) / 1e9;
  printf("{\"window\":%d,\"seconds\":%.4f,\"responses\":%" PRIu64 ",\"rate\":%.1f,"
         "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"latency_samples\":%" PRIu64 ",\"latency_over_1s\":%" PRIu64 ","
         "\"server_cpu_s\":%.3f,\"gen_cpu_s\":%.3f,\"server_core_busy\":%.4f,\"gen_core_busy\":%.4f,"
         "\"server_main_run_s\":%.4f,\"server_main_wait_s\":%.4f,\"gen_wait_s\":%.4f,"
         "\"server_rss_kb\":%ld,\"errors\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"reconnects\":%" PRIu64 ","
         "\"bad\":%" PRIu64 ",\"items\":%" PRIu64,
         phase.window, secs, win.responses, (double)win.responses / secs,
         hist_quantile(0.5), hist_quantile(0.99), hist_quantile(0.999), hist_count, hist_over,
         srv, gen, srv_core, gen_core, srv_main_run, srv_main_wait, gen_wait, rss, win.errors, win.timeouts, win.reconnects, win.bad, win.items);
  for (int i = 0; i < 8; i++) {
    if (extra_names[i] != NULL) printf(",\"%s\":%" PRIu64, extra_names[i], win.extra[i]);
  }
  printf("}\n");
  fflush(stdout);
  phase.measuring = 0;
  if (phase.window + 1 >= phase.o->windows) phase.finished = 1;
}

/* Call often (every loop iteration). Returns 1 once everything is done. */
static int phase_tick (uint64_t t) {
  if (phase.finished) return 1;
  if (phase.window < 0) {
    double el = (double)(t - phase.start_ns) / 1e9;
    int ready = el >= phase.o->warmup_s && phase.pass_done;
    if (el >= phase.o->warmup_max_s && !ready) {
      fprintf(stderr, "gen: warm-up did not finish its pass within %.0f s; measuring anyway\n", phase.o->warmup_max_s);
      ready = 1;
    }
    if (ready) {
      if (phase.o->windows <= 0) { phase.finished = 1; return 1; }
      window_open(t);
    }
    return 0;
  }
  if (t >= phase.window_end_ns) {
    window_close(t);
    if (phase.finished) return 1;
    window_open(t);
  }
  return 0;
}

static inline void print_hashes (uint32_t torrents) {
  uint8_t h[20];
  for (uint32_t t = 0; t < torrents; t++) {
    info_hash_of(t, h);
    for (int i = 0; i < 20; i++) printf("%02x", h[i]);
    printf("\n");
  }
}

#endif
