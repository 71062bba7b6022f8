/* conv_dnnl: oneDNN (dnnl.h, its C API) behind the float build's
 * convolution kernels: a per-owner cache of convolution primitives keyed
 * by (kind, shape, bias, accumulate, thread count), each with the
 * reorders between the callers' plain NCHW / OIHW arrays and the layouts
 * the primitive chose (dnnl_format_tag_any; none for activations a caller
 * hands over already in aBcd16b, conv_dnnl_run), and the blocked copies of
 * plain inputs kept for later calls (struct blk). What the ops compute on
 * the tape stays in ops_conv.c, when arrays change in graph.c; the double
 * build compiles only the stubs at the end. */
#include "conv_dnnl.h"
#include "par.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef VB_DOUBLE
#include <dnnl.h>
#include <omp.h>

/* Bytes of blocked copies of plain inputs kept between calls (see struct
 * blk), in two pools. Weights (a step reads each in one or two layouts, in
 * every pass through its layer): kept until the step ends, up to
 * BLK_WEIGHT_BYTES (the ResNets' weights take about 6 MB in two layouts).
 * Everything else (activations, output gradients): a ring of
 * BLK_RING_BYTES, newest copies kept, oldest overwritten: an output
 * gradient's copy is read again by the very next call (backward-data
 * after backward-weights), the last layers' sources early in the
 * backward pass; the first layers' sources, read again only at the end
 * of the pass, would need a copy of every activation of the step (70 MB
 * for the RHVAE step, +32 % peak RSS) and are reordered again instead.
 * Measured (bench_rhvae_step, ResNet RHVAE, batch 64): reorders saved
 * per step 48 with an 8 MB ring, 50 with 16 or 24 MB, 62 keeping every
 * copy. Reserved as address space once; only the bytes used become
 * resident. */
#define BLK_WEIGHT_BYTES ((size_t)8 << 20)
#define BLK_RING_BYTES ((size_t)8 << 20)

enum { TIER_WEIGHTS, TIER_RING, N_TIER };

/* One pool of blocked copies: bump (weights) or ring. */
struct tier {
	char *base;
	size_t cap, top, high;
};

enum kind { KIND_FWD, KIND_BWD_DATA, KIND_BWD_WEIGHTS };

static const char *const KIND_NAME[] = {"fwd", "bwd_data", "bwd_weights"};

/* The reorder buffers every entry shares (calls run one at a time): two
 * inputs, one output, the primitive's scratchpad. */
enum { BUF_IN0, BUF_IN1, BUF_OUT, BUF_SCRATCH, N_BUF };

/* One array the primitive reads or writes: the caller's plain memory and,
 * when the primitive chose another layout, its own in a shared buffer. */
struct arg {
	int dnnl_arg;         /* DNNL_ARG_SRC, ... */
	dnnl_memory_t user;   /* plain layout, handle set per call */
	dnnl_memory_t prim;   /* primitive's layout, handle set per call */
	dnnl_primitive_t reorder; /* user -> prim (inputs) or prim -> user
				     (outputs, with a sum post-op when
				     accumulating); NULL when same layout */
	int buf;              /* shared buffer for prim when reordered */
	size_t n;             /* elements of the plain array */
	dnnl_memory_desc_t pmd; /* the primitive's layout of it */
	size_t pbytes;        /* its size */
};

/* One blocked copy of a plain input array: the caller's array at key,
 * reordered into layout md at pool offset off. Valid until the plain
 * array changes, which the tape signals (conv_dnnl_forget,
 * conv_dnnl_forget_range) and conv outputs check (blk_forget_out). */
struct blk {
	const char *key;
	size_t key_bytes; /* of the plain array */
	dnnl_memory_desc_t md;
	int tier;
	size_t off, bytes;
};

struct entry {
	enum kind kind;
	struct conv_dnnl_shape s;
	bool bias, accumulate;
	int nthr; /* OpenMP threads when built: a primitive splits its work
		     for this count at creation and keeps that split */
	dnnl_primitive_t prim;
	struct arg in[2], out, bias_arg; /* bias_arg: bias or diff_bias */
	dnnl_memory_t scratch;
	char impl[64];
	char desc[128];
};

struct conv_dnnl {
	dnnl_engine_t engine;
	dnnl_stream_t stream;
	struct entry **entries;
	size_t n_entries, cap_entries;
	void *buf[N_BUF];
	size_t buf_bytes[N_BUF];
	float *bias_tmp; /* (c_dst) diff_bias before it is added */
	size_t bias_cap;
	/* blocked copies, oldest first */
	struct blk *blks;
	size_t n_blks, cap_blks;
	struct tier tier[N_TIER];
	bool no_copies; /* conv_dnnl_set_copies(c, false) */
	const char *pin; /* a copy the running call reads: never overwritten */
	size_t pin_bytes;
	struct conv_dnnl_stats st;
};

