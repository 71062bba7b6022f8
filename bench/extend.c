/* extend: a sweep cell continued from a shorter sweep's run folder. */
#define _DEFAULT_SOURCE /* realpath */
#include "extend.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "files.h"
#include "heldout.h"
#include "resume.h"
#include "sweep_plan.h"

enum vb_status extend_source_epochs(const char *src_dir, long *epochs,
				    struct vb_error *err)
{
	char path[CONFIG_PATH_LEN + 16];
	struct sweep_plan *p = NULL;
	enum vb_status st;
	snprintf(path, sizeof path, "%s/sweep.ini", src_dir);
	if (!files_exists(path))
		return vb_fail(err, VB_ERR_USAGE, "sweep: --continue-from %s: "
			       "not a sweep folder (no sweep.ini)", src_dir);
	st = sweep_plan_load_existing(path, &p, err);
	if (st == VB_OK)
		*epochs = (long)p->base.train.epochs;
	sweep_plan_free(p);
	return st;
}

/* Copies the regular files of src into dst (created), and those of its
 * checkpoints/ folder: a run folder's contents, not its counterfactual/
 * or replay/ studies. */
static enum vb_status copy_run(const char *src, const char *dst,
			       bool sub, struct vb_error *err)
{
	DIR *dir = opendir(src);
	struct dirent *e;
	enum vb_status st = files_mkdirs(dst, err);
	if (!dir)
		return vb_fail(err, VB_ERR_IO, "sweep: cannot read %s", src);
	while (st == VB_OK && (e = readdir(dir)) != NULL) {
		char a[2 * CONFIG_PATH_LEN], b[2 * CONFIG_PATH_LEN];
		struct stat sb;
		if (e->d_name[0] == '.')
			continue; /* also the held-out snapshots, temporaries */
		snprintf(a, sizeof a, "%s/%s", src, e->d_name);
		snprintf(b, sizeof b, "%s/%s", dst, e->d_name);
		if (stat(a, &sb) != 0)
			continue;
		if (S_ISREG(sb.st_mode))
			st = files_copy(a, b, err);
		else if (S_ISDIR(sb.st_mode) && !sub &&
			 !strcmp(e->d_name, "checkpoints"))
			st = copy_run(a, b, true, err);
	}
	closedir(dir);
	return st;
}

bool extend_source_ready(const char *src_dir, long src_epochs,
			 const struct config *c)
{
	struct config src = *c;
	char sid[SWEEP_PLAN_ID_LEN], path[3 * CONFIG_PATH_LEN];
	src.train.epochs = src_epochs;
	sweep_plan_cell_id(&src, sid);
	snprintf(path, sizeof path, "%s/runs/%s/summary.csv", src_dir, sid);
	return files_exists(path);
}

enum vb_status extend_cell(const char *src_dir, long src_epochs,
			   const struct config *c, const struct train_data *d,
			   struct train_summary *sum, bool *continued,
			   FILE *log, struct vb_error *err)
{
	struct config src = *c;
	struct train_summary prev;
	struct train_options to = {0};
	char sid[SWEEP_PLAN_ID_LEN], from[2 * CONFIG_PATH_LEN];
	char dir[2 * CONFIG_PATH_LEN], path[3 * CONFIG_PATH_LEN];
	char ckpt[3 * CONFIG_PATH_LEN];
	enum vb_status st;
	*continued = false;
	src.train.epochs = src_epochs;
	sweep_plan_cell_id(&src, sid);
	snprintf(from, sizeof from, "%s/runs/%s", src_dir, sid);
	snprintf(dir, sizeof dir, "%s/%s", c->run.out_dir, c->run.name);
	snprintf(path, sizeof path, "%s/summary.csv", from);
	st = resume_check_extend(&src, err);
	if (st == VB_OK)
		st = train_claim_dir(dir, true, err);
	if (st != VB_OK)
		return st;
	if (c->train.epochs <= src_epochs || !files_exists(path)) {
		if (log)
			fprintf(log, "sweep: cell %s: %s; it runs from the "
				"start\n", c->run.name,
				c->train.epochs <= src_epochs
					? "no more epochs than its source"
					: "no finished source run");
		return train_run(c, d, sum, NULL, err);
	}
	st = copy_run(from, dir, false, err);
	if (st == VB_OK) {
		snprintf(path, sizeof path, "%s/config.ini", dir);
		st = config_write_file(c, path, err);
	}
	if (st == VB_OK)
		st = resume_prepare(dir, c->train.epochs, ckpt, sizeof ckpt,
				    &prev, err);
	if (st != VB_OK)
		return st;
	*continued = true;
	to.resume = ckpt;
	to.continue_run = true;
	return train_run_continue(c, d, &to, &prev, sum, NULL, err);
}

