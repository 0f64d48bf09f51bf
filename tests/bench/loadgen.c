/* Benchmark load generator: holds CONNECTIONS loopback TCP connections (two
 * sockets each: the client's, on a kernel-chosen ephemeral port, and the
 * accepted one, on a destination port) to DESTINATIONS listeners on
 * 127.0.0.1, plus EXTRA listeners, until it is sent SIGTERM or SIGINT.
 *
 * Run it inside a network namespace of its own. The connections are spread
 * over worker processes so that none exceeds its open-file limit; every
 * socket has SO_LINGER 0, so ending the workers resets the connections
 * instead of leaving TIME_WAIT behind. Prints "ready SOCKETS LISTENERS" on
 * stdout once everything is established. Nothing is sent on any socket. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_DESTINATIONS 64
#define MAX_EXTRA 1000
#define MAX_WORKERS 256
#define SPARE_FDS 64

typedef struct {
  long connections;
  int destinations;
  int dest_base;
  int extra;
  int extra_base;
} config_t;

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

/* Sleeps until SIGTERM or SIGINT, without missing one that arrives just
 * before the wait. */
static void wait_for_stop(void) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &old);
  while (!stop)
    sigsuspend(&old);
  sigprocmask(SIG_SETMASK, &old, NULL);
}

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void usage(void) {
  fprintf(stderr, "usage: loadgen [-c CONNECTIONS] [-d DESTINATIONS] "
                  "[-p FIRST_DEST_PORT] [-l EXTRA_LISTENERS] "
                  "[-L FIRST_EXTRA_PORT] [-t TIME_WAITS]\n");
  exit(2);
}

static long parse_number(const char *text, long min, long max) {
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
    usage();
  return value;
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

static void no_linger(int fd) {
  struct linger linger = {.l_onoff = 1, .l_linger = 0};
  if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger)) != 0)
    die("setsockopt SO_LINGER");
}

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in addr = loopback(port);
  if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
    die("bind listener");
  if (listen(fd, 128) != 0)
    die("listen");
  return fd;
}

/* One worker: opens its share of connections one at a time (connect, then
 * accept the same connection: workers run one after the other, so the
 * listener's queue holds only this one), reports 'k' on the pipe and
 * holds them until SIGTERM. */
static void worker(const config_t *cfg, const int *listeners, long first,
                   long count, int ready_fd) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
    die("prctl");
  for (long i = first; i < first + count; i++) {
    int dest = (int)(i % cfg->destinations);
    int client = socket(AF_INET, SOCK_STREAM, 0);
    if (client < 0)
      die("socket");
    no_linger(client);
    struct sockaddr_in addr = loopback(cfg->dest_base + dest);
    if (connect(client, (struct sockaddr *)&addr, sizeof(addr)) != 0)
      die("connect");
    int server = accept(listeners[dest], NULL, NULL);
    if (server < 0)
      die("accept");
    no_linger(server);
  }
  for (int d = 0; d < cfg->destinations; d++)
    close(listeners[d]);
  if (write(ready_fd, "k", 1) != 1)
    die("write");
  close(ready_fd);
  wait_for_stop();
  _exit(0);
}

static void make_time_wait(int dest_base, int listener, int dest) {
  int client = socket(AF_INET, SOCK_STREAM, 0);
  if (client < 0)
    die("socket");
  struct sockaddr_in addr = loopback(dest_base + dest);
  if (connect(client, (struct sockaddr *)&addr, sizeof(addr)) != 0)
    die("connect (TIME_WAIT)");
  int server = accept(listener, NULL, NULL);
  if (server < 0)
    die("accept (TIME_WAIT)");
  close(client);
  /* Read the client's FIN before closing: the server end then goes
   * through CLOSE_WAIT and LAST_ACK, and the client end to TIME_WAIT. */
  char byte;
  while (read(server, &byte, 1) > 0)
    ;
  close(server);
}

