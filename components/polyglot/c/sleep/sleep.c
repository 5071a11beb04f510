/* A stock C program (wasi-libc: sleep, clock_gettime, time, getentropy;
 * nothing of weft), built as a WASI command by components/polyglot/build.sh c.
 * Under [sim] it sleeps an hour of virtual time at once, and its "random"
 * bytes come from the simulation's seed. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    unsigned secs = argc > 1 ? (unsigned)atoi(argv[1]) : 3600;
    unsigned char r[8];
    if (getentropy(r, sizeof r) != 0) {
        perror("getentropy");
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    time_t w0 = time(NULL);
    printf("sleeping %u s, random %02x%02x%02x%02x%02x%02x%02x%02x\n", secs, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
    sleep(secs);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("slept %lld s (monotonic), the wall clock moved %lld s\n", (long long)(t1.tv_sec - t0.tv_sec), (long long)(time(NULL) - w0));
    return 0;
}
