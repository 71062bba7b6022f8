/* mpi_sweep: the MPI front end of 'vaebench sweep', built only into
 * vaebench-mpi (when CMake finds MPI). */
#ifndef VB_BENCH_MPI_SWEEP_H
#define VB_BENCH_MPI_SWEEP_H

#include <stdio.h>

#include "vb.h"

/* 'vaebench sweep' under mpirun: rank 0 hands the missing cells out one
 * at a time to the ranks that ask (each runs them with its own --jobs
 * worker processes and writes their rows), then writes the tables and
 * plots. With a single rank it is the plain sweep. Calls MPI_Init and
 * MPI_Finalize itself. */
enum vb_status mpi_sweep_command(int argc, char **argv, FILE *log,
				 struct vb_error *err);

#endif
