/* sweep: the scheduler of a sweep plan (sweep_plan.h): forked workers (one
 * per cell, BLAS threads from the cell's config), the dataset loaded in
 * the parent before forking so workers share it copy-on-write, cells of
 * the other train.precision run by the sibling binary (--cell), atomic
 * rows, resume and shards. Tables, summary and plots come from report.h
 * once the cells are done; the command line is cli.c's. */

/* wait4 (per-worker peak RSS) is a BSD/GNU call outside POSIX 2008. */
#define _DEFAULT_SOURCE

#include "sweep.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "extend.h"
#include "files.h"
#include "ops.h"
#include "report.h"
#include "table.h"
#include "train.h"

struct job {
	pid_t pid;
	size_t cell;
	char id[SWEEP_PLAN_ID_LEN];
	char why[96]; /* a cell without a row: how its worker ended */
};

struct sched {
	const struct sweep_plan *p;
	const struct sweep_options *o;
	char runs_dir[CONFIG_PATH_LEN], rows_dir[CONFIG_PATH_LEN];
	struct train_data data;
	bool have_data;
	char data_key[8192];
	struct job *jobs;
	int n_running;
	size_t total, done, nonfinite, errors, lost;
	double t0;
	bool live;
	long max_rss;
	double sum_rss;
	size_t n_rss;
	char first_lost[160];
	char sibling[PATH_MAX]; /* "" until a cell needs it */
	int lock_fd;            /* DIR/.lock, flock'ed; -1: none */
	long src_epochs;        /* --continue-from: the source's epochs */
};

/* The settings that decide what train_data_load loads: data.* and, for
 * the synthetic set, the seed. */
static void data_key(const struct config *c, char *buf, size_t cap)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < config_key_count(); i++) {
		const char *name = config_key_name(i);
		char v[CONFIG_VALUE_LEN];
		bool seed = !strcmp(name, "train.seed") &&
			    c->data.dataset == CONFIG_DATASET_SYNTHETIC;
		if (strncmp(name, "data.", 5) && !seed)
			continue;
		config_get_at(c, i, v, sizeof v, NULL);
		used += (size_t)snprintf(buf + used, used < cap ? cap - used : 0,
					 "%s=%s\n", name, v);
	}
}

/* Exit status of a worker whose cell failed for a transient reason (I/O:
 * disk full, EIO, too many open files; memory): no row is written, so
 * the next run of the sweep retries the cell. */
#define SWEEP_EXIT_TRANSIENT 4

/* A complete row of cell (id): the file ends with a newline (rows are
 * written whole, atomically: a shorter file was cut), parses as one row
 * with every column, and names this cell's id and index with a status.
 * A torn, empty or foreign row file is not done: its cell runs again. */
static bool row_complete(const char *path, const char *id, size_t cell)
{
	struct table t;
	char *text = NULL, idx[32];
	size_t len = 0;
	bool ok;
	if (files_read(path, &text, &len, NULL) != VB_OK)
		return false;
	ok = len > 0 && text[len - 1] == '\n';
	free(text);
	if (!ok)
		return false;
	table_init(&t);
	snprintf(idx, sizeof idx, "%zu", cell);
	ok = table_read(path, &t, NULL) == VB_OK && t.n_rows == 1 &&
	     !strcmp(table_get(&t, 0, "id"), id) &&
	     !strcmp(table_get(&t, 0, "cell"), idx) &&
	     table_get(&t, 0, "status")[0] != '\0';
	table_free(&t);
	return ok;
}

static void row_path(const struct sched *s, const char *id, char *buf,
		     size_t cap)
{
	snprintf(buf, cap, "%s/%s.csv", s->rows_dir, id);
}

/* What write_row hands to the row writer. */
struct row_job {
	const struct sched *s;
	const char *id;
	size_t cell;
	const struct config *c;
	const struct train_summary *sum;
};

static enum vb_status row_writer(FILE *f, void *ctx, struct vb_error *err)
{
	const struct row_job *j = ctx;
	return table_row_write(f, j->id, j->cell,
			       sweep_plan_mitigation(j->s->p, j->cell), j->c,
			       j->sum, err);
}