static double clock_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define DNNL_TRY(call, what)                                                 \
	do {                                                                 \
		dnnl_status_t st_ = (call);                                  \
		if (st_ != dnnl_success)                                     \
			return vb_fail(err, VB_ERR_INTERNAL,                 \
				       "conv_dnnl: %s failed with oneDNN "   \
				       "status %d", what, (int)st_);         \
	} while (0)

enum vb_status conv_dnnl_create(struct conv_dnnl **out, struct vb_error *err)
{
	struct conv_dnnl *c = calloc(1, sizeof *c);
	*out = NULL;
	if (!c)
		return vb_fail(err, VB_ERR_NOMEM, "conv_dnnl: cannot allocate");
	if (dnnl_engine_create(&c->engine, dnnl_cpu, 0) != dnnl_success ||
	    dnnl_stream_create(&c->stream, c->engine,
			       dnnl_stream_default_flags) != dnnl_success) {
		conv_dnnl_free(c);
		return vb_fail(err, VB_ERR_INTERNAL, "conv_dnnl: cannot create "
			       "a oneDNN CPU engine and stream");
	}
	*out = c;
	return VB_OK;
}

static void arg_free(struct arg *a)
{
	if (a->user)
		dnnl_memory_destroy(a->user);
	if (a->prim)
		dnnl_memory_destroy(a->prim);
	if (a->reorder)
		dnnl_primitive_destroy(a->reorder);
}

static void entry_free(struct entry *e)
{
	if (!e)
		return;
	arg_free(&e->in[0]);
	arg_free(&e->in[1]);
	arg_free(&e->out);
	arg_free(&e->bias_arg);
	if (e->scratch)
		dnnl_memory_destroy(e->scratch);
	if (e->prim)
		dnnl_primitive_destroy(e->prim);
	free(e);
}

void conv_dnnl_free(struct conv_dnnl *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_entries; i++)
		entry_free(c->entries[i]);
	free(c->entries);
	for (int i = 0; i < N_BUF; i++)
		free(c->buf[i]);
	free(c->bias_tmp);
	free(c->blks);
	for (int i = 0; i < N_TIER; i++)
		free(c->tier[i].base);
	if (c->stream)
		dnnl_stream_destroy(c->stream);
	if (c->engine)
		dnnl_engine_destroy(c->engine);
	free(c);
}

/* Grows shared buffer i to at least bytes (only when a new key needs it:
 * the first step; steady state allocates nothing). */
static enum vb_status buf_reserve(struct conv_dnnl *c, int i, size_t bytes,
				  struct vb_error *err)
{
	void *p;
	if (bytes <= c->buf_bytes[i])
		return VB_OK;
	bytes = (bytes + 63) / 64 * 64;
	p = aligned_alloc(64, bytes);
	if (!p)
		return vb_fail(err, VB_ERR_NOMEM, "conv_dnnl: cannot allocate "
			       "a buffer of %zu bytes", bytes);
	free(c->buf[i]);
	c->buf[i] = p;
	c->buf_bytes[i] = bytes;
	return VB_OK;
}

static void md_plain(dnnl_memory_desc_t *md, size_t d0, size_t d1, size_t d2,
		     size_t d3, dnnl_format_tag_t tag)
{
	dnnl_dims_t dims = {(dnnl_dim_t)d0, (dnnl_dim_t)d1, (dnnl_dim_t)d2,
			    (dnnl_dim_t)d3};
	dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag);
}

/* Sets up argument a: user memory of plain md "user", primitive memory
 * of the layout the primitive chose, and the reorder between them
 * (to_prim: input; otherwise output, with a sum post-op if accumulate). */
static enum vb_status arg_init(struct conv_dnnl *c, struct arg *a, int arg,
			       const dnnl_memory_desc_t *user,
			       const dnnl_memory_desc_t *prim, int buf,
			       bool to_prim, bool accumulate,
			       struct vb_error *err)
{
	dnnl_primitive_desc_t rpd = NULL;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_post_ops_t po = NULL;
	dnnl_status_t st = dnnl_success;
	a->dnnl_arg = arg;
	a->buf = buf;
	a->n = dnnl_memory_desc_get_size(user) / sizeof(float);
	a->pmd = *prim;
	a->pbytes = dnnl_memory_desc_get_size(prim);
	DNNL_TRY(dnnl_memory_create(&a->user, user, c->engine,
				    DNNL_MEMORY_NONE), "memory_create");
	DNNL_TRY(dnnl_memory_create(&a->prim, prim, c->engine,
				    DNNL_MEMORY_NONE), "memory_create");
	/* an added output lands in the shared buffer first, whatever its
	 * layout */
	if (!to_prim && accumulate &&
	    buf_reserve(c, buf, dnnl_memory_desc_get_size(prim), err))
		return err ? err->status : VB_ERR_NOMEM;
	if (dnnl_memory_desc_equal(user, prim))
		return VB_OK;
	if (buf_reserve(c, buf, dnnl_memory_desc_get_size(prim), err))
		return err ? err->status : VB_ERR_NOMEM;
	if (!to_prim && accumulate) {
		st = dnnl_primitive_attr_create(&attr);
		if (st == dnnl_success)
			st = dnnl_post_ops_create(&po);
		if (st == dnnl_success)
			st = dnnl_post_ops_append_sum(po, 1.0f);
		if (st == dnnl_success)
			st = dnnl_primitive_attr_set_post_ops(attr, po);
	}
	if (st == dnnl_success)
		st = to_prim ? dnnl_reorder_primitive_desc_create(
				       &rpd, user, c->engine, prim, c->engine,
				       attr)
			     : dnnl_reorder_primitive_desc_create(
				       &rpd, prim, c->engine, user, c->engine,
				       attr);
	if (st == dnnl_success)
		st = dnnl_primitive_create(&a->reorder, rpd);
	if (rpd)
		dnnl_primitive_desc_destroy(rpd);
	if (po)
		dnnl_post_ops_destroy(po);
	if (attr)
		dnnl_primitive_attr_destroy(attr);
	DNNL_TRY(st, "reorder");
	return VB_OK;
}

