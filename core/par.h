/* par: the thread count of core's own parallel loops (elementwise kernels,
 * gradient zeroing, Adam) and the loop macro they use. OpenMP is the only
 * thread pool of a multi-threaded float run: oneDNN's convolutions and
 * products share it (op_set_threads in ops.h sets all of them together);
 * this module only holds the count. Loops under PAR_FOR compute every
 * element independently, so their results are identical for any count. */
#ifndef VB_CORE_PAR_H
#define VB_CORE_PAR_H

#include <stddef.h>

/* Loops over fewer elements stay on the calling thread: below this a
 * fork/join (about 1-3 us with the workers spinning) costs more than the
 * loop (32768 floats = 128 kB, about 5-10 us of memory traffic). */
#define PAR_MIN_ELEMS 32768

/* Sets (n >= 1; smaller values are taken as 1) and reads the count. Not
 * thread-safe: call it between steps, from the thread that runs them.
 * Without OpenMP (the double build) loops stay serial whatever n is. */
void par_set_threads(int n);
int par_threads(void);
/* Threads for a loop over n elements: par_threads() when n >=
 * PAR_MIN_ELEMS, else 1. */
int par_team(size_t n);

#ifdef _OPENMP
#define PAR_PRAGMA_(x) _Pragma(#x)
/* Put before a for loop over n independent elements (static schedule:
 * thread t always gets the same contiguous block). */
#define PAR_FOR(n)                                                           \
	PAR_PRAGMA_(omp parallel for schedule(static)                        \
		    if (par_team(n) > 1) num_threads(par_team(n)))
#else
#define PAR_FOR(n)
#endif

#endif