/* The INI text config_write gives for c into *text (NULL on failure). */
static void config_text(const struct config *c, char **text, size_t *n)
{
	FILE *f;
	*text = NULL;
	f = open_memstream(text, n);
	if (!f)
		return;
	if (config_write(c, f, NULL) != VB_OK) {
		fclose(f);
		free(*text);
		*text = NULL;
		return;
	}
	fclose(f);
}

/* Whether the config.ini at path is c's: loaded over the defaults (so a
 * key added since the file was written takes its default, which is what
 * the run used: settings are added off by default), then written back,
 * it reads byte for byte as c does. */
static bool same_config(const struct config *c, const char *path)
{
	struct config old;
	char *want = NULL, *have = NULL;
	size_t n_want = 0, n_have = 0;
	bool same;
	config_defaults(&old);
	if (config_load_file(&old, path, NULL) != VB_OK)
		return false;
	config_text(c, &want, &n_want);
	config_text(&old, &have, &n_have);
	same = want && have && n_have == n_want &&
	       !memcmp(have, want, n_want);
	free(want);
	free(have);
	return same;
}

enum vb_status extend_resume_cell(const struct config *c,
				  const struct train_data *d,
				  struct train_summary *sum, bool *resumed,
				  FILE *log, struct vb_error *err)
{
	struct train_summary prev;
	struct train_options to = {0};
	struct vb_error why = {0};
	char dir[2 * CONFIG_PATH_LEN], cfg[3 * CONFIG_PATH_LEN];
	char metrics[3 * CONFIG_PATH_LEN], ckpt[3 * CONFIG_PATH_LEN];
	*resumed = false;
	snprintf(dir, sizeof dir, "%s/%s", c->run.out_dir, c->run.name);
	snprintf(cfg, sizeof cfg, "%s/config.ini", dir);
	snprintf(metrics, sizeof metrics, "%s/metrics.csv", dir);
	if (!files_exists(cfg))
		return VB_OK;
	if (!files_exists(metrics)) { /* stopped before it set up its logs */
		if (log)
			fprintf(log, "sweep: cell %s: its run folder has no "
				"epoch log; it runs from the start\n",
				c->run.name);
		return VB_OK;
	}
	if (!same_config(c, cfg)) {
		if (log)
			fprintf(log, "sweep: cell %s: its run folder holds "
				"another config; it runs from the start\n",
				c->run.name);
		return VB_OK;
	}
	if (resume_prepare(dir, 0, ckpt, sizeof ckpt, &prev, &why) !=
	    VB_OK) {
		if (log)
			fprintf(log, "sweep: cell %s: %s; it runs from the "
				"start\n", c->run.name, why.msg);
		return VB_OK;
	}
	if (c->eval.nll_samples > 0 &&
	    !heldout_resumable(dir, prev.nll_best_set ? 0 : prev.best_epoch,
			       prev.nll_last_set ? 0 : prev.last_finite_epoch,
			       prev.epochs_done)) {
		if (log)
			fprintf(log, "sweep: cell %s: its held-out snapshots "
				"are missing or from an older vaebench; it runs "
				"from the start\n", c->run.name);
		return VB_OK;
	}
	*resumed = true;
	if (log)
		fprintf(log, "sweep: cell %s: resumes its interrupted run "
			"after epoch %ld\n", c->run.name, prev.epochs_done);
	to.resume = ckpt;
	to.continue_run = true;
	return train_run_continue(c, d, &to, &prev, sum, NULL, err);
}

