/* The scheduler bench's workloads (tests/bench/sched.py).
 *
 *   pingpong N CPU_A CPU_B  two processes pass one byte back and forth over
 *                           two pipes, N round trips, the parent pinned to
 *                           CPU_A and the child to CPU_B.  One CPU: each hop
 *                           is a wakeup and a switch from one to the other
 *                           (the switch loop).  Two CPUs: each hop wakes a
 *                           task on the other CPU (the wakeup loop).
 *                           Prints: N ns_per_round_trip
 *   spin                    spin until killed (the bench makes it SCHED_IDLE:
 *                           it keeps a vCPU out of its idle halt)
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    sched_setaffinity(0, sizeof(s), &s);
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "spin")) {
        volatile unsigned long x = 0;
        for (;;)
            x++;
    }
    if (argc != 5 || strcmp(argv[1], "pingpong"))
        return 2;
    long n = atol(argv[2]);
    int a = atoi(argv[3]), b = atoi(argv[4]);
    int there[2], back[2];
    char c = 0;
    if (n < 2 || pipe(there) || pipe(back))
        return 1;
    pid_t child = fork();
    if (child == 0) {
        pin(b);
        for (long i = 0; i < n; i++)
            if (read(there[0], &c, 1) != 1 || write(back[1], &c, 1) != 1)
                _exit(1);
        _exit(0);
    }
    pin(a);
    /* one round trip first: the child is pinned and waiting */
    if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1)
        return 1;
    double t0 = now_ns();
    for (long i = 1; i < n; i++)
        if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1)
            return 1;
    double t1 = now_ns();
    waitpid(child, NULL, 0);
    printf("%ld %.1f\n", n - 1, (t1 - t0) / (n - 1));
    return 0;
}