/* Writes the row of a finished cell atomically and durably (worker
 * side). */
static enum vb_status write_row(const struct sched *s, const char *id,
				size_t cell, const struct config *c,
				const struct train_summary *sum)
{
	char path[1200];
	struct row_job j = {s, id, cell, c, sum};
	row_path(s, id, path, sizeof path);
	return files_write_with(path, row_writer, &j, true, NULL);
}

static void worker_main(const struct sched *s, size_t cell, const char *id,
			pid_t parent)
{
	struct config c;
	struct train_summary sum;
	struct vb_error e = {0};
	enum vb_status st;
	/* A killed sweep takes its workers with it: no orphan keeps writing
	 * into a run folder that the restarted sweep runs again. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(3);
	if (sweep_plan_cell(s->p, cell, &c, (char[SWEEP_PLAN_ID_LEN]){0}, &e))
		_exit(2);
	snprintf(c.run.out_dir, sizeof c.run.out_dir, "%s", s->runs_dir);
	snprintf(c.run.name, sizeof c.run.name, "%s", id);
	c.run.progress = CONFIG_PROGRESS_OFF;
	op_set_threads((int)c.train.blas_threads);
	/* A killed attempt with a resume checkpoint goes on from its last
	 * epoch, a continuation cell's too (its folder is then its own run,
	 * past the source's copy); otherwise a rerun cell owns its folder:
	 * nothing of a killed attempt (precursors, checkpoints, dumps) stays
	 * beside it. */
	bool resumed = false;
	st = s->o->fresh ? VB_OK
			 : extend_resume_cell(&c, &s->data, &sum, &resumed,
					      s->o->log, &e);
	if (st == VB_OK && !resumed && s->o->continue_from) {
		bool cont;
		st = extend_cell(s->o->continue_from, s->src_epochs, &c,
				 &s->data, &sum, &cont, s->o->log, &e);
	} else if (st == VB_OK && !resumed) {
		char dir[2 * CONFIG_PATH_LEN];
		snprintf(dir, sizeof dir, "%s/%s", c.run.out_dir, c.run.name);
		st = train_claim_dir(dir, true, &e);
		if (st == VB_OK)
			st = train_run(&c, &s->data, &sum, NULL, &e);
	}
	if (st == VB_ERR_IO || st == VB_ERR_NOMEM) {
		/* Not a property of the cell: retried on the next run. */
		if (s->o->log)
			fprintf(s->o->log, "sweep: cell %s: %s (transient; no "
				"row written, the next run retries it)\n", id,
				e.msg);
		_exit(SWEEP_EXIT_TRANSIENT);
	}
	if (st != VB_OK) {
		sum.status = GUARD_STATUS_ERROR;
		snprintf(sum.message, sizeof sum.message, "%.200s", e.msg);
	}
	_exit(write_row(s, id, cell, &c, &sum) == VB_OK ? 0 : 1);
}

/* A cell of the other precision: the sibling binary runs it into the same
 * folder ("sweep DIR/sweep.ini --out DIR --cell INDEX"), as this worker
 * process (its rusage and exit are the cell's). */
static void sibling_worker_main(const struct sched *s, size_t cell,
				pid_t parent)
{
	char ini[CONFIG_PATH_LEN + 16], idx[32];
	char *argv[14];
	int k = 9;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(3);
	snprintf(ini, sizeof ini, "%s/sweep.ini", s->o->out_dir);
	snprintf(idx, sizeof idx, "%zu", cell);
	argv[0] = (char *)s->sibling;
	argv[1] = (char *)"sweep";
	argv[2] = ini;
	argv[3] = (char *)"--out";
	argv[4] = (char *)s->o->out_dir;
	argv[5] = (char *)"--cell";
	argv[6] = idx;
	argv[7] = (char *)"--jobs";
	argv[8] = (char *)"1";
	if (s->o->continue_from) {
		argv[k++] = (char *)"--continue-from";
		argv[k++] = (char *)s->o->continue_from;
	}
	if (s->o->fresh)
		argv[k++] = (char *)"--fresh";
	argv[k++] = (char *)"-q";
	argv[k] = NULL;
	execv(s->sibling, argv);
	_exit(127);
}

