/* Workloads with known CPU and scheduler figures for the CPU set's kernel
 * tests (test_cpu.py).  The tests copy the binary to a unique name, so its
 * comm identifies it.  The kernel's own accounting of each is read by the
 * test (/proc/PID/schedstat of the zombie, delay accounting) or printed.
 *
 *   burn MS             spin until this process's schedstat says MS ms on CPU
 *   hog                 spin until killed
 *   sleeper N US        sleep US microseconds N times
 *   threads K MS        K threads, each spins until its own schedstat says MS
 *                       ms; prints each thread's id and its final on-CPU ns
 *   states SECS FILE    for SECS seconds: 100 ms spinning, 100 ms of 4 KiB
 *                       O_DIRECT reads at random offsets of FILE, 100 ms
 *                       asleep, over and over; prints the reads and the
 *                       sleeps done
 *   spin SECS           spin in spin_inner(), called by spin_outer(), for
 *                       SECS seconds (the profile's test: built with frame
 *                       pointers, so its user stacks unwind)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* The first field of a schedstat file: ns on CPU, as the scheduler counts. */
static unsigned long long on_cpu_ns(const char *path)
{
    FILE *f = fopen(path, "r");
    unsigned long long ns = 0;
    if (!f || fscanf(f, "%llu", &ns) != 1) {
        perror(path);
        exit(1);
    }
    fclose(f);
    return ns;
}

static void spin_until(const char *schedstat, unsigned long long ns)
{
    volatile unsigned long x = 0;
    while (on_cpu_ns(schedstat) < ns)
        for (int i = 0; i < 100000; i++)
            x += i;
}

/* noinline, and outer keeps its frame: the profile must see inner called by outer */
__attribute__((noinline)) unsigned long spin_inner(double end)
{
    volatile unsigned long x = 0;
    do
        for (int i = 0; i < 1000000; i++)
            x += i;
    while (now() < end); /* a vDSO call: a few samples land in it, above spin_inner */
    return x;
}

__attribute__((noinline)) unsigned long spin_outer(double seconds)
{
    unsigned long r = spin_inner(now() + seconds);
    __asm__ volatile("" ::: "memory"); /* no tail call: spin_outer's frame stays */
    return r + 1;
}

static long threads_ms;
static unsigned long long results[64];
static pid_t tids[64];

static void *thread_main(void *arg)
{
    long i = (long)arg;
    tids[i] = syscall(SYS_gettid);
    spin_until("/proc/thread-self/schedstat", threads_ms * 1000000ULL);
    results[i] = on_cpu_ns("/proc/thread-self/schedstat");
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    const char *mode = argv[1];
    if (!strcmp(mode, "burn") && argc == 3) {
        spin_until("/proc/self/schedstat", atoll(argv[2]) * 1000000ULL);
        printf("{\"pid\": %d}\n", getpid());
    } else if (!strcmp(mode, "hog")) {
        volatile unsigned long x = 0;
        for (;;)
            x++;
    } else if (!strcmp(mode, "sleeper") && argc == 4) {
        long n = atol(argv[2]), us = atol(argv[3]);
        struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
        for (long i = 0; i < n; i++)
            clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
        printf("{\"sleeps\": %ld}\n", n);
    } else if (!strcmp(mode, "threads") && argc == 4) {
        long k = atol(argv[2]);
        threads_ms = atol(argv[3]);
        pthread_t t[64];
        if (k < 1 || k > 64)
            return 2;
        for (long i = 0; i < k; i++)
            pthread_create(&t[i], NULL, thread_main, (void *)i);
        for (long i = 0; i < k; i++)
            pthread_join(t[i], NULL);
        printf("{\"threads\": {");
        for (long i = 0; i < k; i++)
            printf("%s\"%d\": %llu", i ? ", " : "", tids[i], results[i]);
        printf("}}\n");
    } else if (!strcmp(mode, "spin") && argc == 3) {
        printf("{\"result\": %lu}\n", spin_outer(atof(argv[2])) & 1);
    } else if (!strcmp(mode, "states") && argc == 4) {
        int fd = open(argv[3], O_RDONLY | O_DIRECT);
        struct stat st;
        void *buf;
        if (fd < 0 || fstat(fd, &st) || posix_memalign(&buf, 4096, 4096)) {
            perror(argv[3]);
            return 1;
        }
        long blocks = st.st_size / 4096, reads = 0, sleeps = 0;
        volatile unsigned long x = 0;
        double end = now() + atof(argv[2]);
        srand(getpid());
        while (now() < end) {
            double t = now() + 0.1;
            while (now() < t)
                for (int i = 0; i < 1000; i++)
                    x += i;
            t = now() + 0.1;
            while (now() < t) {
                if (pread(fd, buf, 4096, (off_t)(rand() % blocks) * 4096) != 4096) {
                    perror("pread");
                    return 1;
                }
                reads++;
            }
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL);
            sleeps++;
        }
        printf("{\"reads\": %ld, \"sleeps\": %ld}\n", reads, sleeps);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
