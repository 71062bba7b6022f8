/* mpi_sweep: dynamic hand-out of sweep cells to MPI ranks. Rank 0 is the
 * coordinator: it lists the cells without a row, answers each request
 * with the next one (or -1 when none are left) and, once every rank has
 * finished, writes results.csv, summary.md and the plots. The other ranks
 * run sweep_run with a cell source that asks rank 0. Rows are the same
 * atomic per-cell files as in a local sweep, so a killed MPI sweep is
 * resumed by running it again (locally or under MPI). */
#include "mpi_sweep.h"

#include <mpi.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sweep.h"

enum { MPI_TAG_REQUEST = 1, MPI_TAG_CELL = 2 };

struct mpi_source {
	bool ended; /* rank 0 answered -1 */
};

static bool mpi_next_cell(void *ctx, size_t *cell)
{
	struct mpi_source *src = ctx;
	int ask = 0;
	long c = -1;
	if (src->ended)
		return false;
	MPI_Send(&ask, 1, MPI_INT, 0, MPI_TAG_REQUEST, MPI_COMM_WORLD);
	MPI_Recv(&c, 1, MPI_LONG, 0, MPI_TAG_CELL, MPI_COMM_WORLD,
		 MPI_STATUS_IGNORE);
	if (c < 0) {
		src->ended = true;
		return false;
	}
	*cell = (size_t)c;
	return true;
}

/* Rank 0: answer requests until every other rank has been told -1. */
static void serve(const size_t *cells, size_t n, int size, FILE *log)
{
	size_t next = 0;
	int finished = 0;
	while (finished < size - 1) {
		int ask;
		long c;
		MPI_Status stat;
		MPI_Recv(&ask, 1, MPI_INT, MPI_ANY_SOURCE, MPI_TAG_REQUEST,
			 MPI_COMM_WORLD, &stat);
		c = next < n ? (long)cells[next++] : -1;
		if (c < 0)
			finished++;
		else if (log)
			fprintf(log, "sweep(mpi): cell %ld to rank %d (%zu/%zu)\n",
				c, stat.MPI_SOURCE, next, n);
		MPI_Send(&c, 1, MPI_LONG, stat.MPI_SOURCE, MPI_TAG_CELL,
			 MPI_COMM_WORLD);
	}
}

enum vb_status mpi_sweep_command(int argc, char **argv, FILE *log,
				 struct vb_error *err)
{
	struct sweep_options o;
	struct sweep_plan *p = NULL;
	struct sweep_stats stats;
	int rank = 0, size = 1, ok;
	enum vb_status st;

	MPI_Init(NULL, NULL);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	st = cli_sweep_load(argc, argv, rank == 0 ? log : NULL, &o, &p, err);
	if (size == 1) {
		if (st == VB_OK)
			st = sweep_run(p, &o, &stats, err);
		goto done;
	}
	if (rank == 0) {
		size_t *cells = NULL, n = 0;
		if (st == VB_OK)
			st = sweep_pending(p, &o, &cells, &n, err);
		ok = st == VB_OK;
		MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
		if (ok) {
			if (log)
				fprintf(log, "sweep(mpi): %zu cell(s) to run on "
					"%d rank(s)\n", n, size - 1);
			serve(cells, n, size, log);
		}
		free(cells);
		MPI_Barrier(MPI_COMM_WORLD);
		if (ok)
			st = sweep_report(&o, err);
	} else {
		struct mpi_source src = {false};
		MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
		if (ok && st == VB_OK) {
			o.next_cell = mpi_next_cell;
			o.next_ctx = &src;
			o.no_report = true;
			o.log = NULL;
			st = sweep_run(p, &o, &stats, err);
		}
		/* a rank that stopped early still tells rank 0 it is done
		 * (the cells it is handed are left for a rerun) */
		if (ok) {
			size_t dropped;
			while (mpi_next_cell(&src, &dropped))
				;
		}
		MPI_Barrier(MPI_COMM_WORLD);
		if (!ok && st == VB_OK)
			st = vb_fail(err, VB_ERR_INTERNAL,
				     "sweep(mpi): rank 0 failed to start");
	}
done:
	sweep_plan_free(p);
	MPI_Finalize();
	return st;
}
