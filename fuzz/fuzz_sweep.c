/* fuzz_sweep: the sweep plan parser (bench/sweep.h, sweep_plan_parse on
 * text in memory) on arbitrary bytes. Properties: a failure gives *out
 * NULL and one line; a plan has n_cells >= 1, and its first, last and a
 * middle cell resolve (sweep_plan_cell) to configs that validate, with a
 * 16-hex-digit id. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "sweep_plan.h"

static void check_cell(const struct sweep_plan *p, size_t i)
{
	struct config *c = malloc(sizeof *c);
	char id[SWEEP_PLAN_ID_LEN];
	struct vb_error err;
	vb_error_clear(&err);
	if (!c)
		fuzz_fail("no memory", NULL);
	if (sweep_plan_cell(p, i, c, id, &err) != VB_OK)
		fuzz_fail("sweep_plan_cell of a parsed plan failed", err.msg);
	if (config_validate(c, &err) != VB_OK)
		fuzz_fail("a parsed plan's cell does not validate", err.msg);
	if (strlen(id) != SWEEP_PLAN_ID_LEN - 1 ||
	    strspn(id, "0123456789abcdef") != SWEEP_PLAN_ID_LEN - 1)
		fuzz_fail("bad cell id", id);
	(void)sweep_plan_mitigation(p, i);
	free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size);
	struct sweep_plan *p = (struct sweep_plan *)&p; /* must become NULL */
	struct vb_error err;
	vb_error_clear(&err);
	if (sweep_plan_parse("fuzz.ini", text, &p, &err) != VB_OK) {
		if (p || err.msg[0] == '\0' || strchr(err.msg, '\n'))
			fuzz_fail("sweep_plan_parse failed untidily", err.msg);
		free(text);
		return 0;
	}
	if (p->n_cells < 1 || p->n_cells > SWEEP_PLAN_MAX_CELLS)
		fuzz_fail("plan with a cell count out of range", NULL);
	check_cell(p, 0);
	check_cell(p, p->n_cells / 2);
	check_cell(p, p->n_cells - 1);
	(void)sweep_plan_mitigation(p, p->n_cells); /* out of range: "" */
	sweep_plan_free(p);
	free(text);
	return 0;
}
