/* Syscall-heavy loops for the overhead benchmark.
 * usage: workload MODE N   MODE: read (1-byte read of /dev/zero), getppid,
 *        open (open+close /etc/hostname), tcp (connect+accept+close over
 *        127.0.0.1), udp (sendto+recv of a 64-byte datagram over 127.0.0.1),
 *        tcpbulk (a loopback TCP stream: N writes of 64 KiB, a child reading)
 * prints: MODE N ns_per_op */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BULK_CHUNK 65536

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "read";
    long n = argc > 2 ? atol(argv[2]) : 1000000;
    char buf[1];
    int fd = open("/dev/zero", O_RDONLY);
    int ls = -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int us = -1, ur = -1;
    char dgram[64] = {0};
    if (!strcmp(mode, "udp")) {
        ur = socket(AF_INET, SOCK_DGRAM, 0);
        us = socket(AF_INET, SOCK_DGRAM, 0);
        if (bind(ur, (struct sockaddr *)&a, sizeof(a)) || getsockname(ur, (struct sockaddr *)&a, &alen))
            return 1;
    }
    if (!strcmp(mode, "tcp") || !strcmp(mode, "tcpbulk")) {
        ls = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 128) || getsockname(ls, (struct sockaddr *)&a, &alen))
            return 1;
    }
    static char chunk[BULK_CHUNK];
    int bulk = -1;
    pid_t reader = -1;
    if (!strcmp(mode, "tcpbulk")) {
        /* the reader: a child on the other core, reading until EOF */
        reader = fork();
        if (reader == 0) {
            int s = accept(ls, NULL, NULL);
            while (read(s, chunk, sizeof(chunk)) > 0)
                ;
            _exit(0);
        }
        bulk = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(bulk, (struct sockaddr *)&a, sizeof(a))) return 1;
    }
    double t0 = now();
    if (!strcmp(mode, "tcpbulk")) {
        for (long i = 0; i < n; i++)
            for (size_t done = 0; done < sizeof(chunk);) {
                ssize_t w = write(bulk, chunk + done, sizeof(chunk) - done);
                if (w <= 0) return 1;
                done += w;
            }
        close(bulk);
        waitpid(reader, NULL, 0); /* every byte read */
    } else if (!strcmp(mode, "read")) {
        for (long i = 0; i < n; i++)
            if (read(fd, buf, 1) != 1) return 1;
    } else if (!strcmp(mode, "open")) {
        for (long i = 0; i < n; i++) {
            int f = open("/etc/hostname", O_RDONLY);
            if (f < 0) return 1;
            close(f);
        }
    } else if (!strcmp(mode, "udp")) {
        for (long i = 0; i < n; i++) {
            if (sendto(us, dgram, sizeof(dgram), 0, (struct sockaddr *)&a, sizeof(a)) != sizeof(dgram)) return 1;
            if (recv(ur, dgram, sizeof(dgram), 0) != sizeof(dgram)) return 1;
        }
    } else if (!strcmp(mode, "tcp")) {
        for (long i = 0; i < n; i++) {
            int c = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(c, (struct sockaddr *)&a, sizeof(a))) return 1;
            struct sockaddr_in peer;
            socklen_t plen = sizeof(peer);
            int s = accept(ls, (struct sockaddr *)&peer, &plen);
            if (s < 0) return 1;
            /* Reset instead of FIN: no TIME_WAIT, so a long run never runs
             * out of ephemeral ports. */
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            close(c);
            close(s);
        }
    } else {
        for (long i = 0; i < n; i++) syscall(SYS_getppid);
    }
    double t1 = now();
    printf("%s %ld %.1f\n", mode, n, (t1 - t0) / n);
    return 0;
}
