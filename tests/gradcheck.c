/* gradcheck: central differences against the tape's fused backward, its
 * differentiable backward (graph_grad with create_graph) and Hessian-vector
 * products, for any op built by a callback (see gradcheck.h), and the
 * op suites' small helpers (gc_leaf, gc_case, gc_assert_all, the one user
 * of Check here). Uses only core headers and check.h; compiled into every suite, in float and double builds (the
 * default tolerances are meant for the double build). */
#include "gradcheck.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "graph_grad.h"
#include "ops.h"

#ifdef VB_DOUBLE
#define GC_EPS DBL_EPSILON
#else
#define GC_EPS FLT_EPSILON
#endif

/* Relative step of the central differences: h = GC_STEP max(1, |x|),
 * about the cube root of double epsilon (STYLE.md section 6). */
#define GC_STEP 1e-5
/* Rounding noise of a difference quotient: the value differenced carries
 * at most this many ulps (of its magnitude) of error, which does not
 * cancel between f(x + h) and f(x - h); divided by the step it becomes an
 * absolute tolerance that scales with the loss instead of a bare constant.
 * 64 covers the short reductions and gemm sums of the small test shapes. */
#define GC_NOISE_ULPS 64.0
/* A directional derivative smaller than this many times its tolerance
 * could not tell a sign error from noise: the case is then reported as
 * too weak (choose other inputs or another seed). */
#define GC_SIGN_MARGIN 10.0
/* Arena of the test tapes: small shapes only. */
#define GC_ARENA_BYTES ((size_t)1 << 20)

/* ---- deterministic random values (splitmix64, explicit state) ---- */

