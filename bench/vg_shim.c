/*
 * For the bench's cpu row only, preloaded into paddock under valgrind:
 * valgrind 3.19 stops with SIGILL at the rdtscp in libhwy's timer probe,
 * which libhwy runs when it is loaded (it comes with libavcodec, through
 * libjxl). This stands in for that one function; nothing paddock runs
 * uses libhwy's timers.
 */
#include <stdint.h>

/* hwy::platform::TimerResolution(), by its mangled name. */
uint64_t _ZN3hwy8platform15TimerResolutionEv(void);

uint64_t _ZN3hwy8platform15TimerResolutionEv(void)
{
    return 1;
}