int main(int argc, char **argv) {
  config_t cfg = {.connections = 50000,
                  .destinations = 6,
                  .dest_base = 9001,
                  .extra = 100,
                  .extra_base = 7000};
  long time_waits = 0;
  int opt;
  while ((opt = getopt(argc, argv, "c:d:p:l:L:t:")) != -1) {
    switch (opt) {
    case 'c':
      cfg.connections = parse_number(optarg, 0, 1000000);
      break;
    case 'd':
      cfg.destinations = (int)parse_number(optarg, 1, MAX_DESTINATIONS);
      break;
    case 'p':
      cfg.dest_base = (int)parse_number(optarg, 1, 65535);
      break;
    case 'l':
      cfg.extra = (int)parse_number(optarg, 0, MAX_EXTRA);
      break;
    case 'L':
      cfg.extra_base = (int)parse_number(optarg, 1, 65535);
      break;
    case 't':
      time_waits = parse_number(optarg, 0, 1000000);
      break;
    default:
      usage();
    }
  }
  if (optind != argc || cfg.dest_base + cfg.destinations - 1 > 65535 ||
      cfg.extra_base + cfg.extra - 1 > 65535)
    usage();

  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) != 0)
    die("getrlimit");
  nofile.rlim_cur = nofile.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &nofile) != 0)
    die("setrlimit");
  long fd_budget = (long)nofile.rlim_cur - SPARE_FDS - cfg.destinations;
  if (nofile.rlim_cur == RLIM_INFINITY || fd_budget > 1000000)
    fd_budget = 1000000;
  long per_worker = fd_budget / 2;
  if (per_worker < 1) {
    fprintf(stderr, "loadgen: open-file limit too low\n");
    return 1;
  }
  long workers_needed = (cfg.connections + per_worker - 1) / per_worker;
  if (workers_needed > MAX_WORKERS) {
    fprintf(stderr, "loadgen: %ld workers needed, at most %d\n", workers_needed,
            MAX_WORKERS);
    return 1;
  }

  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  int listeners[MAX_DESTINATIONS];
  for (int d = 0; d < cfg.destinations; d++)
    listeners[d] = listen_on(cfg.dest_base + d);

  pid_t pids[MAX_WORKERS];
  int started = 0;
  int failed = 0;
  for (long first = 0; first < cfg.connections && !stop; first += per_worker) {
    long count = cfg.connections - first < per_worker ? cfg.connections - first
                                                      : per_worker;
    int ready[2];
    if (pipe(ready) != 0)
      die("pipe");
    pid_t pid = fork();
    if (pid < 0)
      die("fork");
    if (pid == 0) {
      close(ready[0]);
      worker(&cfg, listeners, first, count, ready[1]);
    }
    pids[started++] = pid;
    close(ready[1]);
    char byte;
    ssize_t n;
    do
      n = read(ready[0], &byte, 1);
    while (n < 0 && errno == EINTR && !stop);
    close(ready[0]);
    if (n != 1) {
      fprintf(stderr, "loadgen: worker %d failed\n", started);
      failed = 1;
      break;
    }
  }
  /* TIME_WAITS more connections, closed client first: their client ends
   * stay in TIME_WAIT on pool ports for 60 s, holding no descriptor. */
  for (long i = 0; i < time_waits && !failed && !stop; i++)
    make_time_wait(cfg.dest_base, listeners[i % cfg.destinations],
                   (int)(i % cfg.destinations));
  /* The destination listeners have done their job: what stays listening
   * is exactly the EXTRA listeners. */
  for (int d = 0; d < cfg.destinations; d++)
    close(listeners[d]);
  /* Opened last, so that no worker inherits them. */
  if (!failed && !stop)
    for (int e = 0; e < cfg.extra; e++)
      listen_on(cfg.extra_base + e);

  if (!failed && !stop) {
    printf("ready %ld %d\n", 2 * cfg.connections + time_waits, cfg.extra);
    fflush(stdout);
    wait_for_stop();
  }
  for (int i = 0; i < started; i++)
    kill(pids[i], SIGTERM);
  for (int i = 0; i < started; i++)
    waitpid(pids[i], NULL, 0);
  return failed;
}