static void shape_desc(const struct entry *e, char *buf, size_t cap)
{
	const struct conv_dnnl_shape *s = &e->s;
	snprintf(buf, cap, "%s src %zux%zux%zux%zu dst %zux%zux%zux%zu k%zux%zu "
		 "s%zu p%zu%s%s", KIND_NAME[e->kind], s->B, s->c_src, s->h_src,
		 s->w_src, s->B, s->c_dst, s->h_dst, s->w_dst, s->kh, s->kw,
		 s->stride, s->pad, e->bias ? " bias" : "",
		 e->accumulate ? " +=" : "");
}

/* conv_dnnl_set_winograd: benchmarks only, see conv_dnnl.h. */
static bool use_winograd;

void conv_dnnl_set_winograd(bool on)
{
	use_winograd = on;
}

/* Builds the primitive of entry e (kind, s, bias, accumulate set). */
static enum vb_status entry_init(struct conv_dnnl *c, struct entry *e,
				 struct vb_error *err)
{
	const struct conv_dnnl_shape *s = &e->s;
	dnnl_memory_desc_t src_any, wei_any, dst_any, bias_md, src_u, wei_u,
		dst_u;
	dnnl_convolution_desc_t fd, bd;
	dnnl_primitive_desc_t fpd = NULL, pd = NULL;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_dims_t strides = {(dnnl_dim_t)s->stride, (dnnl_dim_t)s->stride};
	dnnl_dims_t pad = {(dnnl_dim_t)s->pad, (dnnl_dim_t)s->pad};
	dnnl_dims_t nb = {(dnnl_dim_t)s->c_dst};
	const dnnl_memory_desc_t *q;
	const char *impl = NULL;
	enum vb_status vs = VB_OK;
	dnnl_status_t st;
	dnnl_alg_kind_t alg = use_winograd && s->kh == 3 && s->kw == 3 &&
				      s->stride == 1
			      ? dnnl_convolution_winograd
			      : dnnl_convolution_direct;

	md_plain(&src_any, s->B, s->c_src, s->h_src, s->w_src,
		 dnnl_format_tag_any);
	md_plain(&wei_any, s->c_dst, s->c_src, s->kh, s->kw,
		 dnnl_format_tag_any);
	md_plain(&dst_any, s->B, s->c_dst, s->h_dst, s->w_dst,
		 dnnl_format_tag_any);
	md_plain(&src_u, s->B, s->c_src, s->h_src, s->w_src, dnnl_nchw);
	md_plain(&wei_u, s->c_dst, s->c_src, s->kh, s->kw, dnnl_oihw);
	md_plain(&dst_u, s->B, s->c_dst, s->h_dst, s->w_dst, dnnl_nchw);
	dnnl_memory_desc_init_by_tag(&bias_md, 1, nb, dnnl_f32, dnnl_a);
	shape_desc(e, e->desc, sizeof e->desc);

