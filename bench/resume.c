/* resume: an interrupted run folder made ready for train --resume (the
 * last epoch-boundary checkpoint, metrics.csv and times.csv cut back to it,
 * the running summary values restored). Running the rest is train.c's. */
#include "resume.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "forensics.h"

/* Splits line (modified) at commas into at most cap fields; returns the
 * count. Empty fields are kept. */
static int split_csv(char *line, char **f, int cap)
{
	int n = 0;
	char *p = line;
	while (n < cap) {
		f[n++] = p;
		p = strchr(p, ',');
		if (!p)
			break;
		*p++ = '\0';
	}
	return n;
}

static int field_index(char **f, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(f[i], name))
			return i;
	return -1;
}

/* Keeps the header and the lines of epochs <= last of run_dir/name (a
 * per-epoch log whose first column is the epoch); with metrics, restores
 * the running summary values from the kept lines. */
static enum vb_status cut_log(const char *run_dir, const char *name,
			      long last, struct train_summary *s,
			      struct vb_error *err)
{
	char path[1200], *text = NULL, *line, *save = NULL;
	char *out;
	size_t len = 0, olen = 0;
	int i_ep = 0, i_tl = -1, i_el = -1, nh;
	bool header = true;
	enum vb_status st;
	snprintf(path, sizeof path, "%s/%s", run_dir, name);
	st = files_read(path, &text, &len, err);
	if (st != VB_OK)
		return st;
	out = malloc(len + 1);
	if (!out) {
		free(text);
		return vb_fail(err, VB_ERR_NOMEM, "train: no memory");
	}
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char copy[4096], *f[64];
		size_t ll = strlen(line);
		int n;
		long ep;
		if (ll >= sizeof copy)
			continue;
		memcpy(copy, line, ll + 1);
		n = split_csv(copy, f, 64);
		if (header) {
			header = false;
			nh = n;
			i_ep = field_index(f, nh, "epoch");
			i_tl = field_index(f, nh, "train_loss");
			i_el = field_index(f, nh, "eval_loss");
			if (i_ep < 0) {
				free(text);
				free(out);
				return vb_fail(err, VB_ERR_DATA, "train: %s: "
					       "no epoch column", path);
			}
		} else {
			char *end;
			if (i_ep >= n)
				break;
			ep = strtol(f[i_ep], &end, 10);
			if (end == f[i_ep] || *end || ep > last || ep < 1)
				break; /* a later or torn line */
			if (s && i_tl >= 0 && i_tl < n) {
				double el = i_el >= 0 && i_el < n && f[i_el][0]
						    ? strtod(f[i_el], NULL)
						    : NAN;
				s->epochs_done = ep;
				s->final_train_loss = strtod(f[i_tl], NULL);
				if (!isnan(el))
					s->final_eval_loss = el;
				if (isfinite(el) && el < s->best_eval_loss) {
					s->best_eval_loss = el;
					s->best_epoch = ep;
				}
			}
		}
		memcpy(out + olen, line, ll);
		olen += ll;
		out[olen++] = '\n';
	}
	out[olen] = '\0';
	st = files_write_text(path, out, err);
	free(text);
	free(out);
	return st;
}

/* The status column of run_dir/summary.csv into status (cap bytes); ""
 * when there is no summary. */
static void summary_status(const char *run_dir, char *status, size_t cap)
{
	char path[1200], *text = NULL, *nl, *f[64];
	int n, i;
	status[0] = '\0';
	snprintf(path, sizeof path, "%s/summary.csv", run_dir);
	if (files_read(path, &text, NULL, NULL) != VB_OK)
		return;
	nl = strchr(text, '\n');
	if (nl) {
		*nl = '\0';
		n = split_csv(text, f, 64);
		i = field_index(f, n, "status");
		if (i >= 0) {
			char *row = nl + 1, *g[64];
			int m;
			row[strcspn(row, "\n")] = '\0';
			m = split_csv(row, g, 64);
			if (i < m)
				snprintf(status, cap, "%s", g[i]);
		}
	}
	free(text);
}

/* The latest step checkpoint of run_dir when it lies on an epoch
 * boundary (trainer.batch 0 or absent: run.checkpoint_every = 0 with
 * guard.replay writes one at every epoch end) into ckpt. */
static bool latest_epoch_checkpoint(const char *run_dir, char *ckpt,
				    size_t cap)
{
	struct checkpoint *ck = NULL;
	int64_t batch = 0;
	long step = 0;
	bool ok;
	if (forensics_find_checkpoint(run_dir, 0, ckpt, cap, &step, NULL) !=
		    VB_OK ||
	    checkpoint_open(ckpt, &ck, NULL) != VB_OK)
		return false;
	ok = !checkpoint_data(ck, "trainer.batch") ||
	     (checkpoint_read_i64(ck, "trainer.batch", 0, 0, &batch, NULL) ==
	      VB_OK);
	checkpoint_close(ck);
	return ok;
}

enum vb_status resume_prepare(const char *run_dir, char *ckpt,
				    size_t cap, struct train_summary *resumed,
				    struct vb_error *err)
{
	char path[1200], status[64];
	struct checkpoint *ck = NULL;
	int64_t ep = 0;
	enum vb_status st;
	memset(resumed, 0, sizeof *resumed);
	resumed->best_eval_loss = INFINITY;
	resumed->final_train_loss = resumed->final_eval_loss = NAN;
	snprintf(path, sizeof path, "%s/config.ini", run_dir);
	if (!files_exists(path))
		return vb_fail(err, VB_ERR_DATA, "train: --resume %s: not a "
			       "run folder (no config.ini)", run_dir);
	summary_status(run_dir, status, sizeof status);
	if (status[0] && strcmp(status, "interrupted") != 0)
		return vb_fail(err, VB_ERR_CONFIG, "train: --resume %s: the "
			       "run already ended (status %s); --force "
			       "starts it again", run_dir, status);
	snprintf(ckpt, cap, "%s/" TRAIN_EPOCH_CKPT, run_dir);
	if (!files_exists(ckpt) && !latest_epoch_checkpoint(run_dir, ckpt, cap))
		snprintf(ckpt, cap, "%s/checkpoints/step-%09d.safetensors",
			 run_dir, 0);
	if (!files_exists(ckpt))
		return vb_fail(err, VB_ERR_DATA, "train: --resume %s: no "
			       "resume checkpoint (run.checkpoint_every = 0 "
			       "when it ran?)", run_dir);
	st = checkpoint_open(ckpt, &ck, err);
	if (st == VB_OK)
		st = checkpoint_read_i64(ck, "trainer.epoch", 0,
					 CHECKPOINT_COUNT_MAX, &ep, err);
	checkpoint_close(ck);
	if (st == VB_OK)
		st = cut_log(run_dir, "metrics.csv", (long)ep, resumed, err);
	if (st == VB_OK)
		st = cut_log(run_dir, "times.csv", (long)ep, NULL, err);
	if (st == VB_OK && resumed->epochs_done != (long)ep)
		st = vb_fail(err, VB_ERR_DATA, "train: --resume %s: "
			     "metrics.csv ends at epoch %ld, the checkpoint "
			     "at epoch %lld", run_dir, resumed->epochs_done,
			     (long long)ep);
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/summary.csv", run_dir);
		remove(path);
	}
	return st;
}
