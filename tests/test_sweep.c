/* test_sweep: a sweep file as a plan: [sweep] grid expansion and its
 * errors, [mitigations] and its errors, axis values and mitigations that
 * cannot act (inert), stable cell ids, shard strings and the order of the
 * pending cells. The scheduler is test_sweep_run's, the report and
 * figures test_report's. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "figures.h"
#include "files.h"
#include "plot.h"
#include "report.h"
#include "sweep.h"
#include "table.h"
#include "sweeputil.h"
#include "testutil.h"

static struct sweep_plan *parse_ok(const char *text)
{
	struct sweep_plan *p = NULL;
	struct vb_error err = {0};
	enum vb_status st = sweep_plan_parse("t.ini", text, &p, &err);
	ck_assert_msg(st == VB_OK, "%s", err.msg);
	ck_assert_ptr_nonnull(p);
	return p;
}

/* The number of cells of su_base + sweep, which must parse. */
static size_t n_cells_of(const char *sweep)
{
	char *text = su_cat(su_base, sweep);
	struct sweep_plan *p = parse_ok(text);
	size_t n = p->n_cells;
	sweep_plan_free(p);
	free(text);
	return n;
}

static uint64_t fnv(const char *s, uint64_t h)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

START_TEST(test_grid_expansion)
{
	char *text = su_cat(su_base, "[sweep]\n"
			       "optim.lr = 1e-3, logspace(1e-2, 1, 3)\n"
			       "train.seed = 1..5:2 ; seeds 1, 3, 5\n"
			       "model.recon = mse, bce\n");
	struct sweep_plan *p = parse_ok(text);
	struct config c;
	char id[SWEEP_PLAN_ID_LEN], buf[CONFIG_VALUE_LEN];
	ck_assert_uint_eq(p->n_axes, 3);
	ck_assert_uint_eq(p->axes[0].n_values, 4);
	ck_assert_str_eq(p->axes[0].values[0], "0.001");
	ck_assert_str_eq(p->axes[0].values[1], "0.01");
	ck_assert_str_eq(p->axes[0].values[2], "0.1");
	ck_assert_str_eq(p->axes[0].values[3], "1");
	ck_assert_uint_eq(p->axes[1].n_values, 3);
	ck_assert_str_eq(p->axes[1].values[2], "5");
	ck_assert_uint_eq(p->n_cells, 4 * 3 * 2);
	/* the base sections are read: */
	ck_assert_int_eq(p->base.data.dataset, CONFIG_DATASET_SYNTHETIC);
	ck_assert_int_eq(p->base.model.hidden, 16);
	/* first axis outermost, last fastest: cell 7 = lr[1], seed[0],
	 * recon[1] (7 = 1*6 + 0*2 + 1) */
	ck_assert(sweep_plan_cell(p, 7, &c, id, NULL) == VB_OK);
	config_get(&c, "optim.lr", buf, sizeof buf, NULL);
	ck_assert_str_eq(buf, "0.01");
	ck_assert_uint_eq(c.train.seed, 1);
	ck_assert_int_eq(c.model.recon, MODEL_RECON_BCE);
	ck_assert(sweep_plan_cell(p, 24, &c, id, NULL) != VB_OK);
	sweep_plan_free(p);
	free(text);
}
END_TEST

