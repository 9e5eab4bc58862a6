/* A workload with known counts for ebpftop's kernel tests.  The tests copy the
 * binary to a unique name, so its comm identifies it.  Each mode prints one
 * JSON line describing what it did.
 *
 *   opens N PATH        open(PATH) N times (each closed)
 *   creats N PATH       creat(PATH, 0600) N times (each closed)
 *   syscalls N          N getppid() syscalls
 *   rename N NAME       N getppid(), prctl(PR_SET_NAME, NAME), N getppid()
 *   pipe N DELAY_US     N reads of a pipe whose byte is already there, then N
 *                       reads that each wait DELAY_US for a writer thread
 *   writes N DELAY_US   N writes of a page to /dev/null, then N page writes to
 *                       a one-page pipe that a reader drains every DELAY_US
 *   faults K            touch K fresh anonymous pages (no huge pages)
 *   forkexec K PROG A.. fork K children that exit with codes 0..K-1, wait for
 *                       them, then exec PROG with argv A.. (A is its argv[0])
 *   tcp4 | tcp6         connect to and accept from a loopback listener
 *   tcp4null            the same, accept() without an address buffer
 *   udp4 N SIZE         send N datagrams of SIZE bytes with sendto() to a
 *                       loopback socket that a child named <comm>r reads
 *   udp6 N SIZE         the same over IPv6, with connect() and send()
 *   udp4unread N SIZE   send N datagrams to a socket nobody ever reads
 *   forkpace N US       fork N children that exit at once, one every US
 *                       microseconds, reaping each
 *   opensmany N DIR     open N distinct missing paths DIR/0, DIR/1, ...
 *   threads N K NAME    K threads, each N getppid() then exit; the first
 *                       renames itself NAME and makes N more
 *   listen PORT K       accept K IPv4 connections on PORT (any address), each
 *                       closed at once; prints when ready, then when done
 *   connect ADDR PORT K connect to ADDR:PORT (IPv4) K times, each closed
 *   work N PATH M       N opens of PATH, then M getppid() (the container tests)
 *   twophase N M        N getppid(), print, wait for a line on stdin, M getppid()
 *   readflood           read() a byte of /dev/zero and write() it to /dev/null,
 *                       until killed (the --max-cpu test's flood); prints first
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) { perror(what); exit(1); }

static int pipe_fds[2];
static long pipe_n, pipe_delay_us;

/* The waiting side raises this just before each blocking call, and the
 * other side starts its DELAY_US only once it sees it: each call then waits
 * at least DELAY_US, however late the waiting side was scheduled between two
 * calls (on a loaded machine a fixed cadence let one call wait less). */
static int call_ready;

static void wait_for_call(void)
{
    while (!__atomic_exchange_n(&call_ready, 0, __ATOMIC_ACQ_REL))
        usleep(20);
}

static void *pipe_writer(void *arg)
{
    (void)arg;
    for (long i = 0; i < pipe_n; i++) {
        wait_for_call();
        usleep(pipe_delay_us);
        if (write(pipe_fds[1], "x", 1) != 1) die("write");
    }
    return NULL;
}

static long drain_n, drain_delay_us;
static int drain_fd;

static void *pipe_drainer(void *arg)
{
    (void)arg;
    char page[4096];
    for (long i = 0; i < drain_n; i++) {
        if (i < drain_n - 1) /* the last read only empties the pipe: no write waits for it */
            wait_for_call();
        usleep(drain_delay_us);
        if (read(drain_fd, page, sizeof(page)) != sizeof(page)) die("drain");
    }
    return NULL;
}

/* The loopback address of family, port 0 (any); returns its length. */
static socklen_t loopback(int family, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return sizeof(*a);
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    return sizeof(*a);
}