	DNNL_TRY(dnnl_primitive_attr_create(&attr), "primitive_attr_create");
retry:
	st = dnnl_primitive_attr_set_scratchpad_mode(attr,
						      dnnl_scratchpad_mode_user);
	if (st == dnnl_success)
		st = dnnl_convolution_forward_desc_init(
			&fd, dnnl_forward_training, alg, &src_any, &wei_any,
			e->bias ? &bias_md : NULL, &dst_any, strides, pad,
			pad);
	if (st == dnnl_success)
		st = dnnl_primitive_desc_create(&fpd, &fd, attr, c->engine,
						NULL);
	if (st == dnnl_success && e->kind == KIND_FWD) {
		pd = fpd;
		fpd = NULL;
	} else if (st == dnnl_success && e->kind == KIND_BWD_DATA) {
		st = dnnl_convolution_backward_data_desc_init(
			&bd, alg, &src_any, &wei_any,
			&dst_any, strides, pad, pad);
		if (st == dnnl_success)
			st = dnnl_primitive_desc_create(&pd, &bd, attr,
							c->engine, fpd);
	} else if (st == dnnl_success) {
		st = dnnl_convolution_backward_weights_desc_init(
			&bd, alg, &src_any, &wei_any,
			e->bias ? &bias_md : NULL, &dst_any, strides, pad,
			pad);
		if (st == dnnl_success)
			st = dnnl_primitive_desc_create(&pd, &bd, attr,
							c->engine, fpd);
	}
	if (st == dnnl_unimplemented && alg != dnnl_convolution_direct) {
		/* no Winograd for this shape or pass: direct */
		if (fpd)
			dnnl_primitive_desc_destroy(fpd);
		if (pd)
			dnnl_primitive_desc_destroy(pd);
		fpd = pd = NULL;
		alg = dnnl_convolution_direct;
		goto retry;
	}
	if (st == dnnl_success)
		st = dnnl_primitive_create(&e->prim, pd);
	if (st != dnnl_success) {
		vs = vb_fail(err, VB_ERR_INTERNAL, "conv_dnnl: no primitive "
			     "for %s (oneDNN status %d)", e->desc, (int)st);
		goto out;
	}
	if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0,
				      &impl) == dnnl_success && impl)
		snprintf(e->impl, sizeof e->impl, "%s", impl);
	q = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
	if ((vs = buf_reserve(c, BUF_SCRATCH, dnnl_memory_desc_get_size(q),
			      err)) != VB_OK)
		goto out;
	if (dnnl_memory_create(&e->scratch, q, c->engine, DNNL_MEMORY_NONE) !=
	    dnnl_success) {
		vs = vb_fail(err, VB_ERR_INTERNAL, "conv_dnnl: scratchpad");
		goto out;
	}
#define QMD(what) dnnl_primitive_desc_query_md(pd, what, 0)
	switch (e->kind) {
	case KIND_FWD:
		vs = arg_init(c, &e->in[0], DNNL_ARG_SRC, &src_u,
			      QMD(dnnl_query_src_md), BUF_IN0, true, false, err);
		if (!vs)
			vs = arg_init(c, &e->in[1], DNNL_ARG_WEIGHTS, &wei_u,
				      QMD(dnnl_query_weights_md), BUF_IN1,
				      true, false, err);
		if (!vs)
			vs = arg_init(c, &e->out, DNNL_ARG_DST, &dst_u,
				      QMD(dnnl_query_dst_md), BUF_OUT, false,
				      e->accumulate, err);
		if (!vs && e->bias)
			vs = arg_init(c, &e->bias_arg, DNNL_ARG_BIAS, &bias_md,
				      &bias_md, BUF_OUT, true, false, err);
		break;
	case KIND_BWD_DATA:
		vs = arg_init(c, &e->in[0], DNNL_ARG_DIFF_DST, &dst_u,
			      QMD(dnnl_query_diff_dst_md), BUF_IN0, true, false,
			      err);
		if (!vs)
			vs = arg_init(c, &e->in[1], DNNL_ARG_WEIGHTS, &wei_u,
				      QMD(dnnl_query_weights_md), BUF_IN1,
				      true, false, err);
		if (!vs)
			vs = arg_init(c, &e->out, DNNL_ARG_DIFF_SRC, &src_u,
				      QMD(dnnl_query_diff_src_md), BUF_OUT,
				      false, e->accumulate, err);
		break;
	case KIND_BWD_WEIGHTS:
		vs = arg_init(c, &e->in[0], DNNL_ARG_SRC, &src_u,
			      QMD(dnnl_query_src_md), BUF_IN0, true, false, err);
		if (!vs)
			vs = arg_init(c, &e->in[1], DNNL_ARG_DIFF_DST, &dst_u,
				      QMD(dnnl_query_diff_dst_md), BUF_IN1,
				      true, false, err);
		if (!vs)
			vs = arg_init(c, &e->out, DNNL_ARG_DIFF_WEIGHTS, &wei_u,
				      QMD(dnnl_query_diff_weights_md), BUF_OUT,
				      false, e->accumulate, err);
		if (!vs && e->bias)
			vs = arg_init(c, &e->bias_arg, DNNL_ARG_DIFF_BIAS,
				      &bias_md, &bias_md, BUF_OUT, false, false,
				      err);
		break;
	}
#undef QMD
	/* the output must not share a buffer with a reordered input */
	if (!vs && e->out.reorder && e->out.buf != BUF_OUT)
		vs = vb_fail(err, VB_ERR_INTERNAL, "conv_dnnl: buffer plan");
out:
	if (fpd)
		dnnl_primitive_desc_destroy(fpd);
	if (pd)
		dnnl_primitive_desc_destroy(pd);
	dnnl_primitive_attr_destroy(attr);
	return vs;
}