START_TEST(test_cell_ids)
{
	char *text = su_cat(su_base, su_grid);
	struct sweep_plan *p = parse_ok(text), *q = parse_ok(text);
	struct config c, d;
	char id[SWEEP_PLAN_ID_LEN], id2[SWEEP_PLAN_ID_LEN];
	char ids[8][SWEEP_PLAN_ID_LEN];
	struct vb_error err = {0};
	char expect[SWEEP_PLAN_ID_LEN];
	ck_assert_uint_eq(p->n_cells, 8);
	for (size_t i = 0; i < p->n_cells; i++) {
		ck_assert(sweep_plan_cell(p, i, &c, ids[i], NULL) == VB_OK);
		ck_assert(sweep_plan_cell(q, i, &d, id2, NULL) == VB_OK);
		ck_assert_str_eq(ids[i], id2); /* same grid, same ids */
		ck_assert_uint_eq(strlen(ids[i]), 16);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(ids[i], ids[j]);
	}
	/* the id is the settings', not the grid position's: build cell 5
	 * (lr 1e3, batch 16, seed 2) by hand */
	ck_assert(sweep_plan_cell(p, 5, &c, id, NULL) == VB_OK);
	d = p->base;
	ck_assert(config_set(&d, "optim.lr=1000", &err) == VB_OK);
	ck_assert(config_set(&d, "train.batch=16", &err) == VB_OK);
	ck_assert(config_set(&d, "train.seed=2", &err) == VB_OK);
	/* run.* keys do not enter the id */
	ck_assert(config_set(&d, "run.name=other", &err) == VB_OK);
	ck_assert(config_set(&d, "run.out_dir=/elsewhere", &err) == VB_OK);
	sweep_plan_cell_id(&d, id2);
	ck_assert_str_eq(id, id2);
	/* the defaults hash to FNV-1a's offset basis, one setting to the
	 * hash of its line */
	config_defaults(&d);
	sweep_plan_cell_id(&d, id2);
	ck_assert_str_eq(id2, "cbf29ce484222325");
	ck_assert(config_set(&d, "optim.lr=0.5", &err) == VB_OK);
	sweep_plan_cell_id(&d, id2);
	snprintf(expect, sizeof expect, "%016llx",
		 (unsigned long long)fnv("optim.lr=0.5\n",
					 0xcbf29ce484222325ull));
	ck_assert_str_eq(id2, expect);
	sweep_plan_free(p);
	sweep_plan_free(q);
	free(text);
}
END_TEST

static void refused(const char *sweep, const char *needle)
{
	char *text = su_cat(su_base, sweep);
	struct sweep_plan *p = NULL;
	struct vb_error err = {0};
	enum vb_status st = sweep_plan_parse("bad.ini", text, &p, &err);
	ck_assert_msg(st == VB_ERR_CONFIG, "accepted: %s", sweep);
	ck_assert_ptr_null(p);
	ck_assert_msg(strstr(err.msg, needle) != NULL,
		      "message '%s' lacks '%s'", err.msg, needle);
	ck_assert_msg(strchr(err.msg, '\n') == NULL, "not one line: %s",
		      err.msg);
	free(text);
}

START_TEST(test_malformed_refused)
{
	refused("[sweep]\noptim.learning_rate = 1e-3\n",
		"bad.ini:15: unknown key 'optim.learning_rate'");
	refused("[sweep]\noptim.lr = 1e-3, abc\n", "bad.ini:15");
	refused("[sweep]\ntrain.batch = 16, 2.5\n", "train.batch");
	refused("[sweep]\noptim.lr =\n", "empty axis");
	refused("[sweep]\noptim.lr = 1e-3,,1\n", "empty value");
	refused("[sweep]\noptim.lr = 1e-3\noptim.lr = 1\n", "given twice");
	refused("[sweep]\noptim.lr = 1e-3, 0.001\n", "appears twice");
	refused("[sweep]\ntrain.seed = 5..1\n", "integer range");
	refused("[sweep]\noptim.lr = logspace(0, 1, 3)\n", "logspace");
	refused("[sweep]\noptim.lr = logspace(1e-3, 1\n", "')'");
	refused("[sweep]\nrun.name = a, b\n", "cannot be swept");
	refused("[sweep]\noptim.kind = adam, lbfgs\n", "optim.kind");
	refused("[sweep]\noptim.lr = -1\n", "optim.lr");
	refused("[sweep]\njunk line\n", "bad.ini:15");
	/* base errors name the sweep file and its line */
	{
		struct sweep_plan *p = NULL;
		struct vb_error err = {0};
		ck_assert(sweep_plan_parse("b.ini", "[sweep]\ntrain.seed = 1\n"
					   "[train]\nepoch = 3\n",
					   &p, &err) == VB_ERR_CONFIG);
		ck_assert_msg(strstr(err.msg, "b.ini:4") != NULL, "%s",
			      err.msg);
	}
	/* a cell that fails the cross-field checks refuses the whole grid */
	refused("[sweep]\noptim.nesterov = false, true\n", "cell 1");
}
END_TEST