bool sweep_precision_here(int precision)
{
	switch (precision) {
	case CONFIG_PRECISION_NATIVE:
		return true;
#ifdef VB_DOUBLE
	case CONFIG_PRECISION_F64:
		return true;
	default:
		return false;
#else
	case CONFIG_PRECISION_F64:
		return false;
	default:
		return true;
#endif
	}
}

enum vb_status sweep_sibling_binary(int precision, char *path, size_t cap,
				    struct vb_error *err)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	const char *want = precision == CONFIG_PRECISION_F64 ? "vaebench-f64"
							     : "vaebench";
	const char *pname = config_enum_name("train.precision", precision);
	char *slash;
	if (n <= 0)
		return vb_fail(err, VB_ERR_CONFIG, "sweep: train.precision = "
			       "%s needs %s next to this binary, but "
			       "/proc/self/exe cannot be read: %s",
			       pname ? pname : "?", want, strerror(errno));
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash)
		slash[1] = '\0';
	else
		self[0] = '\0';
	if ((size_t)snprintf(path, cap, "%s%s", self, want) >= cap)
		return vb_fail(err, VB_ERR_CONFIG, "sweep: path of %s too "
			       "long", want);
	if (access(path, X_OK) != 0)
		return vb_fail(err, VB_ERR_CONFIG, "sweep: train.precision = "
			       "%s needs %s, which is missing or not "
			       "executable (build the target %s)",
			       pname ? pname : "?", path, want);
	return VB_OK;
}

/* Checks that a cell of precision can run: here, or through the sibling
 * binary (found once). */
static enum vb_status check_precision(struct sched *s, size_t cell,
				      int precision, struct vb_error *err)
{
	if (sweep_precision_here(precision))
		return VB_OK;
	if (s->o->one_cell)
		return vb_fail(err, VB_ERR_CONFIG, "sweep: cell %zu has "
			       "train.precision = %s, which this binary (%s) "
			       "does not compute", cell,
			       config_enum_name("train.precision", precision),
			       VB_REAL_NAME);
	if (s->sibling[0])
		return VB_OK;
	return sweep_sibling_binary(precision, s->sibling, sizeof s->sibling,
				    err);
}

static enum vb_status ensure_data(struct sched *s, const struct config *c,
				  struct vb_error *err)
{
	char key[sizeof s->data_key];
	enum vb_status st;
	data_key(c, key, sizeof key);
	if (s->have_data && !strcmp(key, s->data_key))
		return VB_OK;
	if (s->have_data)
		train_data_free(&s->data);
	s->have_data = false;
	st = train_data_load(c, &s->data, err);
	if (st == VB_ERR_IO && err)
		err->status = st = VB_ERR_DATA;
	if (st)
		return st;
	s->have_data = true;
	snprintf(s->data_key, sizeof s->data_key, "%s", key);
	return VB_OK;
}

static void fmt_duration(double sec, char *buf, size_t cap)
{
	long t = (long)(sec + 0.5);
	if (t >= 3600)
		snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60,
			 t % 60);
	else
		snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

/* Status of a finished cell from its row; "" if there is none. */
static void row_status(const struct sched *s, const char *id, char *status,
		       size_t cap, char *where, size_t wcap)
{
	char path[1200];
	struct table t;
	table_init(&t);
	status[0] = where[0] = '\0';
	row_path(s, id, path, sizeof path);
	if (table_read(path, &t, NULL) == VB_OK && t.n_rows == 1) {
		snprintf(status, cap, "%s", table_get(&t, 0, "status"));
		if (table_get(&t, 0, "first_epoch")[0])
			snprintf(where, wcap, " at epoch %s, step %s (%s %s)",
				 table_get(&t, 0, "first_epoch"),
				 table_get(&t, 0, "first_step"),
				 table_get(&t, 0, "first_phase"),
				 table_get(&t, 0, "first_quantity"));
		else if (!strcmp(status, "error"))
			snprintf(where, wcap, ": %s",
				 table_get(&t, 0, "message"));
	}
	table_free(&t);
}