/* The cached entry of a key, built on first use. */
static struct entry *lookup(struct conv_dnnl *c, enum kind kind,
			    const struct conv_dnnl_shape *s, bool bias,
			    bool accumulate, struct vb_error *err)
{
	struct entry *e;
	int nthr = omp_get_max_threads();
	for (size_t i = 0; i < c->n_entries; i++) {
		e = c->entries[i];
		if (e->kind == kind && e->bias == bias &&
		    e->accumulate == accumulate && e->nthr == nthr &&
		    !memcmp(&e->s, s, sizeof *s))
			return e;
	}
	if (c->n_entries == c->cap_entries) {
		size_t cap = c->cap_entries ? 2 * c->cap_entries : 16;
		struct entry **p = realloc(c->entries, cap * sizeof *p);
		if (!p) {
			vb_fail(err, VB_ERR_NOMEM, "conv_dnnl: cannot grow the "
				"cache");
			return NULL;
		}
		c->entries = p;
		c->cap_entries = cap;
	}
	e = calloc(1, sizeof *e);
	if (!e) {
		vb_fail(err, VB_ERR_NOMEM, "conv_dnnl: cannot allocate");
		return NULL;
	}
	e->kind = kind;
	e->s = *s;
	e->bias = bias;
	e->accumulate = accumulate;
	e->nthr = nthr;
	if (bias && c->bias_cap < s->c_dst) {
		float *p = malloc(s->c_dst * sizeof *p);
		if (!p) {
			free(e);
			vb_fail(err, VB_ERR_NOMEM, "conv_dnnl: cannot allocate");
			return NULL;
		}
		free(c->bias_tmp);
		c->bias_tmp = p;
		c->bias_cap = s->c_dst;
	}
	if (entry_init(c, e, err) != VB_OK) {
		entry_free(e);
		return NULL;
	}
	c->entries[c->n_entries++] = e;
	return e;
}

static void blk_drop(struct conv_dnnl *c, size_t i)
{
	memmove(c->blks + i, c->blks + i + 1,
		(c->n_blks - i - 1) * sizeof *c->blks);
	c->n_blks--;
}

/* Drops every copy whose plain array overlaps [lo, hi). */
static void blk_forget(struct conv_dnnl *c, const char *lo, const char *hi)
{
	for (size_t i = c->n_blks; i-- > 0;) {
		const struct blk *b = &c->blks[i];
		if (b->key < hi && b->key + b->key_bytes > lo)
			blk_drop(c, i);
	}
}

/* The blocked copy of plain array key in layout md, or NULL. */
static void *blk_find(struct conv_dnnl *c, const void *key,
		      const dnnl_memory_desc_t *md)
{
	for (size_t i = c->n_blks; i-- > 0;) {
		const struct blk *b = &c->blks[i];
		if (b->key == key && dnnl_memory_desc_equal(&b->md, md)) {
			c->st.hits++;
			return c->tier[b->tier].base + b->off;
		}
	}
	return NULL;
}

/* Offset of bytes in tier t, the copies it overwrites dropped; false when
 * they do not fit. */
static bool tier_take(struct conv_dnnl *c, int t, size_t bytes, size_t *off)
{
	struct tier *p = &c->tier[t];
	size_t o = (p->top + 63) / 64 * 64;
	if (!p->base) {
		p->cap = t == TIER_WEIGHTS ? BLK_WEIGHT_BYTES : BLK_RING_BYTES;
		p->base = aligned_alloc(64, p->cap);
		if (!p->base)
			return false;
	}
	if (bytes > p->cap)
		return false;
	if (o > p->cap || bytes > p->cap - o) {
		if (t == TIER_WEIGHTS)
			return false;
		o = 0; /* the ring wraps */
	}
	if (t == TIER_RING && c->pin && c->pin < p->base + o + bytes &&
	    c->pin + c->pin_bytes > p->base + o)
		return false;
	for (size_t i = c->n_blks; t == TIER_RING && i-- > 0;) {
		const struct blk *b = &c->blks[i];
		if (b->tier == t && b->off < o + bytes && b->off + b->bytes > o)
			blk_drop(c, i);
	}
	p->top = o + bytes;
	if (p->top > p->high)
		p->high = p->top;
	*off = o;
	return true;
}

/* Room for a new copy of key (key_bytes plain, bytes blocked) in layout
 * md, registered; NULL when it does not fit (the caller then reorders
 * through its shared buffer, uncached). Weights go to their own pool
 * while it has room, the rest (and weights past it) to the ring. */
static void *blk_add(struct conv_dnnl *c, const void *key, size_t key_bytes,
		     const dnnl_memory_desc_t *md, size_t bytes, bool weights)
{
	size_t off;
	int t = TIER_RING;
	if (c->n_blks == c->cap_blks) {
		size_t cap = c->cap_blks ? 2 * c->cap_blks : 64;
		struct blk *p = realloc(c->blks, cap * sizeof *p);
		if (!p)
			return NULL;
		c->blks = p;
		c->cap_blks = cap;
	}
	if (weights && tier_take(c, TIER_WEIGHTS, bytes, &off))
		t = TIER_WEIGHTS;
	else if (!tier_take(c, TIER_RING, bytes, &off))
		return NULL;
	c->blks[c->n_blks++] =
		(struct blk){key, key_bytes, *md, t, off, bytes};
	return c->tier[t].base + off;
}