START_TEST(test_mitigations_parse)
{
	char *text = su_cat(su_base, su_mitig);
	char *plain = su_cat(su_base, "[sweep]\ntrain.seed = 1..2\n");
	struct sweep_plan *p = parse_ok(text), *q = parse_ok(plain);
	struct config c;
	char id[SWEEP_PLAN_ID_LEN], id2[SWEEP_PLAN_ID_LEN], buf[CONFIG_VALUE_LEN];
	ck_assert_uint_eq(p->n_mitigations, 3);
	ck_assert_uint_eq(p->n_axes, 1);
	ck_assert_uint_eq(p->n_cells, 6);
	ck_assert_str_eq(p->mitigations[0].name, "baseline");
	ck_assert_int_eq(p->mitigations[0].line, 15);
	ck_assert_uint_eq(p->mitigations[0].n_sets, 0);
	ck_assert_str_eq(p->mitigations[1].name, "hot");
	ck_assert_uint_eq(p->mitigations[1].n_sets, 1);
	ck_assert_str_eq(p->mitigations[1].values[0], "1000"); /* canonical */
	ck_assert_uint_eq(p->mitigations[2].n_sets, 2);
	/* the base sections are read, the mitigation lines are not base */
	ck_assert_int_eq(p->base.optim.kind, OPTIM_SGD);
	ck_assert_double_eq(p->base.optim.lr, 1e-3);
	/* mitigations outermost, then the axes: cell 3 = hot, seed 2 */
	ck_assert_str_eq(sweep_plan_mitigation(p, 0), "baseline");
	ck_assert_str_eq(sweep_plan_mitigation(p, 3), "hot");
	ck_assert_str_eq(sweep_plan_mitigation(p, 5), "clip");
	ck_assert_str_eq(sweep_plan_mitigation(p, 6), "");
	ck_assert_str_eq(sweep_plan_mitigation(q, 0), "");
	ck_assert(sweep_plan_cell(p, 3, &c, id, NULL) == VB_OK);
	ck_assert_double_eq(c.optim.lr, 1e3);
	ck_assert_uint_eq(c.train.seed, 2);
	ck_assert(sweep_plan_cell(p, 4, &c, id, NULL) == VB_OK);
	config_get(&c, "optim.clip", buf, sizeof buf, NULL);
	ck_assert_str_eq(buf, "norm");
	ck_assert_double_eq(c.optim.clip_max, 5);
	ck_assert_double_eq(c.optim.lr, 1e-3);
	ck_assert_uint_eq(c.train.seed, 1);
	/* baseline x seeds has the ids of the plain seeds sweep */
	for (size_t i = 0; i < 2; i++) {
		ck_assert(sweep_plan_cell(p, i, &c, id, NULL) == VB_OK);
		ck_assert(sweep_plan_cell(q, i, &c, id2, NULL) == VB_OK);
		ck_assert_str_eq(id, id2);
	}
	ck_assert(sweep_plan_cell(p, 2, &c, id, NULL) == VB_OK);
	ck_assert_str_ne(id, id2);
	sweep_plan_free(p);
	sweep_plan_free(q);
	free(text);
	free(plain);
	/* [mitigations] alone: one cell per mitigation */
	text = su_cat(su_base, "[mitigations]\nbaseline =\nslow = optim.lr=1e-5\n");
	p = parse_ok(text);
	ck_assert_uint_eq(p->n_cells, 2);
	ck_assert(sweep_plan_cell(p, 1, &c, id, NULL) == VB_OK);
	ck_assert_double_eq(c.optim.lr, 1e-5);
	sweep_plan_free(p);
	free(text);
}
END_TEST

/* sweep_pending of p under o gives exactly the cells want (n_want). */
static void expect_pending(const struct sweep_plan *p,
			   const struct sweep_options *o, const size_t *want,
			   size_t n_want)
{
	struct vb_error err = {0};
	size_t *cells = NULL, n = 0;
	ck_assert_msg(sweep_pending(p, o, &cells, &n, &err) == VB_OK, "%s",
		      err.msg);
	ck_assert_uint_eq(n, n_want);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(cells[i], want[i]);
	free(cells);
}

/* --order seeds-first: the pending cells come axis point by axis point
 * (every mitigation at seed 1, then at seed 2); grid order is the
 * default. (Cells with a row leave the list before it is ordered:
 * test_sweep_run's resume tests cover that part.) */