/* extend.h; --continue-from's cell order. */
void extend_order_sources(const struct sweep_plan *p, const char *src,
			  long src_epochs, size_t *cells, size_t n)
{
	size_t *later = malloc((n + 1) * sizeof *later), k = 0, m = 0;
	if (!later)
		return;
	for (size_t i = 0; i < n; i++) {
		struct config c;
		struct vb_error e = {0};
		char id[SWEEP_PLAN_ID_LEN];
		if (sweep_plan_cell(p, cells[i], &c, id, &e) == VB_OK &&
		    extend_source_ready(src, src_epochs, &c))
			cells[k++] = cells[i];
		else
			later[m++] = cells[i];
	}
	memcpy(cells + k, later, m * sizeof *later);
	free(later);
}

/* The path of to relative to the folder from (both existing): their real
 * paths' common prefix dropped, "../" for each remaining part of from. */
static enum vb_status relative_path(const char *from, const char *to,
				    char *out, size_t n, struct vb_error *err)
{
	char *a = realpath(from, NULL), *b = realpath(to, NULL);
	size_t i = 0, common = 0, len = 0;
	enum vb_status st = VB_OK;
	if (!a || !b) {
		st = vb_fail(err, VB_ERR_IO, "sweep: cannot resolve %s",
			     a ? to : from);
		goto done;
	}
	for (; a[i] && a[i] == b[i]; i++)
		if (a[i] == '/')
			common = i;
	if (!a[i] && (b[i] == '/' || !b[i]))
		common = i; /* from is to or a parent of it */
	out[0] = '\0';
	for (const char *p = a + common; *p; p++)
		if (*p == '/')
			len += (size_t)snprintf(out + len, len < n ? n - len : 0,
						"../");
	len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s",
				b[common] == '/' ? b + common + 1 : b + common);
	if (len == 0)
		len = (size_t)snprintf(out, n, ".");
	if (len >= n)
		st = vb_fail(err, VB_ERR_USAGE, "sweep: path from %s to %s "
			     "longer than %zu characters", from, to, n - 1);
done:
	free(a);
	free(b);
	return st;
}

/* extend.h */
enum vb_status extend_record_source(const char *out_dir, const char *src_dir,
				    struct vb_error *err)
{
	char rel[CONFIG_PATH_LEN], line[CONFIG_PATH_LEN + 2];
	char path[CONFIG_PATH_LEN + 32];
	enum vb_status st = relative_path(out_dir, src_dir, rel, sizeof rel,
					  err);
	if (st != VB_OK)
		return st;
	snprintf(line, sizeof line, "%s\n", rel);
	snprintf(path, sizeof path, "%s/" EXTEND_SOURCE_FILE, out_dir);
	return files_write_text(path, line, err);
}

/* extend.h */
enum vb_status extend_load_source(const char *dir, struct table *src,
				  char *name, size_t n, bool *found,
				  struct vb_error *err)
{
	char path[CONFIG_PATH_LEN + 32], csv[2 * CONFIG_PATH_LEN + 48];
	char *text = NULL;
	size_t len = 0;
	enum vb_status st;
	*found = false;
	snprintf(path, sizeof path, "%s/" EXTEND_SOURCE_FILE, dir);
	if (!files_exists(path))
		return VB_OK;
	st = files_read(path, &text, &len, err);
	if (st != VB_OK)
		return st;
	while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
		text[--len] = '\0';
	if (!len || strchr(text, '\n') || strlen(text) != len ||
	    len >= n) {
		free(text);
		return vb_fail(err, VB_ERR_DATA, "report: %s: expected one "
			       "line, the path of the sweep folder this one "
			       "continues relative to %s", path, dir);
	}
	snprintf(name, n, "%s", text);
	snprintf(csv, sizeof csv, "%s/%s/results.csv", dir, text);
	free(text);
	if (!files_exists(csv))
		return vb_fail(err, VB_ERR_DATA, "report: %s names %s, which "
			       "has no results.csv; expected the sweep folder "
			       "this one continues", path, name);
	st = table_read(csv, src, err);
	*found = st == VB_OK;
	return st;
}