void conv_dnnl_forget(struct conv_dnnl *c)
{
	if (!c)
		return;
	c->n_blks = 0;
	for (int i = 0; i < N_TIER; i++)
		c->tier[i].top = 0;
}

void conv_dnnl_forget_range(struct conv_dnnl *c, const void *lo,
			    const void *hi)
{
	if (c && c->n_blks)
		blk_forget(c, lo, hi);
}

static enum vb_status set_handle(dnnl_memory_t m, const void *p,
				 struct vb_error *err)
{
	DNNL_TRY(dnnl_memory_set_data_handle(m, (void *)(uintptr_t)p),
		 "memory_set_data_handle");
	return VB_OK;
}

static enum vb_status run_reorder(struct conv_dnnl *c, dnnl_primitive_t r,
				  dnnl_memory_t from, dnnl_memory_t to,
				  struct vb_error *err)
{
	dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
	DNNL_TRY(dnnl_primitive_execute(r, c->stream, 2, a), "reorder");
	return VB_OK;
}

/* Whether argument a's primitive layout is aBcd16b over the same bytes
 * as its plain array: an activation the caller may hand over blocked. */
static bool arg_blk16(const struct arg *a, const struct conv_dnnl_shape *s,
		      bool src)
{
	dnnl_memory_desc_t md;
	if (!a->prim)
		return false;
	if (src)
		md_plain(&md, s->B, s->c_src, s->h_src, s->w_src,
			 dnnl_aBcd16b);
	else
		md_plain(&md, s->B, s->c_dst, s->h_dst, s->w_dst,
			 dnnl_aBcd16b);
	return a->pbytes == a->n * sizeof(float) &&
	       dnnl_memory_desc_equal(&md, &a->pmd);
}

/* CONV_DNNL_BLK_* bits of entry e's activation arguments kept in
 * aBcd16b. */
static unsigned entry_blk(const struct entry *e)
{
	unsigned m = 0;
	switch (e->kind) {
	case KIND_FWD:
		m |= arg_blk16(&e->in[0], &e->s, true) ? CONV_DNNL_BLK_IN0 : 0;
		m |= arg_blk16(&e->out, &e->s, false) ? CONV_DNNL_BLK_OUT : 0;
		break;
	case KIND_BWD_DATA:
		m |= arg_blk16(&e->in[0], &e->s, false) ? CONV_DNNL_BLK_IN0 : 0;
		m |= arg_blk16(&e->out, &e->s, true) ? CONV_DNNL_BLK_OUT : 0;
		break;
	case KIND_BWD_WEIGHTS:
		m |= arg_blk16(&e->in[0], &e->s, true) ? CONV_DNNL_BLK_IN0 : 0;
		m |= arg_blk16(&e->in[1], &e->s, false) ? CONV_DNNL_BLK_IN1 : 0;
		break;
	}
	return m;
}

/* Runs entry e: inputs in0, in1 (plain, or aBcd16b where blk says so),
 * output out (likewise; written or added), bias (read for the forward,
 * diff_bias written or added for the weight gradient; may be NULL when
 * !e->bias). A blk bit is set only where entry_blk has it. */
