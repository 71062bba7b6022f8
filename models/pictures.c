/* pictures: the reconstruction and the decode a run's pictures are drawn
 * with (model_reconstruct, model_decode; model.h), through the model's
 * networks (arch.h). Apart from model.c so that the model interface does
 * not include arch.h, which includes model.h. */
#include "model.h"

#include "arch.h"
#include "graph.h"

static enum vb_status pictures_begin(struct model *m, struct graph *g,
				     const struct arch_encoder **enc,
				     const struct arch_decoder **dec,
				     struct vb_error *err)
{
	*enc = NULL;
	*dec = NULL;
	if (m->ops->networks)
		m->ops->networks(m, enc, dec);
	if (!*enc || !*dec)
		return vb_fail(err, VB_ERR_CONFIG, "model: %s has no networks "
			       "to draw pictures with", m->ops->name);
	m->pnodes = graph_alloc(g, m->params->n_entries * sizeof *m->pnodes);
	if (!m->pnodes)
		return vb_fail(err, graph_status(g), "%s", graph_error(g)->msg);
	if (m->buffers) /* BatchNorm layers use their running statistics */
		m->buffers->training = false;
	return params_nodes(m->params, g, m->pnodes);
}

enum vb_status model_reconstruct(struct model *m, struct graph *g,
				 struct graph_node *x, struct graph_node **out,
				 struct vb_error *err)
{
	const struct arch_encoder *enc;
	const struct arch_decoder *dec;
	struct graph_node *mu = NULL, *logvar = NULL;
	enum vb_status st = pictures_begin(m, g, &enc, &dec, err);
	*out = NULL;
	if (st)
		return st;
	graph_push_scope(g, "encoder");
	arch_encoder_forward(enc, g, m->pnodes, x, &mu, &logvar);
	graph_pop_scope(g);
	*out = arch_decode(dec, g, m->pnodes, mu);
	if (graph_status(g))
		return vb_fail(err, graph_status(g), "%s", graph_error(g)->msg);
	return VB_OK;
}

enum vb_status model_decode(struct model *m, struct graph *g,
			    struct graph_node *z, struct graph_node **out,
			    struct vb_error *err)
{
	const struct arch_encoder *enc;
	const struct arch_decoder *dec;
	enum vb_status st = pictures_begin(m, g, &enc, &dec, err);
	*out = NULL;
	if (st)
		return st;
	*out = arch_decode(dec, g, m->pnodes, z);
	if (graph_status(g))
		return vb_fail(err, graph_status(g), "%s", graph_error(g)->msg);
	return VB_OK;
}