START_TEST(test_order_seeds_first)
{
	char *text = su_cat(su_base, su_mitig);
	struct sweep_plan *p = parse_ok(text);
	struct sweep_options o;
	const char *tmp = tu_tmpdir("order");
	const size_t grid[] = {0, 1, 2, 3, 4, 5}, want[] = {0, 2, 4, 1, 3, 5};
	su_options(&o, tmp, 1);
	expect_pending(p, &o, grid, 6);
	o.axes_first = true;
	expect_pending(p, &o, want, 6);
	sweep_plan_free(p);
	free(text);
}
END_TEST

/* --continue-from: the cells whose source run is on the machine come
 * first (they continue from its checkpoint; the sources are not committed
 * and may not outlive the machine), each group in its order. */
START_TEST(test_order_sources_first)
{
	char *text = su_cat(su_base, su_mitig);
	struct sweep_plan *p = parse_ok(text);
	struct sweep_options o;
	char out[1024], src[1024]; /* tu_tmpdir's buffer is reused */
	snprintf(out, sizeof out, "%s", tu_tmpdir("order_src_out"));
	snprintf(src, sizeof src, "%s", tu_tmpdir("order_src"));
	char *short_text = su_cat(su_base, su_mitig);
	char path[1200], *at = strstr(short_text, "epochs = 2");
	const size_t ready[] = {1, 4};
	const size_t want[] = {4, 1, 0, 2, 3, 5};
	ck_assert_ptr_nonnull(at);
	at[9] = '1'; /* the source sweep: 1 epoch */
	snprintf(path, sizeof path, "%s/sweep.ini", src);
	ck_assert_int_eq(tu_write_file(path, short_text, strlen(short_text)),
			 0);
	for (size_t i = 0; i < 2; i++) {
		struct config c;
		char id[SWEEP_PLAN_ID_LEN], sid[SWEEP_PLAN_ID_LEN];
		ck_assert(sweep_plan_cell(p, ready[i], &c, id, NULL) == VB_OK);
		c.train.epochs = 1;
		sweep_plan_cell_id(&c, sid);
		snprintf(path, sizeof path, "%s/runs/%s", src, sid);
		ck_assert(files_mkdirs(path, NULL) == VB_OK);
		snprintf(path, sizeof path, "%s/runs/%s/summary.csv", src, sid);
		ck_assert_int_eq(tu_write_file(path, "x\n", 2), 0);
	}
	su_options(&o, out, 1);
	o.axes_first = true;
	o.continue_from = src;
	expect_pending(p, &o, want, 6);
	sweep_plan_free(p);
	free(text);
	free(short_text);
}
END_TEST

/* Issue 15 item 7: an axis value or mitigation setting that cannot act
 * in its cell (config_key_effective) refuses the grid in one line naming
 * the axis, the value and the setting that disables it. */
START_TEST(test_inert_refused)
{
	refused("[nets]\ninit = pytorch\n[sweep]\nnets.init_scale = 1, 2\n",
		"axis nets.init_scale = 1 has no effect in cell 0: it requires "
		"nets.init = scaled (here nets.init = pytorch)");
	ck_assert_uint_eq(n_cells_of("[nets]\ninit = scaled\n[sweep]\n"
				     "nets.init_scale = 1, 2\n"), 2);
	/* the enabling setting may come from another axis: then its other
	 * values make the cells inert */
	refused("[sweep]\nnets.init = scaled, pytorch\n"
		"nets.init_scale = 1, 2\n",
		"axis nets.init_scale = 1 has no effect in cell 2");
	refused("[sweep]\ndata.standardize_eps = 0, 1e-5\n",
		"data.standardize_eps = 0 has no effect in cell 0: it requires "
		"data.standardize = true (here data.standardize = false)");
	/* su_base is sgd: Adam's epsilon cannot act */
	refused("[sweep]\noptim.adam_eps = 1e-8, 1e-4\n",
		"optim.adam_eps = 1e-08 has no effect in cell 0: it requires "
		"optim.kind = adam,adamw (here optim.kind = sgd)");
	refused("[sweep]\nrhvae.eps_lf = 0.001, 0.01\n",
		"it requires model.kind = rhvae,hvae (here model.kind = vae)");
	/* an alternative: nonfinite acts with an injected input fault too */
	refused("[sweep]\ndata.nonfinite = pass, scrub\n",
		"data.standardize = true | inject.nan_step != -1 (here "
		"data.standardize = false, inject.nan_step = -1)");
	ck_assert_uint_eq(n_cells_of("[inject]\nnan_step = 3\n[sweep]\n"
				     "data.nonfinite = pass, scrub\n"), 2);
	/* mitigations: the same check, naming the mitigation and its line */
	refused("[mitigations]\nbaseline =\nclip = optim.clip_max=5\n",
		"bad.ini:16: mitigation clip sets optim.clip_max = 5, which has "
		"no effect in cell 1: it requires optim.clip = norm,value (here "
		"optim.clip = none)");
	ck_assert_uint_eq(n_cells_of("[mitigations]\nbaseline =\nclip = "
				     "optim.clip=norm optim.clip_max=5\n"), 2);
	/* a mitigation that enables an axis: only its cells are checked */
	refused("[mitigations]\nbaseline =\nscaled = nets.init=scaled\n"
		"[sweep]\nnets.init_scale = 1, 2\n",
		"of mitigation baseline: it requires nets.init = scaled");
}
END_TEST