static enum vb_status entry_run(struct conv_dnnl *c, struct entry *e,
				const float *in0, const float *in1, float *out,
				float *bias, unsigned blk,
				struct vb_error *err)
{
	dnnl_exec_arg_t args[6];
	const float *ins[2] = {in0, in1};
	int n = 0;
	bool out_blk = blk & CONV_DNNL_BLK_OUT;
	bool out_reorder = e->out.reorder && !out_blk;
	bool add_plain = e->accumulate && !out_reorder;
	enum vb_status vs = VB_OK;
	double t0;
	/* an output never keeps a blocked copy of what it overwrites */
	blk_forget(c, (const char *)out,
		   (const char *)(out + e->out.n));
	for (int i = 0; i < 2 && !vs; i++) {
		struct arg *a = &e->in[i];
		if (blk & (i ? CONV_DNNL_BLK_IN1 : CONV_DNNL_BLK_IN0)) {
			/* already in the primitive's layout */
			vs = set_handle(a->prim, ins[i], err);
		} else if (a->reorder) {
			void *p = c->no_copies ? NULL
					       : blk_find(c, ins[i], &a->pmd);
			if (p) {
				c->pin = p;
				c->pin_bytes = a->pbytes;
				vs = set_handle(a->prim, p, err);
				args[n++] = (dnnl_exec_arg_t){a->dnnl_arg,
							      a->prim};
				continue;
			}
			p = c->no_copies
				    ? NULL
				    : blk_add(c, ins[i], a->n * sizeof(float),
					      &a->pmd, a->pbytes,
					      a->dnnl_arg == DNNL_ARG_WEIGHTS);
			c->pin = p;
			c->pin_bytes = a->pbytes;
			vs = set_handle(a->user, ins[i], err);
			if (!vs)
				vs = set_handle(a->prim,
						p ? p : c->buf[a->buf], err);
			t0 = clock_s();
			if (!vs)
				vs = run_reorder(c, a->reorder, a->user,
						 a->prim, err);
			c->st.reorder_s += clock_s() - t0;
			c->st.reorders++;
		} else {
			vs = set_handle(a->prim, ins[i], err);
		}
		args[n++] = (dnnl_exec_arg_t){a->dnnl_arg, a->prim};
	}
	/* output: straight into the caller's array when it is plain and
	 * written, else into the shared buffer and reordered (or added) */
	if (!vs)
		vs = set_handle(e->out.prim,
				out_reorder || add_plain ? c->buf[BUF_OUT] : out,
				err);
	args[n++] = (dnnl_exec_arg_t){e->out.dnnl_arg, e->out.prim};
	if (!vs && e->bias) {
		bool diff = e->kind == KIND_BWD_WEIGHTS;
		vs = set_handle(e->bias_arg.prim,
				diff && (e->accumulate || !bias) ? c->bias_tmp
								 : bias,
				err);
		args[n++] = (dnnl_exec_arg_t){e->bias_arg.dnnl_arg,
					      e->bias_arg.prim};
	}
	if (!vs)
		vs = set_handle(e->scratch, c->buf[BUF_SCRATCH], err);
	args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->scratch};
	c->pin = NULL;
	if (vs)
		return vs;
	t0 = clock_s();
	DNNL_TRY(dnnl_primitive_execute(e->prim, c->stream, n, args),
		 KIND_NAME[e->kind]);
	c->st.prim_s += clock_s() - t0;
	c->st.calls++;
	if (out_reorder) {
		vs = set_handle(e->out.user, out, err);
		t0 = clock_s();
		if (!vs)
			vs = run_reorder(c, e->out.reorder, e->out.prim,
					 e->out.user, err);
		c->st.reorder_s += clock_s() - t0;
		c->st.reorders++;
	} else if (add_plain) {
		const float *t = c->buf[BUF_OUT];
		PAR_FOR(e->out.n)
		for (size_t i = 0; i < e->out.n; i++)
			out[i] += t[i];
	}
	if (!vs && e->bias && e->kind == KIND_BWD_WEIGHTS && e->accumulate &&
	    bias)
		for (size_t i = 0; i < e->s.c_dst; i++)
			bias[i] += c->bias_tmp[i];
	if (!vs)
		DNNL_TRY(dnnl_stream_wait(c->stream), "stream_wait");
	return vs;
}

static const enum kind CALL_KIND[] = {KIND_FWD, KIND_BWD_DATA,
				      KIND_BWD_WEIGHTS};

enum vb_status conv_dnnl_blocked(struct conv_dnnl *c, enum conv_dnnl_call call,
				 const struct conv_dnnl_shape *s, bool bias,
				 bool accumulate, unsigned *blk,
				 struct vb_error *err)
{
	struct entry *e = lookup(c, CALL_KIND[call], s, bias, accumulate,
				 err);
	*blk = 0;
	if (!e)
		return err ? err->status : VB_ERR_INTERNAL;
	*blk = entry_blk(e);
	return VB_OK;
}

enum vb_status conv_dnnl_run(struct conv_dnnl *c, enum conv_dnnl_call call,
			     const struct conv_dnnl_shape *s, const float *in0,
			     const float *in1, float *bias, float *out,
			     bool accumulate, unsigned blk,
			     struct vb_error *err)
{
	struct entry *e = lookup(c, CALL_KIND[call], s, bias != NULL,
				 accumulate, err);
	if (!e)
		return err ? err->status : VB_ERR_INTERNAL;
	if (blk & ~entry_blk(e))
		return vb_fail(err, VB_ERR_INTERNAL, "conv_dnnl: %s: a blocked "
			       "argument the primitive keeps in another "
			       "layout", e->desc);
	return entry_run(c, e, in0, in1, out, bias, blk, err);
}

enum vb_status conv_dnnl_forward(struct conv_dnnl *c,
				 const struct conv_dnnl_shape *s,
				 const float *src, const float *w,
				 const float *bias, float *dst,
				 bool accumulate, struct vb_error *err)
{
	struct entry *e = lookup(c, KIND_FWD, s, bias != NULL, accumulate,
				 err);
	if (!e)
		return err ? err->status : VB_ERR_INTERNAL;
	return entry_run(c, e, src, w, dst, (float *)(uintptr_t)bias, 0, err);
}