static void cell_label(const struct sweep_plan *p, size_t cell, char *buf,
		       size_t cap)
{
	size_t used = 0, rest = cell;
	char parts[16][256];
	size_t na = p->n_axes < 16 ? p->n_axes : 16;
	buf[0] = '\0';
	if (p->n_mitigations) {
		used = (size_t)snprintf(buf, cap, "%s%s",
					sweep_plan_mitigation(p, cell),
					p->n_axes ? " " : "");
		rest = cell % (p->n_cells / p->n_mitigations);
	}
	for (size_t a = p->n_axes; a-- > 0;) {
		size_t k = rest % p->axes[a].n_values;
		rest /= p->axes[a].n_values;
		if (a < na)
			snprintf(parts[a], sizeof parts[a], "%s=%s",
				 config_key_name((size_t)p->axes[a].key),
				 p->axes[a].values[k]);
	}
	for (size_t a = 0; a < na; a++)
		used += (size_t)snprintf(buf + used,
					 used < cap ? cap - used : 0, "%s%s",
					 a ? " " : "", parts[a]);
}

static void show_progress(struct sched *s, const struct job *j)
{
	FILE *log = s->o->log;
	double el = files_now() - s->t0;
	double eta = s->done ? el / (double)s->done *
				       (double)(s->total - s->done)
			     : 0;
	char st[32], where[400], label[1024], eta_s[32], el_s[32];
	if (!log)
		return;
	row_status(s, j->id, st, sizeof st, where, sizeof where);
	fmt_duration(eta, eta_s, sizeof eta_s);
	fmt_duration(el, el_s, sizeof el_s);
	if (s->live) {
		fprintf(log, "\rsweep: %zu/%zu cells, %zu NaN/Inf, %zu "
			"error(s), %s elapsed, ETA %s   ", s->done, s->total,
			s->nonfinite, s->errors + s->lost, el_s, eta_s);
	} else {
		cell_label(s->p, j->cell, label, sizeof label);
		fprintf(log, "sweep: [%zu/%zu] %s %s: %s%s (ETA %s)\n",
			s->done, s->total, j->id, label,
			st[0] ? st : j->why, where, eta_s);
	}
	fflush(log);
}

