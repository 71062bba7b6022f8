/* validate: where pythae 0.1.2's PyTorch would raise an argument-validation
 * error in a forward (model.h, model_validate_args), found on the tape
 * after the fact by the nodes the models name: the prior's square of z
 * ("*.H.z2" in every Hamiltonian, "loss.z2") for the rhvae, and every bce
 * op's input. Nothing here changes a value. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && !strcmp(s + ls - lx, suffix);
}

/* The rhvae's log N(z; 0, I): pythae's _log_z, MultivariateNormal. */
static bool is_prior_arg(const struct model *m, const struct graph_node *n)
{
	return m->cfg.kind == MODEL_KIND_RHVAE && n->op && n->n_in == 1 &&
	       !strcmp(n->op->name, "square") &&
	       (ends_with(n->name, ".H.z2") || !strcmp(n->name, "loss.z2"));
}

static bool is_bce(const struct model *m, const struct graph_node *n)
{
	return m->cfg.kind != MODEL_KIND_HVAE && n->op &&
	       !strcmp(n->op->name, "bce");
}

bool model_validate_args(const struct model *m, const struct graph *g,
			 struct model_validate *out)
{
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < graph_node_count(g); i++) {
		const struct graph_node *n = graph_node_at(g, i);
		bool prior = is_prior_arg(m, n), bce = !prior && is_bce(m, n);
		if (!prior && !bce)
			continue;
		const struct tensor *v = &n->in[0]->value;
		size_t bad = 0;
		for (size_t k = 0; k < v->n; k++) {
			double x = v->data[k];
			/* Real() rejects NaN only; BCE's check is
			 * 0 <= x <= 1, false for NaN */
			bad += prior ? isnan(x) : !(x >= 0 && x <= 1);
		}
		if (!bad)
			continue;
		out->raised = true;
		snprintf(out->node, sizeof out->node, "%s", n->name);
		out->node_id = n->id;
		out->phase = n->phase;
		out->n_invalid = bad;
		out->n_values = v->n;
		if (prior) {
			size_t B = tensor_rows(v), d = v->n / (B ? B : 1);
			out->error = "ValueError";
			snprintf(out->message, sizeof out->message,
				 "Expected value argument (Tensor of shape "
				 "(%zu, %zu)) to be within the support "
				 "(IndependentConstraint(Real(), 1)) of the "
				 "distribution MultivariateNormal(loc: "
				 "torch.Size([%zu]), covariance_matrix: "
				 "torch.Size([%zu, %zu])), but found invalid "
				 "values:", B, d, d, d, d);
		} else {
			out->error = "RuntimeError";
			snprintf(out->message, sizeof out->message,
				 "all elements of input should be between 0 "
				 "and 1");
		}
		return true;
	}
	return false;
}