enum vb_status conv_dnnl_backward_data(struct conv_dnnl *c,
				       const struct conv_dnnl_shape *s,
				       const float *d_dst, const float *w,
				       float *d_src, bool accumulate,
				       struct vb_error *err)
{
	struct entry *e = lookup(c, KIND_BWD_DATA, s, false, accumulate, err);
	if (!e)
		return err ? err->status : VB_ERR_INTERNAL;
	return entry_run(c, e, d_dst, w, d_src, NULL, 0, err);
}

enum vb_status conv_dnnl_backward_weights(struct conv_dnnl *c,
					  const struct conv_dnnl_shape *s,
					  const float *src, const float *d_dst,
					  float *d_w, float *d_bias,
					  bool accumulate,
					  struct vb_error *err)
{
	struct entry *e = lookup(c, KIND_BWD_WEIGHTS, s, d_bias != NULL,
				 accumulate, err);
	if (!e)
		return err ? err->status : VB_ERR_INTERNAL;
	return entry_run(c, e, src, d_dst, d_w, d_bias, 0, err);
}

enum vb_status conv_dnnl_sgemm(bool ta, bool tb, size_t m, size_t n, size_t k,
			       float alpha, const float *a, size_t lda,
			       const float *b, size_t ldb, float beta, float *c,
			       size_t ldc, struct vb_error *err)
{
	DNNL_TRY(dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', (dnnl_dim_t)m,
			    (dnnl_dim_t)n, (dnnl_dim_t)k, alpha, a,
			    (dnnl_dim_t)lda, b, (dnnl_dim_t)ldb, beta, c,
			    (dnnl_dim_t)ldc), "sgemm");
	return VB_OK;
}

size_t conv_dnnl_entries(const struct conv_dnnl *c)
{
	return c ? c->n_entries : 0;
}

size_t conv_dnnl_buffer_bytes(const struct conv_dnnl *c)
{
	size_t b = 0;
	if (!c)
		return 0;
	for (int i = 0; i < N_BUF; i++)
		b += c->buf_bytes[i];
	return b + c->tier[TIER_WEIGHTS].high + c->tier[TIER_RING].high;
}

void conv_dnnl_set_copies(struct conv_dnnl *c, bool on)
{
	if (!c)
		return;
	c->no_copies = !on;
	conv_dnnl_forget(c);
}

struct conv_dnnl_stats conv_dnnl_stats(const struct conv_dnnl *c)
{
	struct conv_dnnl_stats s = {0};
	if (c) {
		s = c->st;
		s.pool_high = c->tier[TIER_WEIGHTS].high +
			      c->tier[TIER_RING].high;
	}
	return s;
}

void conv_dnnl_stats_reset(struct conv_dnnl *c)
{
	if (c)
		memset(&c->st, 0, sizeof c->st);
}

const char *conv_dnnl_entry_impl(const struct conv_dnnl *c, size_t i)
{
	return i < c->n_entries ? c->entries[i]->impl : "";
}

const char *conv_dnnl_entry_desc(const struct conv_dnnl *c, size_t i)
{
	return i < c->n_entries ? c->entries[i]->desc : "";
}

void conv_dnnl_set_threads(int n)
{
	if (n >= 1)
		omp_set_num_threads(n);
}

int conv_dnnl_threads(void)
{
	return omp_get_max_threads();
}

static const char *isa_name(dnnl_cpu_isa_t isa)
{
	switch (isa) {
	case dnnl_cpu_isa_sse41: return "sse41";
	case dnnl_cpu_isa_avx: return "avx";
	case dnnl_cpu_isa_avx2: return "avx2";
	case dnnl_cpu_isa_avx512_core: return "avx512_core";
	case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
	case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
	case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
	case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
	default: return "other";
	}
}

char *conv_dnnl_describe(char *buf, size_t cap)
{
	const dnnl_version_t *v = dnnl_version();
	snprintf(buf, cap, "onednn %d.%d.%d isa %s", v->major, v->minor,
		 v->patch, isa_name(dnnl_get_effective_cpu_isa()));
	return buf;
}

#else /* VB_DOUBLE: the im2col + dgemm path is the only one */

enum vb_status conv_dnnl_create(struct conv_dnnl **out, struct vb_error *err)
{
	*out = NULL;
	return vb_fail(err, VB_ERR_INTERNAL, "conv_dnnl: the double build has "
		       "no oneDNN convolutions");
}

void conv_dnnl_free(struct conv_dnnl *c)
{
	(void)c;
}

void conv_dnnl_forget(struct conv_dnnl *c)
{
	(void)c;
}

void conv_dnnl_forget_range(struct conv_dnnl *c, const void *lo,
			    const void *hi)
{
	(void)c, (void)lo, (void)hi;
}

void conv_dnnl_set_threads(int n)
{
	(void)n;
}

void conv_dnnl_set_winograd(bool on)
{
	(void)on;
}

int conv_dnnl_threads(void)
{
	return 1;
}

char *conv_dnnl_describe(char *buf, size_t cap)
{
	snprintf(buf, cap, "none");
	return buf;
}

#endif
