/* perfutil: what the benchmark programs share: the tape's product FLOPs
 * and the median of a run of timings. */
#ifndef VB_PERF_PERFUTIL_H
#define VB_PERF_PERFUTIL_H

#include "graph.h"

/* FLOPs of one step on g: every linear, matmul, bmm and convolution
 * node's forward, three times for the nodes the backward pass visits. */
double perf_tape_flops(const struct graph *g);

/* Median of n > 0 values (sorts v). */
double perf_median(double *v, int n);

#endif