static void tcp(int family, int with_addr)
{
    int ls = socket(family, SOCK_STREAM, 0);
    if (ls < 0) die("socket");
    struct sockaddr_storage ss;
    socklen_t len = loopback(family, &ss);
    if (bind(ls, (struct sockaddr *)&ss, len) || listen(ls, 4)) die("bind/listen");
    if (getsockname(ls, (struct sockaddr *)&ss, &len)) die("getsockname");
    int cs = socket(family, SOCK_STREAM, 0);
    if (connect(cs, (struct sockaddr *)&ss, len)) die("connect");
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    int as = with_addr ? accept(ls, (struct sockaddr *)&peer, &plen) : accept(ls, NULL, NULL);
    if (as < 0) die("accept");
    struct sockaddr_storage local;
    socklen_t llen = sizeof(local);
    getsockname(cs, (struct sockaddr *)&local, &llen);
    int lport = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
    int cport = ntohs(family == AF_INET ? ((struct sockaddr_in *)&local)->sin_port : ((struct sockaddr_in6 *)&local)->sin6_port);
    printf("{\"pid\": %d, \"listen_port\": %d, \"client_port\": %d}\n", getpid(), lport, cport);
    close(as);
    close(cs);
    close(ls);
}

static int port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len)) die("getsockname");
    return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                         : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void udp(int family, long n, long size, int connected, int reader)
{
    struct sockaddr_storage ss;
    socklen_t len = loopback(family, &ss);
    int rs = socket(family, SOCK_DGRAM, 0);
    if (rs < 0) die("socket");
    int big = 8 << 20; /* room for every datagram: none dropped at the receiver */
    setsockopt(rs, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    if (bind(rs, (struct sockaddr *)&ss, len)) die("bind");
    if (getsockname(rs, (struct sockaddr *)&ss, &len)) die("getsockname");

    pid_t child = -1;
    if (reader) {
        child = fork();
        if (child < 0) die("fork");
        if (child == 0) {
            char name[32];
            if (prctl(PR_GET_NAME, name)) die("prctl");
            name[14] = 0;
            strcat(name, "r");
            if (prctl(PR_SET_NAME, name)) die("prctl");
            char *buf = malloc(size + 1);
            for (long i = 0; i < n; i++)
                if (recv(rs, buf, size + 1, 0) != size) die("recv");
            _exit(0);
        }
    }
    int s = socket(family, SOCK_DGRAM, 0);
    if (s < 0) die("socket");
    if (connected && connect(s, (struct sockaddr *)&ss, len)) die("connect");
    char *buf = calloc(1, size);
    for (long i = 0; i < n; i++) {
        ssize_t r = connected ? send(s, buf, size, 0) : sendto(s, buf, size, 0, (struct sockaddr *)&ss, len);
        if (r != size) die("send");
    }
    int status = 0;
    if (reader && (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status)))
        die("reader");
    printf("{\"pid\": %d, \"reader_pid\": %d, \"sender_port\": %d, \"receiver_port\": %d}\n",
           getpid(), (int)child, port_of(s), port_of(rs));
    close(s);
    close(rs);
}

static long threads_n;
static const char *threads_name;

