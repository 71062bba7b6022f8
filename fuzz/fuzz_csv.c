/* fuzz_csv: the CSV reader of result tables (bench/table.h, table_read,
 * the reader of results.csv and rows/<id>.csv) on arbitrary bytes.
 * Properties: a failure leaves the table empty; a table read has
 * n_cols >= 1 and every cell readable; table_write then table_read gives
 * the same table (RFC 4180 quoting both ways); table_append and
 * table_sort_rows on it keep the shape. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "table.h"

static void touch(const struct table *t)
{
	size_t sum = 0;
	for (size_t j = 0; j < t->n_cols; j++)
		sum += strlen(t->cols[j]);
	for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
		sum += strlen(t->cells[i]);
	for (size_t i = 0; i < t->n_rows && t->n_cols; i++)
		sum += strlen(table_get(t, i, t->cols[0])) +
		       strlen(table_get(t, i, "no such column"));
	(void)sum;
}

static void same(const struct table *a, const struct table *b)
{
	if (a->n_cols != b->n_cols || a->n_rows != b->n_rows)
		fuzz_fail("table_write/table_read round trip changed the "
			  "shape", NULL);
	for (size_t j = 0; j < a->n_cols; j++)
		if (strcmp(a->cols[j], b->cols[j]) != 0)
			fuzz_fail("round trip changed a column name",
				  a->cols[j]);
	for (size_t i = 0; i < a->n_rows * a->n_cols; i++)
		if (strcmp(a->cells[i], b->cells[i]) != 0)
			fuzz_fail("round trip changed a cell", a->cells[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_write_tmp(data, size, ".csv");
	struct table t, back, all;
	struct vb_error err;
	table_init(&t);
	table_init(&back);
	table_init(&all);
	vb_error_clear(&err);
	if (table_read(path, &t, &err) != VB_OK) {
		if (err.msg[0] == '\0' || strchr(err.msg, '\n'))
			fuzz_fail("table_read failed without a one-line "
				  "message", err.msg);
		table_free(&t);
		return 0;
	}
	touch(&t);
	const char *out = fuzz_write_tmp((const uint8_t *)"", 0, ".out.csv");
	if (table_write(&t, out, &err) != VB_OK)
		fuzz_fail("table_write of a table read failed", err.msg);
	if (table_read(out, &back, &err) != VB_OK)
		fuzz_fail("table_write output does not read back", err.msg);
	same(&t, &back);
	if (table_append(&all, &t, &err) != VB_OK ||
	    table_append(&all, &back, &err) != VB_OK)
		fuzz_fail("table_append failed", err.msg);
	if (all.n_rows != 2 * t.n_rows)
		fuzz_fail("table_append lost rows", NULL);
	table_sort_rows(&all);
	touch(&all);
	table_free(&t);
	table_free(&back);
	table_free(&all);
	return 0;
}
