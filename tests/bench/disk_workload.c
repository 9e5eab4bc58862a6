/* The disk phase's workloads (tests/bench/disk.py).
 *
 *   disk_workload reads DEVICE N T
 *       N 4 KiB O_DIRECT preads in all, from T threads at once, each its own
 *       blocks, wrapping at 64 MiB; prints elapsed ns / reads.  With enough
 *       readers the loop device's workers always have work and no CPU idles:
 *       the time per read is then the CPU each read costs (what a probe adds
 *       shows there), not the wake-up latency of an idle worker.  Each read
 *       is aligned and synchronous: one bio, one request.
 *   disk_workload flood PORT SECONDS
 *       1-byte UDP datagrams to 127.0.0.1:PORT as fast as it can for SECONDS
 *       (the harness's nft rule drops them on output: sendto() fails with
 *       EPERM, ignored); prints "SENDS ELAPSED_NS". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096L
#define SPAN (64L << 20)
#define MAX_THREADS 64

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

struct reader {
    const char *dev;
    long n;
    long first;
    int err;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    int fd = open(r->dev, O_RDONLY | O_DIRECT);
    void *buf;
    if (fd < 0 || posix_memalign(&buf, BLOCK, BLOCK) != 0) {
        r->err = 1;
        return NULL;
    }
    memset(buf, 0, BLOCK);
    for (long i = 0; i < r->n; i++)
        if (pread(fd, buf, BLOCK, ((r->first + i) * BLOCK) % SPAN) != BLOCK) {
            r->err = 1;
            break;
        }
    close(fd);
    free(buf);
    return NULL;
}

static int reads(const char *dev, long n, int t)
{
    pthread_t th[MAX_THREADS];
    struct reader rd[MAX_THREADS];
    if (t < 1 || t > MAX_THREADS || n < t)
        return 2;
    double a = now_ns();
    for (int i = 0; i < t; i++) {
        rd[i] = (struct reader){.dev = dev, .n = n / t, .first = i * (SPAN / BLOCK / t), .err = 0};
        if (pthread_create(&th[i], NULL, reader_main, &rd[i]) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    int err = 0;
    for (int i = 0; i < t; i++) {
        pthread_join(th[i], NULL);
        err |= rd[i].err;
    }
    if (err) {
        fprintf(stderr, "a reader failed on %s\n", dev);
        return 1;
    }
    printf("%.1f\n", (now_ns() - a) / (double)(n / t * t));
    return 0;
}

static int flood(int port, double seconds)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("socket");
        return 1;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    double t0 = now_ns(), t;
    long n = 0;
    do {
        for (int i = 0; i < 1000; i++, n++)
            sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to));
        t = now_ns();
    } while (t - t0 < seconds * 1e9);
    printf("%ld %.0f\n", n, t - t0);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "reads") == 0)
        return reads(argv[2], atol(argv[3]), atoi(argv[4]));
    if (argc == 4 && strcmp(argv[1], "flood") == 0)
        return flood(atoi(argv[2]), atof(argv[3]));
    fprintf(stderr, "usage: disk_workload reads DEVICE N THREADS | flood PORT SECONDS\n");
    return 2;
}