static void collect(struct sched *s, pid_t pid, int wstatus,
		    const struct rusage *ru)
{
	int i;
	char st[32], where[400];
	for (i = 0; i < s->o->jobs; i++)
		if (s->jobs[i].pid == pid)
			break;
	if (i == s->o->jobs)
		return;
	s->jobs[i].pid = 0;
	s->n_running--;
	s->done++;
	if (ru->ru_maxrss > s->max_rss)
		s->max_rss = ru->ru_maxrss;
	s->sum_rss += (double)ru->ru_maxrss;
	s->n_rss++;
	row_status(s, s->jobs[i].id, st, sizeof st, where, sizeof where);
	if (!st[0]) {
		if (WIFSIGNALED(wstatus))
			snprintf(s->jobs[i].why, sizeof s->jobs[i].why,
				 "no row: worker killed by signal %d (%s)",
				 WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
		else if (WEXITSTATUS(wstatus) == SWEEP_EXIT_TRANSIENT)
			snprintf(s->jobs[i].why, sizeof s->jobs[i].why,
				 "no row: transient error, retried on the "
				 "next run");
		else
			snprintf(s->jobs[i].why, sizeof s->jobs[i].why,
				 "no row: worker exit status %d (its row "
				 "could not be written)",
				 WEXITSTATUS(wstatus));
		if (!s->lost)
			snprintf(s->first_lost, sizeof s->first_lost,
				 "cell %s, worker %s %d", s->jobs[i].id,
				 WIFSIGNALED(wstatus) ? "killed by signal"
				 : WEXITSTATUS(wstatus) == SWEEP_EXIT_TRANSIENT
					 ? "transient error, exit status"
					 : "exit status",
				 WIFSIGNALED(wstatus) ? WTERMSIG(wstatus)
						      : WEXITSTATUS(wstatus));
		s->lost++;
	} else if (!strcmp(st, "nan") || !strcmp(st, "inf")) {
		s->nonfinite++;
	} else if (!strcmp(st, "error")) {
		s->errors++;
	}
	show_progress(s, &s->jobs[i]);
}

static enum vb_status check_sweep_file(const char *dir,
				       const struct sweep_plan *p,
				       struct vb_error *err)
{
	char path[1200], *old = NULL;
	size_t n = 0;
	snprintf(path, sizeof path, "%s/sweep.ini", dir);
	if (files_exists(path)) {
		/* The same sweep up to comments and blank lines: an edited
		 * comment does not make the folder another sweep. */
		bool same = files_read(path, &old, &n, NULL) == VB_OK &&
			    sweep_plan_same_text(old, n, p->text,
						 p->text_len);
		free(old);
		if (!same)
			return vb_fail(err, VB_ERR_USAGE,
				       "sweep: %s holds a different sweep "
				       "(%s); use another --out folder or "
				       "remove it", dir, path);
		return VB_OK;
	}
	return files_write_atomic(path, p->text, p->text_len, false, err);
}

enum vb_status sweep_report(const struct sweep_options *o,
			    struct vb_error *err)
{
	enum vb_status st = report_write_machine(o->out_dir, o->jobs, err);
	if (st == VB_OK)
		st = report_rebuild(o->out_dir, o->map_x[0] ? o->map_x : NULL,
				    o->map_y[0] ? o->map_y : NULL, err);
	return st;
}

enum vb_status sweep_pending(const struct sweep_plan *p,
			     const struct sweep_options *o, size_t **cells,
			     size_t *n, struct vb_error *err)
{
	char runs[CONFIG_PATH_LEN], rows[CONFIG_PATH_LEN], sibling[PATH_MAX];
	enum vb_status st;
	sibling[0] = '\0';
	*cells = NULL;
	*n = 0;
	if (strlen(o->out_dir) + 6 >= sizeof runs)
		return vb_fail(err, VB_ERR_USAGE, "sweep: --out folder name "
			       "too long");
	snprintf(runs, sizeof runs, "%s/runs", o->out_dir);
	snprintf(rows, sizeof rows, "%s/rows", o->out_dir);
	st = files_mkdirs(runs, err);
	if (st == VB_OK)
		st = files_mkdirs(rows, err);
	if (st == VB_OK)
		st = check_sweep_file(o->out_dir, p, err);
	if (st)
		return st;
	*cells = malloc((p->n_cells + 1) * sizeof **cells);
	if (!*cells)
		return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
	for (size_t i = 0; i < p->n_cells; i++) {
		struct config c;
		char id[SWEEP_PLAN_ID_LEN], path[CONFIG_PATH_LEN + SWEEP_PLAN_ID_LEN + 8];
		if (i % (size_t)o->shard_n != (size_t)(o->shard_k - 1) ||
		    !sweep_plan_in_only(p, o->only, i))
			continue;
		st = sweep_plan_cell(p, i, &c, id, err);
		if (st)
			break;
		snprintf(path, sizeof path, "%s/%s.csv", rows, id);
		if (row_complete(path, id, i))
			continue;
		(*cells)[(*n)++] = i;
		if (!sweep_precision_here(c.train.precision) && !sibling[0])
			st = sweep_sibling_binary(c.train.precision, sibling,
						  sizeof sibling, err);
		if (st)
			break;
	}
	if (st) {
		free(*cells);
		*cells = NULL;
		*n = 0;
	} else {
		long src_epochs;
		if (o->axes_first)
			sweep_plan_order_axes_first(p, *cells, *n);
		/* a source that is no sweep fails when the sweep opens */
		if (o->continue_from &&
		    extend_source_epochs(o->continue_from, &src_epochs,
					 NULL) == VB_OK)
			extend_order_sources(p, o->continue_from, src_epochs,
					    *cells, *n);
	}
	return st;
}

/* One sweep at a time per folder: an exclusive flock on DIR/.lock, held
 * until the sweep ends (the descriptor is closed on exec; a forked
 * worker's copy dies with it). A second sweep waits, saying so, then
 * finds the first one's rows done. Returns the descriptor or -1. */
static int lock_folder(const struct sweep_options *o, struct vb_error *err)
{
	char path[CONFIG_PATH_LEN + 8];
	int fd;
	snprintf(path, sizeof path, "%s/.lock", o->out_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		vb_fail(err, VB_ERR_IO, "sweep: cannot open the lock %s: %s",
			path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return fd;
	if (errno == EWOULDBLOCK) {
		if (o->log) {
			fprintf(o->log, "sweep: another sweep is running in "
				"%s (lock %s held); waiting for it to end\n",
				o->out_dir, path);
			fflush(o->log);
		}
		while (flock(fd, LOCK_EX) != 0)
			if (errno != EINTR)
				break;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
	}
	vb_fail(err, VB_ERR_IO, "sweep: cannot lock %s: %s", path,
		strerror(errno));
	close(fd);
	return -1;
}

/* s for plan p and options o: the runs/ and rows/ folders and sweep.ini
 * (refused when it holds another sweep). */
static enum vb_status sched_open(struct sched *s, const struct sweep_plan *p,
				 const struct sweep_options *o,
				 struct vb_error *err)
{
	enum vb_status st;
	memset(s, 0, sizeof *s);
	s->lock_fd = -1;
	if (o->jobs < 1 || o->shard_n < 1 || o->shard_k < 1 ||
	    o->shard_k > o->shard_n)
		return vb_fail(err, VB_ERR_USAGE, "sweep: bad jobs or shard");
	s->p = p;
	s->o = o;
	if (strlen(o->out_dir) + 6 >= sizeof s->runs_dir)
		return vb_fail(err, VB_ERR_USAGE, "sweep: --out folder name "
			       "longer than %zu characters",
			       sizeof s->runs_dir - 7);
	snprintf(s->runs_dir, sizeof s->runs_dir, "%s/runs", o->out_dir);
	snprintf(s->rows_dir, sizeof s->rows_dir, "%s/rows", o->out_dir);
	st = files_mkdirs(s->runs_dir, err);
	if (st == VB_OK)
		st = files_mkdirs(s->rows_dir, err);
	/* The sibling binary's --cell and the MPI ranks run inside a sweep
	 * that holds the lock already. */
	if (st == VB_OK && !o->one_cell && !o->next_cell) {
		s->lock_fd = lock_folder(o, err);
		if (s->lock_fd < 0)
			st = err ? err->status : VB_ERR_IO;
	}
	if (st == VB_OK) {
		files_remove_stale_temps(o->out_dir);
		files_remove_stale_temps(s->rows_dir);
	}
	if (st == VB_OK)
		st = check_sweep_file(o->out_dir, p, err);
	if (st == VB_OK)
		st = sweep_plan_check_only(p, o->only, err);
	/* the folder's selection, for report's count of its planned cells
	 * (the sibling's --cell and MPI ranks run inside a sweep) */
	if (st == VB_OK && !o->one_cell && !o->next_cell)
		st = sweep_plan_record_only(p, o->out_dir, o->only, err);
	if (st == VB_OK && o->continue_from) {
		st = extend_source_epochs(o->continue_from, &s->src_epochs,
					  err);
		if (st == VB_OK && p->base.train.epochs <= s->src_epochs)
			st = vb_fail(err, VB_ERR_USAGE, "sweep: "
				     "--continue-from %s: its runs have %ld "
				     "epochs, this sweep's train.epochs %lld; "
				     "expected more", o->continue_from,
				     s->src_epochs,
				     (long long)p->base.train.epochs);
		/* report judges "learned" against the source's baseline */
		if (st == VB_OK && !o->one_cell && !o->next_cell)
			st = extend_record_source(o->out_dir,
						  o->continue_from, err);
	}
	return st;
}

/* The cells of this shard (or --cell) without a row into pending; a
 * missing sibling binary stops the sweep here, before any cell runs. */
static enum vb_status list_pending(struct sched *s, size_t *pending,
				   size_t *n_pending, struct sweep_stats *stats,
				   struct vb_error *err)
{
	const struct sweep_plan *p = s->p;
	const struct sweep_options *o = s->o;
	enum vb_status st = VB_OK;
	if (o->one_cell && o->cell >= p->n_cells)
		st = vb_fail(err, VB_ERR_USAGE, "sweep: --cell %zu: the grid "
			     "has %zu cells", o->cell, p->n_cells);
	for (size_t i = 0; st == VB_OK && !o->next_cell && i < p->n_cells;
	     i++) {
		struct config c;
		char id[SWEEP_PLAN_ID_LEN], path[1200];
		if (o->one_cell ? i != o->cell
				: i % (size_t)o->shard_n !=
					  (size_t)(o->shard_k - 1))
			continue;
		if (!o->one_cell && !sweep_plan_in_only(p, o->only, i))
			continue;
		stats->n_shard++;
		st = sweep_plan_cell(p, i, &c, id, err);
		if (st)
			break;
		row_path(s, id, path, sizeof path);
		if (row_complete(path, id, i)) {
			stats->n_done++;
		} else {
			pending[(*n_pending)++] = i;
			st = check_precision(s, i, c.train.precision, err);
		}
	}
	return st;
}

/* Forks the worker of cell into a free slot (the sibling binary's when
 * this one does not compute its precision). */
static enum vb_status start_worker(struct sched *s, size_t cell, pid_t self,
				   struct vb_error *err)
{
	struct config c;
	char id[SWEEP_PLAN_ID_LEN];
	int slot = 0;
	pid_t pid;
	enum vb_status st = sweep_plan_cell(s->p, cell, &c, id, err);
	if (st == VB_OK)
		st = check_precision(s, cell, c.train.precision, err);
	if (st == VB_OK && sweep_precision_here(c.train.precision))
		st = ensure_data(s, &c, err);
	if (st)
		return st;
	while (s->jobs[slot].pid)
		slot++;
	if (s->o->log)
		fflush(s->o->log);
	pid = fork();
	if (pid < 0)
		return vb_fail(err, VB_ERR_INTERNAL, "sweep: fork failed: %s",
			       strerror(errno));
	if (pid == 0 && !sweep_precision_here(c.train.precision))
		sibling_worker_main(s, cell, self);
	if (pid == 0)
		worker_main(s, cell, id, self);
	s->jobs[slot].pid = pid;
	s->jobs[slot].cell = cell;
	memcpy(s->jobs[slot].id, id, SWEEP_PLAN_ID_LEN);
	s->n_running++;
	return VB_OK;
}

/* Waits for one worker and collects it; false when there is none to wait
 * for (an error other than EINTR). */
static bool reap_one(struct sched *s)
{
	int ws;
	struct rusage ru;
	pid_t pid = wait4(-1, &ws, 0, &ru);
	if (pid > 0)
		collect(s, pid, ws, &ru);
	return pid > 0 || errno == EINTR;
}

/* Keeps o->jobs workers busy with the pending cells (or the cells
 * next_cell hands out) until all are done; on an error the running
 * workers still finish their rows. */
static enum vb_status run_workers(struct sched *s, const size_t *pending,
				  size_t n_pending, struct vb_error *err)
{
	const struct sweep_options *o = s->o;
	pid_t self = getpid();
	size_t next = 0;
	bool more = o->next_cell != NULL;
	enum vb_status st = VB_OK;
	while (st == VB_OK &&
	       (next < n_pending || more || s->n_running > 0)) {
		while (st == VB_OK && s->n_running < o->jobs &&
		       (next < n_pending || more)) {
			size_t cell;
			if (o->next_cell) {
				more = o->next_cell(o->next_ctx, &cell);
				if (!more)
					break;
				s->total++;
			} else {
				cell = pending[next++];
			}
			st = start_worker(s, cell, self, err);
		}
		if (s->n_running > 0 && !reap_one(s))
			break;
	}
	while (s->n_running > 0 && reap_one(s))
		;
	return st;
}

/* Status counts over the whole shard, earlier rows included. */
static void count_statuses(const struct sched *s, struct sweep_stats *stats)
{
	const struct sweep_plan *p = s->p;
	const struct sweep_options *o = s->o;
	for (size_t i = 0; i < p->n_cells; i++) {
		struct config c;
		char id[SWEEP_PLAN_ID_LEN], rs[32], where[400];
		if (i % (size_t)o->shard_n != (size_t)(o->shard_k - 1))
			continue;
		sweep_plan_cell(p, i, &c, id, NULL);
		row_status(s, id, rs, sizeof rs, where, sizeof where);
		if (!strcmp(rs, "nan") || !strcmp(rs, "inf"))
			stats->n_nonfinite++;
		else if (!strcmp(rs, "error"))
			stats->n_error++;
	}
}

/* The error of a sweep whose workers lost s->lost cells: the cells
 * without a row come first, whatever else failed (a full disk fails the
 * tables too); an earlier error st is appended. */
static enum vb_status lost_cells(const struct sched *s, enum vb_status st,
				 struct vb_error *err)
{
	char also[sizeof err->msg];
	also[0] = '\0';
	if (st != VB_OK && err) {
		snprintf(also, sizeof also, "; also: %.400s", err->msg);
		err->status = VB_OK;
	}
	return vb_fail(err, VB_ERR_INTERNAL,
		       "sweep: %zu cell(s) ended without a row (first: %s); "
		       "run the sweep again to retry them%s",
		       s->lost, s->first_lost, also);
}

enum vb_status sweep_run(const struct sweep_plan *p,
			 const struct sweep_options *o,
			 struct sweep_stats *stats, struct vb_error *err)
{
	struct sched s;
	size_t *pending = NULL, n_pending = 0;
	struct sweep_stats dummy;
	enum vb_status st;

	if (!stats)
		stats = &dummy;
	memset(stats, 0, sizeof *stats);
	st = sched_open(&s, p, o, err);
	if (st) {
		if (s.lock_fd >= 0)
			close(s.lock_fd);
		return st;
	}
	pending = malloc((p->n_cells + 1) * sizeof *pending);
	s.jobs = calloc((size_t)o->jobs, sizeof *s.jobs);
	if (!pending || !s.jobs) {
		free(pending);
		free(s.jobs);
		close(s.lock_fd);
		return vb_fail(err, VB_ERR_NOMEM, "sweep: no memory");
	}
	stats->n_cells = p->n_cells;
	st = list_pending(&s, pending, &n_pending, stats, err);
	if (o->axes_first)
		sweep_plan_order_axes_first(p, pending, n_pending);
	if (o->continue_from)
		extend_order_sources(p, o->continue_from, s.src_epochs,
				    pending, n_pending);
	s.total = n_pending;
	s.live = o->log && (o->progress == CONFIG_PROGRESS_ON ||
			    (o->progress == CONFIG_PROGRESS_AUTO &&
			     isatty(fileno(o->log))));
	if (st == VB_OK && o->log)
		fprintf(o->log, "sweep: %zu cells in the grid, %zu in shard "
			"%d/%d, %zu already done, %zu to run on %d worker(s)"
			"\n", p->n_cells, stats->n_shard, o->shard_k,
			o->shard_n, stats->n_done, n_pending, o->jobs);
	s.t0 = files_now();
	if (st == VB_OK)
		st = run_workers(&s, pending, n_pending, err);
	if (s.live)
		fputc('\n', o->log);
	stats->seconds = files_now() - s.t0;
	stats->n_run = s.done - s.lost;
	stats->n_lost = s.lost;
	stats->max_rss_kb = s.max_rss;
	stats->mean_rss_kb = s.n_rss ? s.sum_rss / (double)s.n_rss : 0;
	if (s.have_data)
		train_data_free(&s.data);
	if (st == VB_OK && !o->no_report && !o->one_cell)
		count_statuses(&s, stats);
	free(pending);
	free(s.jobs);
	if (st == VB_OK && stats->n_shard == 0 && !o->one_cell &&
	    !o->next_cell) {
		/* More shards than cells (a Slurm array larger than the
		 * grid): nothing to do is not a failure. */
		if (o->log)
			fprintf(o->log, "sweep: shard %d/%d holds no cell (the "
				"grid has %zu); nothing to run, no tables "
				"written\n", o->shard_k, o->shard_n,
				p->n_cells);
	} else if (st == VB_OK && !o->no_report && !o->one_cell) {
		st = sweep_report(o, err);
	}
	if (s.lost)
		st = lost_cells(&s, st, err);
	if (s.lock_fd >= 0)
		close(s.lock_fd);
	return st;
}