START_TEST(test_mitigations_malformed)
{
	/* su_base has 13 lines: [mitigations] is line 14, the first entry 15 */
	refused("[mitigations]\nbaseline =\nx = optim.learning_rate=1\n",
		"bad.ini:16: mitigation x: unknown key 'optim.learning_rate'");
	refused("[mitigations]\na = optim.lr=abc\n",
		"bad.ini:15: mitigation a: optim.lr = \"abc\": expected");
	refused("[mitigations]\na = optim.lr=-1\n", "bad.ini:15: mitigation a");
	refused("[mitigations]\na = run.name=x\n",
		"bad.ini:15: mitigation a: run.name cannot be set");
	refused("[mitigations]\na = optim.lr=1\nb =\na = optim.lr=2\n",
		"bad.ini:17: mitigation a given twice (first on line 15)");
	refused("[mitigations]\nmy fix = optim.lr=1\n",
		"bad.ini:15: mitigation name 'my fix'");
	refused("[mitigations]\n= optim.lr=1\n", "bad.ini:15: mitigation name");
	refused("[mitigations]\nclip = optim.clip norm\n",
		"bad.ini:15: mitigation clip: 'optim.clip': expected "
		"section.key=value");
	refused("[mitigations]\nbaseline\n", "bad.ini:15: expected 'NAME = ");
	refused("[mitigations]\na = optim.lr=1 optim.lr=2\n",
		"bad.ini:15: mitigation a: optim.lr given twice");
	/* 1e-3 is the base's lr: the same cell as baseline */
	refused("[mitigations]\nbaseline =\nsame = optim.lr=0.001\n",
		"bad.ini:16: mitigation same resolves to the same settings as "
		"baseline (line 15)");
	/* a key that is also an axis, the axis after the mitigations */
	refused("[mitigations]\nbaseline =\nlow = optim.lr=1e-4\n[sweep]\n"
		"optim.lr = 1e-3, 1e-2\n",
		"bad.ini:16: mitigation low sets optim.lr, which is also a "
		"[sweep] axis");
	refused("[mitigations]\n; nothing yet\n",
		"bad.ini:14: [mitigations] has no mitigation");
	/* cross-field checks name the mitigation and its line */
	refused("[mitigations]\nbaseline =\nnest = optim.nesterov=true\n",
		"cell 1 (mitigation nest, line 16)");
}
END_TEST

START_TEST(test_shard_parse)
{
	int k, n;
	ck_assert(sweep_plan_parse_shard("2/5", &k, &n, NULL) == VB_OK);
	ck_assert_int_eq(k, 2);
	ck_assert_int_eq(n, 5);
	ck_assert(sweep_plan_parse_shard("0/5", &k, &n, NULL) == VB_ERR_USAGE);
	ck_assert(sweep_plan_parse_shard("6/5", &k, &n, NULL) == VB_ERR_USAGE);
	ck_assert(sweep_plan_parse_shard("1-5", &k, &n, NULL) == VB_ERR_USAGE);
	ck_assert(sweep_plan_parse_shard("1/", &k, &n, NULL) == VB_ERR_USAGE);
}
END_TEST

TU_MAIN("sweep", "plan", 0, test_grid_expansion, test_cell_ids,
	test_malformed_refused, test_shard_parse, test_mitigations_parse,
	test_mitigations_malformed, test_inert_refused, test_order_seeds_first,
	test_order_sources_first)