static void *syscall_thread(void *arg)
{
    for (long i = 0; i < threads_n; i++) syscall(SYS_getppid);
    if (arg) {
        if (prctl(PR_SET_NAME, threads_name)) die("prctl");
        for (long i = 0; i < threads_n; i++) syscall(SYS_getppid);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: see the comment in workload.c\n"); return 2; }
    const char *mode = argv[1];
    long n = argc > 2 ? atol(argv[2]) : 0;
    if (!strcmp(mode, "opens")) {
        int ok = 0, failed = 0;
        for (long i = 0; i < n; i++) {
            int fd = open(argv[3], O_RDONLY);
            if (fd >= 0) { ok++; close(fd); } else failed++;
        }
        printf("{\"pid\": %d, \"ok\": %d, \"failed\": %d}\n", getpid(), ok, failed);
    } else if (!strcmp(mode, "creats")) {
        int ok = 0, failed = 0;
        for (long i = 0; i < n; i++) {
            int fd = (int)syscall(SYS_creat, argv[3], 0600); /* the syscall itself, not libc's openat */
            if (fd >= 0) { ok++; close(fd); } else failed++;
        }
        printf("{\"pid\": %d, \"ok\": %d, \"failed\": %d}\n", getpid(), ok, failed);
    } else if (!strcmp(mode, "listen") && argc == 4) {
        int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)n)};
        setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 64)) die("bind/listen");
        printf("{\"pid\": %d, \"ready\": true}\n", getpid());
        fflush(stdout);
        long k = atol(argv[3]);
        for (long i = 0; i < k; i++) {
            struct sockaddr_in peer;
            socklen_t plen = sizeof(peer);
            int as = accept(ls, (struct sockaddr *)&peer, &plen);
            if (as < 0) die("accept");
            close(as);
        }
        printf("{\"pid\": %d, \"accepted\": %ld}\n", getpid(), k);
    } else if (!strcmp(mode, "connect") && argc == 5) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atol(argv[3]))};
        if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1) die("inet_pton");
        long k = atol(argv[4]);
        for (long i = 0; i < k; i++) {
            int cs = socket(AF_INET, SOCK_STREAM, 0);
            if (cs < 0 || connect(cs, (struct sockaddr *)&sa, sizeof(sa))) die("connect");
            close(cs);
        }
        printf("{\"pid\": %d, \"connected\": %ld}\n", getpid(), k);
    } else if (!strcmp(mode, "work") && argc == 5) {
        int ok = 0, failed = 0;
        for (long i = 0; i < n; i++) {
            int fd = open(argv[3], O_RDONLY);
            if (fd >= 0) { ok++; close(fd); } else failed++;
        }
        long m = atol(argv[4]);
        for (long i = 0; i < m; i++) syscall(SYS_getppid);
        printf("{\"pid\": %d, \"ok\": %d, \"failed\": %d}\n", getpid(), ok, failed);
    } else if (!strcmp(mode, "twophase") && argc == 4) {
        for (long i = 0; i < n; i++) syscall(SYS_getppid);
        printf("{\"pid\": %d}\n", getpid());
        fflush(stdout);
        char line[8];
        if (!fgets(line, sizeof(line), stdin)) die("stdin");
        for (long i = 0, m = atol(argv[3]); i < m; i++) syscall(SYS_getppid);
    } else if (!strcmp(mode, "readflood")) { /* read() and write() a byte each, until killed */
        int zero = open("/dev/zero", O_RDONLY), null = open("/dev/null", O_WRONLY);
        char c;
        if (zero < 0 || null < 0) die("open");
        printf("{\"pid\": %d}\n", getpid());
        fflush(stdout);
        for (;;)
            if (read(zero, &c, 1) != 1 || write(null, &c, 1) != 1) die("flood");
    } else if (!strcmp(mode, "syscalls")) {
        for (long i = 0; i < n; i++) syscall(SYS_getppid);
        printf("{\"pid\": %d}\n", getpid());
    } else if (!strcmp(mode, "rename")) {
        for (long i = 0; i < n; i++) syscall(SYS_getppid);
        if (prctl(PR_SET_NAME, argv[3])) die("prctl");
        for (long i = 0; i < n; i++) syscall(SYS_getppid);
        printf("{\"pid\": %d}\n", getpid());
    } else if (!strcmp(mode, "pipe")) {
        char c;
        pipe_n = n;
        pipe_delay_us = atol(argv[3]);
        if (pipe(pipe_fds)) die("pipe");
        for (long i = 0; i < n; i++) {  /* data already there: fast reads */
            if (write(pipe_fds[1], "x", 1) != 1 || read(pipe_fds[0], &c, 1) != 1) die("fast read");
        }
        pthread_t t;
        pthread_create(&t, NULL, pipe_writer, NULL);
        for (long i = 0; i < n; i++) {  /* each waits for the writer */
            __atomic_store_n(&call_ready, 1, __ATOMIC_RELEASE);
            if (read(pipe_fds[0], &c, 1) != 1) die("slow read");
        }
        pthread_join(t, NULL);
        printf("{\"pid\": %d}\n", getpid());
    } else if (!strcmp(mode, "writes")) {
        char page[4096] = {0};
        int null = open("/dev/null", O_WRONLY);
        for (long i = 0; i < n; i++)
            if (write(null, page, sizeof(page)) != sizeof(page)) die("fast write");
        int fds[2];
        if (pipe(fds) || fcntl(fds[1], F_SETPIPE_SZ, 4096) < 0) die("pipe");
        if (write(fds[1], page, sizeof(page)) != sizeof(page)) die("fill"); /* now full */
        drain_n = n + 1;
        drain_delay_us = atol(argv[3]);
        drain_fd = fds[0];
        pthread_t t;
        pthread_create(&t, NULL, pipe_drainer, NULL);
        for (long i = 0; i < n; i++) { /* each waits until the reader empties the pipe */
            __atomic_store_n(&call_ready, 1, __ATOMIC_RELEASE);
            if (write(fds[1], page, sizeof(page)) != sizeof(page)) die("slow write");
        }
        pthread_join(t, NULL);
        printf("{\"pid\": %d}\n", getpid());
    } else if (!strcmp(mode, "faults")) {
        long page = sysconf(_SC_PAGESIZE);
        char *p = mmap(NULL, n * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) die("mmap");
        madvise(p, n * page, MADV_NOHUGEPAGE); /* one fault per page, not per 2 MiB */
        for (long i = 0; i < n; i++) p[i * page] = 1;
        printf("{\"pid\": %d, \"page_size\": %ld}\n", getpid(), page);
    } else if (!strcmp(mode, "forkexec")) {
        printf("{\"pid\": %d}\n", getpid());
        fflush(stdout);
        for (long i = 0; i < n; i++) {
            pid_t child = fork();
            if (child == 0)
                _exit((int)i);
            if (child < 0) die("fork");
        }
        while (wait(NULL) > 0)
            ;
        execv(argv[3], argv + 4); /* argv[4] is the new argv[0] */
        die("execv");
    } else if (!strcmp(mode, "tcp4")) {
        tcp(AF_INET, 1);
    } else if (!strcmp(mode, "tcp6")) {
        tcp(AF_INET6, 1);
    } else if (!strcmp(mode, "tcp4null")) {
        tcp(AF_INET, 0);
    } else if (!strcmp(mode, "udp4") && argc == 4) {
        udp(AF_INET, atol(argv[2]), atol(argv[3]), 0, 1);
    } else if (!strcmp(mode, "udp6") && argc == 4) {
        udp(AF_INET6, atol(argv[2]), atol(argv[3]), 1, 1);
    } else if (!strcmp(mode, "udp4unread") && argc == 4) {
        udp(AF_INET, atol(argv[2]), atol(argv[3]), 0, 0);
    } else if (!strcmp(mode, "forkpace") && argc == 4) {
        long pace = atol(argv[3]);
        for (long i = 0; i < n; i++) {
            pid_t child = fork();
            if (child == 0)
                _exit(0);
            if (child < 0) die("fork");
            waitpid(child, NULL, 0);
            usleep(pace);
        }
        printf("{\"pid\": %d}\n", getpid());
    } else if (!strcmp(mode, "opensmany") && argc == 4) {
        char path[4096];
        for (long i = 0; i < n; i++) {
            snprintf(path, sizeof(path), "%s/%ld", argv[3], i);
            int fd = open(path, O_RDONLY);
            if (fd >= 0) close(fd);
        }
        printf("{\"pid\": %d}\n", getpid());
    } else if (!strcmp(mode, "threads") && argc == 5) {
        long k = atol(argv[3]);
        pthread_t t[64];
        if (k < 1 || k > 64) die("threads: K must be 1-64");
        threads_n = n;
        threads_name = argv[4];
        for (long i = 0; i < k; i++)  /* one at a time: each exits before the next starts */
            if (pthread_create(&t[i], NULL, syscall_thread, i == 0 ? (void *)1 : NULL) || pthread_join(t[i], NULL))
                die("pthread");
        printf("{\"pid\": %d}\n", getpid());
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