static uint64_t gc_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double gc_uniform(uint64_t *s)
{
	return (double)(gc_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

void gradcheck_fill(double *x, size_t n, double lo, double hi,
		    uint64_t *state)
{
	for (size_t i = 0; i < n; i++)
		x[i] = lo + (hi - lo) * gc_uniform(state);
}

void gradcheck_fill_signed(double *x, size_t n, double lo, double hi,
			   uint64_t *state)
{
	for (size_t i = 0; i < n; i++) {
		double m = lo + (hi - lo) * gc_uniform(state);
		x[i] = (gc_next(state) >> 63) ? -m : m;
	}
}

bool gradcheck_close(double a, double n, double rtol, double atol)
{
	double m;
	if (!isfinite(a) || !isfinite(n))
		return false;
	m = fabs(a) > fabs(n) ? fabs(a) : fabs(n);
	return fabs(a - n) <= atol + rtol * m;
}

/* ---- one run: the case, its tape and buffers ---- */

struct gc_run {
	const struct gradcheck_case *c;
	struct graph *g;
	int n_leaves;
	size_t n[GRADCHECK_MAX_IN];
	double *x[GRADCHECK_MAX_IN];      /* current point */
	vb_real *val[GRADCHECK_MAX_IN];   /* x as the graph sees it */
	vb_real *slice[GRADCHECK_MAX_IN]; /* PARAM gradient slices */
	double *slice0[GRADCHECK_MAX_IN]; /* their starting values */
	struct graph_node *leaf[GRADCHECK_MAX_IN];
	double *r; /* output weights R */
	size_t n_out;
	int out_ndim;
	size_t out_shape[TENSOR_MAX_DIM];
	double rtol, atol;
	int fails;
};

static bool checked(const struct gc_run *run, int j)
{
	return run->c->leaf[j].kind != GRADCHECK_CONST;
}

/* Checked leaves that also have a differentiable backward. */
static bool checked2(const struct gc_run *run, int j)
{
	return checked(run, j) && !run->c->leaf[j].fused_only &&
	       !run->c->no_vjp;
}

static void fail_graph(struct gc_run *run, const char *what)
{
	fprintf(stderr, "gradcheck: %s: %s: %s\n", run->c->op, what,
		graph_error(run->g)->msg[0] ? graph_error(run->g)->msg
					    : "(no graph error)");
	run->fails++;
}

static void fail_value(struct gc_run *run, const char *path, int j,
		       size_t i, const char *what_a, double a,
		       const char *what_n, double n)
{
	fprintf(stderr, "gradcheck: %s: node %s index %zu (%s): %s %.17g, "
		"%s %.17g\n", run->c->op, run->c->leaf[j].name, i, path,
		what_a, a, what_n, n);
	run->fails++;
}

static void run_free(struct gc_run *run)
{
	for (int j = 0; j < GRADCHECK_MAX_IN; j++) {
		free(run->x[j]);
		free(run->val[j]);
		free(run->slice[j]);
		free(run->slice0[j]);
	}
	free(run->r);
	graph_free(run->g);
}

static int run_init(struct gc_run *run, const struct gradcheck_case *c)
{
	memset(run, 0, sizeof *run);
	run->c = c;
	run->rtol = c->rtol > 0 ? c->rtol : GRADCHECK_RTOL;
	run->atol = c->atol > 0 ? c->atol : GRADCHECK_ATOL;
	run->n_leaves = c->n_leaves;
	if (c->n_leaves < 1 || c->n_leaves > GRADCHECK_MAX_IN || !c->build) {
		fprintf(stderr, "gradcheck: %s: bad case (%d leaves)\n", c->op,
			c->n_leaves);
		return -1;
	}
	if (graph_create(GC_ARENA_BYTES, &run->g, NULL) != VB_OK) {
		fprintf(stderr, "gradcheck: %s: cannot create a graph\n",
			c->op);
		return -1;
	}
	for (int j = 0; j < c->n_leaves; j++) {
		const struct gradcheck_leaf *l = &c->leaf[j];
		size_t n = tensor_shape_count(l->ndim, l->shape);
		run->n[j] = n;
		run->x[j] = malloc((n ? n : 1) * sizeof(double));
		run->val[j] = malloc((n ? n : 1) * sizeof(vb_real));
		run->slice[j] = malloc((n ? n : 1) * sizeof(vb_real));
		run->slice0[j] = malloc((n ? n : 1) * sizeof(double));
		if (!run->x[j] || !run->val[j] || !run->slice[j] ||
		    !run->slice0[j] || (n && !l->data)) {
			fprintf(stderr, "gradcheck: %s: leaf %s: no data or "
				"no memory\n", c->op, l->name);
			return -1;
		}
		memcpy(run->x[j], l->data, n * sizeof(double));
		/* Non-zero start: graph_backward must add to it. */
		for (size_t i = 0; i < n; i++)
			run->slice0[j][i] = 0.125 * (double)(i % 7) - 0.375;
	}
	return 0;
}

static void reset_slices(struct gc_run *run)
{
	for (int j = 0; j < run->n_leaves; j++)
		for (size_t i = 0; i < run->n[j]; i++)
			run->slice[j][i] = (vb_real)run->slice0[j][i];
}

/* Rebuilds the tape at the current point; returns the output or NULL. */
static struct graph_node *build(struct gc_run *run)
{
	const struct gradcheck_case *c = run->c;
	struct graph *g = run->g;
	struct graph_node *out;
	graph_reset(g);
	for (int j = 0; j < run->n_leaves; j++) {
		const struct gradcheck_leaf *l = &c->leaf[j];
		struct tensor t;
		for (size_t i = 0; i < run->n[j]; i++)
			run->val[j][i] = (vb_real)run->x[j][i];
		t = tensor_view(run->val[j], l->ndim, l->shape);
		if (l->kind == GRADCHECK_PARAM)
			run->leaf[j] = graph_param(g, l->name, t,
						   run->slice[j]);
		else
			run->leaf[j] = graph_input(g, l->name, t,
						   l->kind == GRADCHECK_INPUT);
	}
	out = c->build(g, run->leaf, c->ctx);
	if (!out || graph_status(g) != VB_OK) {
		fail_graph(run, "build failed");
		return NULL;
	}
	if (!run->r) {
		uint64_t s = c->seed ^ 0x5eedULL;
		run->n_out = out->value.n;
		run->out_ndim = out->value.ndim;
		memcpy(run->out_shape, out->value.shape,
		       sizeof run->out_shape);
		run->r = malloc((run->n_out ? run->n_out : 1) *
				sizeof(double));
		if (!run->r) {
			fprintf(stderr, "gradcheck: no memory\n");
			run->fails++;
			return NULL;
		}
		gradcheck_fill_signed(run->r, run->n_out, 0.5, 1.5, &s);
	}
	if (out->value.n != run->n_out) {
		fprintf(stderr, "gradcheck: %s: output has %zu elements, "
			"%zu at the first build\n", c->op, out->value.n,
			run->n_out);
		run->fails++;
		return NULL;
	}
	return out;
}

/* L = sum(out * R) in double at the current point; *mag = sum |out R|. */
static int loss_value(struct gc_run *run, double *L, double *mag)
{
	struct graph_node *out = build(run);
	double acc = 0, m = 0;
	if (!out)
		return -1;
	for (size_t i = 0; i < run->n_out; i++) {
		double t = (double)out->value.data[i] * run->r[i];
		acc += t;
		m += fabs(t);
	}
	*L = acc;
	*mag = m;
	return 0;
}

/* L = sum(out * R) on the tape. */
static struct graph_node *loss_node(struct gc_run *run,
				    struct graph_node *out,
				    struct graph_node **rnode)
{
	struct graph *g = run->g;
	struct tensor t = graph_tensor(g, run->out_ndim, run->out_shape);
	if (!t.data)
		return NULL;
	for (size_t i = 0; i < run->n_out; i++)
		t.data[i] = (vb_real)run->r[i];
	*rnode = graph_const(g, "gc.r", t);
	return op_sum(g, "gc.loss", op_mul(g, "gc.weighted", out, *rnode));
}

/* The gradient a pass left for leaf j: INPUT from leaf->grad (zeros when
 * untouched), PARAM from the growth of its slice. */
static void read_fused(struct gc_run *run, int j, double *dst)
{
	struct graph_node *l = run->leaf[j];
	if (run->c->leaf[j].kind == GRADCHECK_PARAM) {
		for (size_t i = 0; i < run->n[j]; i++)
			dst[i] = (double)run->slice[j][i] - run->slice0[j][i];
		return;
	}
	for (size_t i = 0; i < run->n[j]; i++)
		dst[i] = l->grad.data ? (double)l->grad.data[i] : 0;
}

/* Fused gradient of L at the current point into grad[j] (checked leaves). */
static int fused_grad(struct gc_run *run, double **grad)
{
	struct graph_node *out, *L, *rn;
	struct vb_error err = {0};
	reset_slices(run);
	out = build(run);
	if (!out)
		return -1;
	L = loss_node(run, out, &rn);
	if (!L || graph_backward(run->g, L, &err) != VB_OK) {
		fprintf(stderr, "gradcheck: %s: backward: %s\n", run->c->op,
			err.msg[0] ? err.msg : graph_error(run->g)->msg);
		run->fails++;
		return -1;
	}
	for (int j = 0; j < run->n_leaves; j++)
		if (checked(run, j))
			read_fused(run, j, grad[j]);
	return 0;
}

static void check_slices_untouched(struct gc_run *run, const char *path)
{
	for (int j = 0; j < run->n_leaves; j++) {
		if (run->c->leaf[j].kind != GRADCHECK_PARAM)
			continue;
		for (size_t i = 0; i < run->n[j]; i++)
			if ((double)run->slice[j][i] != run->slice0[j][i]) {
				fail_value(run, path, j, i, "slice",
					   (double)run->slice[j][i],
					   "expected untouched",
					   run->slice0[j][i]);
				break;
			}
	}
}

static double **grads_alloc(struct gc_run *run)
{
	double **a = calloc(GRADCHECK_MAX_IN, sizeof *a);
	if (!a)
		return NULL;
	for (int j = 0; j < run->n_leaves; j++) {
		a[j] = calloc(run->n[j] ? run->n[j] : 1, sizeof(double));
		if (!a[j]) {
			for (int k = 0; k < j; k++)
				free(a[k]);
			free(a);
			return NULL;
		}
	}
	return a;
}

static void grads_free(double **a)
{
	if (!a)
		return;
	for (int j = 0; j < GRADCHECK_MAX_IN; j++)
		free(a[j]);
	free(a);
}

/* Copies graph_grad results (one per wrt leaf, in leaf order) into dst. */
static int grad_results(struct gc_run *run, const char *path,
			struct graph_node **res, const int *idx, int n_wrt,
			bool want_const, double **dst)
{
	for (int k = 0; k < n_wrt; k++) {
		int j = idx[k];
		if (!res[k] || res[k]->value.n != run->n[j]) {
			fprintf(stderr, "gradcheck: %s: %s: result for %s "
				"missing or of %zu elements, expected %zu\n",
				run->c->op, path, run->c->leaf[j].name,
				res[k] ? res[k]->value.n : 0, run->n[j]);
			run->fails++;
			return -1;
		}
		if (want_const && (res[k]->kind != GRAPH_NODE_CONST ||
				   res[k]->requires_grad)) {
			fprintf(stderr, "gradcheck: %s: %s: result for %s is "
				"not a constant node\n", run->c->op, path,
				run->c->leaf[j].name);
			run->fails++;
		}
		for (size_t i = 0; i < run->n[j]; i++)
			dst[j][i] = (double)res[k]->value.data[i];
	}
	return 0;
}

/* Compares a gradient with the reference (numeric or another path). */
static void compare(struct gc_run *run, const char *path, int j,
		    const double *a, const double *ref, const char *ref_name,
		    double rtol, double atol)
{
	for (size_t i = 0; i < run->n[j]; i++) {
		if (!isfinite(a[i])) {
			fail_value(run, path, j, i, "analytic (not finite)",
				   a[i], ref_name, ref[i]);
			continue;
		}
		if (!gradcheck_close(a[i], ref[i], rtol, atol))
			fail_value(run, path, j, i, "analytic", a[i], ref_name,
				   ref[i]);
	}
}

/* Element-wise central differences of L for leaf j; *noise gets the
 * largest rounding-noise estimate of the quotients. */
static int numeric_grad(struct gc_run *run, int j, double *num,
			double *noise)
{
	*noise = 0;
	for (size_t i = 0; i < run->n[j]; i++) {
		double x0 = run->x[j][i];
		double h = GC_STEP * (fabs(x0) > 1 ? fabs(x0) : 1);
		double xp = (double)(vb_real)(x0 + h);
		double xm = (double)(vb_real)(x0 - h);
		double lp, lm, mp, mm, nz;
		run->x[j][i] = xp;
		if (loss_value(run, &lp, &mp) != 0)
			return -1;
		run->x[j][i] = xm;
		if (loss_value(run, &lm, &mm) != 0)
			return -1;
		run->x[j][i] = x0;
		num[i] = (lp - lm) / (xp - xm);
		nz = GC_NOISE_ULPS * GC_EPS * (mp > mm ? mp : mm) / (xp - xm);
		if (nz > *noise)
			*noise = nz;
	}
	return 0;
}

/* Signed check of leaf j along a random direction: the directional
 * derivative of L from the analytic gradient against the central
 * difference of L along v. */
static int direction_check(struct gc_run *run, int j, const double *a,
			   uint64_t *rs)
{
	size_t n = run->n[j];
	double *x0 = malloc((n ? n : 1) * sizeof(double));
	double *v = malloc((n ? n : 1) * sizeof(double));
	double xmax = 1, h, lp, lm, mp, mm, dot = 0, num, tol;
	int rc = -1;
	if (!x0 || !v)
		goto out;
	memcpy(x0, run->x[j], n * sizeof(double));
	gradcheck_fill(v, n, -1, 1, rs);
	for (size_t i = 0; i < n; i++)
		xmax = fabs(x0[i]) > xmax ? fabs(x0[i]) : xmax;
	h = GC_STEP * xmax;
	for (size_t i = 0; i < n; i++) {
		double xp = (double)(vb_real)(x0[i] + h * v[i]);
		double xm = (double)(vb_real)(x0[i] - h * v[i]);
		/* the step actually taken, in units of h */
		dot += a[i] * (xp - xm) / (2 * h);
		run->x[j][i] = xp;
	}
	if (loss_value(run, &lp, &mp) != 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		run->x[j][i] = (double)(vb_real)(x0[i] - h * v[i]);
	if (loss_value(run, &lm, &mm) != 0)
		goto out;
	num = (lp - lm) / (2 * h);
	tol = run->atol + GC_NOISE_ULPS * GC_EPS * (mp > mm ? mp : mm) /
				  (2 * h);
	if (!gradcheck_close(dot, num, run->rtol, tol))
		fail_value(run, "direction", j, 0, "analytic <grad, v>", dot,
			   "numeric", num);
	else if (fabs(num) < GC_SIGN_MARGIN * tol)
		fail_value(run, "direction (too weak for a sign check)", j, 0,
			   "analytic <grad, v>", dot, "numeric", num);
	rc = 0;
out:
	if (x0)
		memcpy(run->x[j], x0, n * sizeof(double));
	free(x0);
	free(v);
	return rc;
}

int gradcheck_first(const struct gradcheck_case *c)
{
	struct gc_run run;
	double **fused = NULL, **plain = NULL, **vjp = NULL, **seeded = NULL,
	       **num = NULL;
	struct graph_node *out, *L, *rn, *res[GRADCHECK_MAX_IN];
	int idx_all[GRADCHECK_MAX_IN], idx_vjp[GRADCHECK_MAX_IN];
	int n_all = 0, n_vjp = 0;
	struct vb_error err = {0};
	uint64_t rs = c->seed ^ 0xd1ec7ULL;

	if (run_init(&run, c) != 0) {
		run_free(&run);
		return 1;
	}
	for (int j = 0; j < run.n_leaves; j++) {
		if (checked(&run, j))
			idx_all[n_all++] = j;
		if (checked2(&run, j))
			idx_vjp[n_vjp++] = j;
	}
	if (n_all == 0) {
		fprintf(stderr, "gradcheck: %s: no leaf to check\n", c->op);
		run.fails++;
		goto done;
	}
	fused = grads_alloc(&run);
	plain = grads_alloc(&run);
	vjp = grads_alloc(&run);
	seeded = grads_alloc(&run);
	num = grads_alloc(&run);
	if (!fused || !plain || !vjp || !seeded || !num) {
		run.fails++;
		goto done;
	}

	/* Analytic gradients, all on one tape as a training step would: the
	 * graph_grad variants first (slices must stay as they are), then
	 * graph_backward. */
	reset_slices(&run);
	out = build(&run);
	if (!out)
		goto done;
	for (size_t i = 0; i < out->value.n; i++)
		if (!isfinite((double)out->value.data[i])) {
			fprintf(stderr, "gradcheck: %s: output %zu is %g at "
				"the check point\n", c->op, i,
				(double)out->value.data[i]);
			run.fails++;
			goto done;
		}
	L = loss_node(&run, out, &rn);
	if (!L) {
		fail_graph(&run, "loss");
		goto done;
	}
	{
		struct graph_node *wrt[GRADCHECK_MAX_IN];
		for (int k = 0; k < n_all; k++)
			wrt[k] = run.leaf[idx_all[k]];
		if (graph_grad(run.g, L, NULL, wrt, (size_t)n_all, false, res,
			       &err) != VB_OK) {
			fprintf(stderr, "gradcheck: %s: graph_grad: %s\n",
				c->op, err.msg);
			run.fails++;
			goto done;
		}
		if (grad_results(&run, "graph_grad", res, idx_all, n_all, true,
				 plain) != 0)
			goto done;
		if (graph_grad(run.g, out, rn, wrt, (size_t)n_all, false, res,
			       &err) != VB_OK) {
			fprintf(stderr, "gradcheck: %s: graph_grad(seed): %s\n",
				c->op, err.msg);
			run.fails++;
			goto done;
		}
		if (grad_results(&run, "graph_grad seeded", res, idx_all,
				 n_all, true, seeded) != 0)
			goto done;
		for (int k = 0; k < n_vjp; k++)
			wrt[k] = run.leaf[idx_vjp[k]];
		if (n_vjp > 0) {
			if (graph_grad(run.g, L, NULL, wrt, (size_t)n_vjp, true,
				       res, &err) != VB_OK) {
				fprintf(stderr, "gradcheck: %s: graph_grad"
					"(create_graph): %s\n", c->op,
					err.msg);
				run.fails++;
				goto done;
			}
			if (grad_results(&run, "vjp", res, idx_vjp, n_vjp,
					 false, vjp) != 0)
				goto done;
		}
		check_slices_untouched(&run, "graph_grad");
		if (graph_backward(run.g, L, &err) != VB_OK) {
			fprintf(stderr, "gradcheck: %s: graph_backward: %s\n",
				c->op, err.msg);
			run.fails++;
			goto done;
		}
		for (int k = 0; k < n_all; k++)
			read_fused(&run, idx_all[k], fused[idx_all[k]]);
	}

	for (int k = 0; k < n_all; k++) {
		int j = idx_all[k];
		double noise;
		if (numeric_grad(&run, j, num[j], &noise) != 0)
			goto done;
		compare(&run, "fused", j, fused[j], num[j], "numeric",
			run.rtol, run.atol + noise);
		compare(&run, "graph_grad", j, plain[j], fused[j], "fused",
			GRADCHECK_PATH_RTOL, run.atol);
		compare(&run, "graph_grad seeded", j, seeded[j], fused[j],
			"fused", GRADCHECK_PATH_RTOL, run.atol);
		if (checked2(&run, j)) {
			compare(&run, "vjp", j, vjp[j], num[j], "numeric",
				run.rtol, run.atol + noise);
			compare(&run, "vjp", j, vjp[j], fused[j], "fused",
				GRADCHECK_PATH_RTOL, run.atol);
		}
		if (direction_check(&run, j, fused[j], &rs) != 0)
			goto done;
	}
done:
	grads_free(fused);
	grads_free(plain);
	grads_free(vjp);
	grads_free(seeded);
	grads_free(num);
	run_free(&run);
	return run.fails;
}

int gradcheck_second(const struct gradcheck_case *c)
{
	struct gc_run run;
	double **v = NULL, **hv_grad = NULL, **hv_back = NULL, **gp = NULL,
	       **gm = NULL, **x0 = NULL;
	struct graph_node *out, *L, *rn, *S = NULL, *wrt[GRADCHECK_MAX_IN],
				     *G[GRADCHECK_MAX_IN],
				     *res[GRADCHECK_MAX_IN];
	int idx[GRADCHECK_MAX_IN], n_wrt = 0;
	struct vb_error err = {0};
	uint64_t rs = c->seed ^ 0x4e55ULL;
	double xmax = 1, h, gmax = 0;

	if (run_init(&run, c) != 0) {
		run_free(&run);
		return 1;
	}
	for (int j = 0; j < run.n_leaves; j++)
		if (checked2(&run, j))
			idx[n_wrt++] = j;
	if (n_wrt == 0) {
		fprintf(stderr, "gradcheck: %s: no leaf with a second-order "
			"backward\n", c->op);
		run.fails++;
		goto done;
	}
	v = grads_alloc(&run);
	hv_grad = grads_alloc(&run);
	hv_back = grads_alloc(&run);
	gp = grads_alloc(&run);
	gm = grads_alloc(&run);
	x0 = grads_alloc(&run);
	if (!v || !hv_grad || !hv_back || !gp || !gm || !x0) {
		run.fails++;
		goto done;
	}
	for (int k = 0; k < n_wrt; k++) {
		int j = idx[k];
		gradcheck_fill(v[j], run.n[j], -1, 1, &rs);
		memcpy(x0[j], run.x[j], run.n[j] * sizeof(double));
		for (size_t i = 0; i < run.n[j]; i++)
			xmax = fabs(x0[j][i]) > xmax ? fabs(x0[j][i]) : xmax;
	}

	/* Analytic H v: grad with create_graph, S = sum_k sum(G_k v_k), then
	 * graph_grad of S (slices untouched) and graph_backward of S. */
	reset_slices(&run);
	out = build(&run);
	if (!out)
		goto done;
	L = loss_node(&run, out, &rn);
	for (int k = 0; k < n_wrt; k++)
		wrt[k] = run.leaf[idx[k]];
	if (!L || graph_grad(run.g, L, NULL, wrt, (size_t)n_wrt, true, G,
			     &err) != VB_OK) {
		fprintf(stderr, "gradcheck: %s: graph_grad(create_graph): "
			"%s\n", c->op, err.msg[0] ? err.msg
						  : graph_error(run.g)->msg);
		run.fails++;
		goto done;
	}
	for (int k = 0; k < n_wrt; k++) {
		int j = idx[k];
		const struct gradcheck_leaf *l = &c->leaf[j];
		struct tensor t = graph_tensor(run.g, l->ndim, l->shape);
		struct graph_node *term;
		if (!t.data)
			break;
		for (size_t i = 0; i < run.n[j]; i++)
			t.data[i] = (vb_real)v[j][i];
		term = op_sum(run.g, "gc.hv.term",
			      op_mul(run.g, "gc.hv.gv", G[k],
				     graph_const(run.g, "gc.hv.v", t)));
		S = S ? op_add(run.g, "gc.hv.s", S, term) : term;
	}
	if (!S || graph_status(run.g) != VB_OK) {
		fail_graph(&run, "building <grad, v>");
		goto done;
	}
	if (graph_grad(run.g, S, NULL, wrt, (size_t)n_wrt, false, res, &err) !=
	    VB_OK) {
		fprintf(stderr, "gradcheck: %s: graph_grad of <grad, v>: %s\n",
			c->op, err.msg);
		run.fails++;
		goto done;
	}
	if (grad_results(&run, "hvp graph_grad", res, idx, n_wrt, true,
			 hv_grad) != 0)
		goto done;
	check_slices_untouched(&run, "hvp graph_grad");
	if (graph_backward(run.g, S, &err) != VB_OK) {
		fprintf(stderr, "gradcheck: %s: graph_backward of <grad, v>: "
			"%s\n", c->op, err.msg);
		run.fails++;
		goto done;
	}
	for (int k = 0; k < n_wrt; k++)
		read_fused(&run, idx[k], hv_back[idx[k]]);

	/* Numeric H v: central difference of the fused gradient along v. */
	h = GC_STEP * xmax;
	for (int k = 0; k < n_wrt; k++) {
		int j = idx[k];
		for (size_t i = 0; i < run.n[j]; i++)
			run.x[j][i] = (double)(vb_real)(x0[j][i] +
							h * v[j][i]);
	}
	if (fused_grad(&run, gp) != 0)
		goto done;
	for (int k = 0; k < n_wrt; k++) {
		int j = idx[k];
		for (size_t i = 0; i < run.n[j]; i++)
			run.x[j][i] = (double)(vb_real)(x0[j][i] -
							h * v[j][i]);
	}
	if (fused_grad(&run, gm) != 0)
		goto done;
	for (int k = 0; k < n_wrt; k++) {
		int j = idx[k];
		memcpy(run.x[j], x0[j], run.n[j] * sizeof(double));
		for (size_t i = 0; i < run.n[j]; i++) {
			gmax = fabs(gp[j][i]) > gmax ? fabs(gp[j][i]) : gmax;
			gmax = fabs(gm[j][i]) > gmax ? fabs(gm[j][i]) : gmax;
			/* gp now holds the numeric H v */
			gp[j][i] = (gp[j][i] - gm[j][i]) / (2 * h);
		}
	}
	for (int k = 0; k < n_wrt; k++) {
		int j = idx[k];
		/* same noise model as first order, on the gradient values */
		double tol = run.atol + GC_NOISE_ULPS * GC_EPS * gmax / (2 * h);
		compare(&run, "hvp graph_grad", j, hv_grad[j], gp[j], "numeric",
			run.rtol, tol);
		compare(&run, "hvp backward", j, hv_back[j], gp[j], "numeric",
			run.rtol, tol);
		compare(&run, "hvp backward", j, hv_back[j], hv_grad[j],
			"graph_grad", GRADCHECK_PATH_RTOL, run.atol);
	}
done:
	grads_free(v);
	grads_free(hv_grad);
	grads_free(hv_back);
	grads_free(gp);
	grads_free(gm);
	grads_free(x0);
	run_free(&run);
	return run.fails;
}

struct graph_node *gradcheck_node(const struct graph *g, const char *name)
{
	for (size_t i = 0; i < graph_node_count(g); i++)
		if (strcmp(graph_node_at(g, i)->name, name) == 0)
			return graph_node_at(g, i);
	return NULL;
}

double gradcheck_softplus(double s)
{
	return s > 20 ? s : log1p(exp(s));
}

struct gradcheck_leaf gc_leaf(const char *name, enum gradcheck_kind kind,
			      const double *data, int ndim,
			      const size_t *shape)
{
	struct gradcheck_leaf l;
	memset(&l, 0, sizeof l);
	l.name = name;
	l.kind = kind;
	l.data = data;
	l.ndim = ndim;
	for (int i = 0; i < ndim; i++)
		l.shape[i] = shape[i];
	return l;
}

struct gradcheck_case gc_case(const char *op, gradcheck_build_fn fn,
			      void *ctx, uint64_t seed)
{
	struct gradcheck_case c;
	memset(&c, 0, sizeof c);
	c.op = op;
	c.build = fn;
	c.ctx = ctx;
	c.seed = seed;
	return c;
}

struct graph_node *gc_grad_of(struct graph *g, struct graph_node *y,
			      struct graph_node **leaves, int k)
{
	struct tensor w = graph_tensor(g, y->value.ndim, y->value.shape);
	struct graph_node *s, *res = NULL;
	if (!w.data)
		return NULL;
	for (size_t i = 0; i < w.n; i++)
		w.data[i] = 0.5 + 0.125 * (double)(i % 9);
	s = op_sum(g, "s", op_mul(g, "sw", y, graph_const(g, "w", w)));
	if (!s || graph_grad(g, s, NULL, &leaves[k], 1, true, &res, NULL) !=
		      VB_OK)
		return NULL;
	return res;
}

struct graph_node *gc_order_apply(struct graph *g, struct graph_node *y,
				  struct graph_node **leaves,
				  const struct gc_order *o)
{
	if (y && o->grad_of > 0)
		y = gc_grad_of(g, y, leaves, o->grad_of - 1);
	if (y && o->square_out)
		y = op_square(g, "y.sq", y);
	return y;
}

enum vb_status gc_grad_fails(struct graph *g, struct graph_node *l,
			     struct graph_node *x, const char *needle)
{
	struct graph_node *res[1];
	struct vb_error err = {0};
	enum vb_status st = graph_grad(g, l, NULL, &x, 1, true, res, &err);
	ck_assert_int_ne(st, VB_OK);
	ck_assert_msg(strstr(err.msg, needle) != NULL, "%s", err.msg);
	return st;
}

void gc_assert_grad_of(struct gradcheck_case *c, int k, int *grad_of)
{
	const char *op = c->op;
	char name[128];
	int f;
	snprintf(name, sizeof name, "d/d%s of %s", c->leaf[k].name, op);
	*grad_of = k + 1;
	c->op = name;
	f = gradcheck_first(c);
	ck_assert_msg(f == 0, "%s: %d failures", name, f);
	f = gradcheck_second(c);
	ck_assert_msg(f == 0, "%s: %d second-order failures", name, f);
	*grad_of = 0;
	c->op = op;
}

void gc_assert_all(struct gradcheck_case *c, bool second, bool curved,
		   bool *square_out)
{
	int f = gradcheck_first(c);
	ck_assert_msg(f == 0, "%s: %d first-order failures", c->op, f);
	if (!second)
		return;
	if (curved) {
		f = gradcheck_second(c);
		ck_assert_msg(f == 0, "%s: %d second-order failures", c->op,
			      f);
	}
	*square_out = true;
	f = gradcheck_first(c);
	ck_assert_msg(f == 0, "%s squared: %d first-order failures", c->op,
		      f);
	f = gradcheck_second(c);
	ck_assert_msg(f == 0, "%s squared: %d second-order failures", c->op,
		      f);
	*square_out = false;
}

float *gc_floats(uint64_t seed, size_t n, double lo, double hi)
{
	double *d = malloc(n * sizeof *d);
	float *f = malloc(n * sizeof *f);
	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_nonnull(f);
	gradcheck_fill(d, n, lo, hi, &seed);
	for (size_t i = 0; i < n; i++)
		f[i] = (float)d[i];
	free(d);
	return f;
}

void gc_fill_real(vb_real *x, size_t n, double lo, double hi,
		  uint64_t *state)
{
	double *d = malloc(n * sizeof *d);
	ck_assert_ptr_nonnull(d);
	gradcheck_fill(d, n, lo, hi, state);
	for (size_t i = 0; i < n; i++)
		x[i] = d[i];
	free(d);
}
