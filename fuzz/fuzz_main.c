/* fuzz_main: a driver for the harnesses without libFuzzer (the default gcc
 * build): runs LLVMFuzzerTestOneInput on every corpus file, then on
 * --mutations N deterministic mutants of them (byte flips, interesting
 * values, inserts, deletes, truncations, chunk copies; xorshift from
 * --seed). ctest runs it on fuzz/corpus/<reader>/ (label fuzz); a broken
 * property aborts, so the test fails. Also replays crash files that
 * scripts/fuzz.sh found. Real coverage-guided fuzzing is libFuzzer's. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define MAIN_MAX_INPUT (1u << 20) /* corpus files are tiny; a guard only */

struct input {
	uint8_t *data;
	size_t size;
	char *name;
};

struct corpus {
	struct input *in;
	size_t n, cap;
};

static void add_input(struct corpus *c, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(1);
	}
	uint8_t *buf = malloc(MAIN_MAX_INPUT);
	if (!buf)
		fuzz_fail("no memory", NULL);
	size_t n = fread(buf, 1, MAIN_MAX_INPUT, f);
	fclose(f);
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 16;
		c->in = realloc(c->in, c->cap * sizeof *c->in);
		if (!c->in)
			fuzz_fail("no memory", NULL);
	}
	c->in[c->n].data = buf;
	c->in[c->n].size = n;
	c->in[c->n].name = fuzz_strndup((const uint8_t *)path, strlen(path));
	c->n++;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A folder's regular files in name order (so runs are reproducible). */
static void add_dir(struct corpus *c, const char *dir)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	if (!d) {
		perror(dir);
		exit(1);
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			names = realloc(names, cap * sizeof *names);
			if (!names)
				fuzz_fail("no memory", NULL);
		}
		size_t len = strlen(dir) + strlen(e->d_name) + 2;
		names[n] = malloc(len);
		if (!names[n])
			fuzz_fail("no memory", NULL);
		snprintf(names[n], len, "%s/%s", dir, e->d_name);
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof *names, by_name);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
			add_input(c, names[i]);
		free(names[i]);
	}
	free(names);
}

static uint64_t next(uint64_t *s)
{
	/* xorshift64* (Vigna 2016): enough to pick mutations. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* One to four random edits of in into out (capacity MAIN_MAX_INPUT). */
static size_t mutate(const struct input *in, uint8_t *out, uint64_t *s)
{
	static const uint8_t interesting[] = {0, 1, 0x7f, 0x80, 0xff, '"', ',',
					      '\n', '\r', '=', '[', ']', ';',
					      '{', '}', ':', '\\', '0', '9',
					      '-', 'e', '.'};
	size_t n = in->size;
	memcpy(out, in->data, n);
	int edits = 1 + (int)(next(s) % 4);
	for (int k = 0; k < edits; k++) {
		size_t pos = n ? (size_t)(next(s) % n) : 0;
		switch (next(s) % 6) {
		case 0: /* flip a bit */
			if (n)
				out[pos] ^= (uint8_t)(1u << (next(s) % 8));
			break;
		case 1: /* an interesting byte */
			if (n)
				out[pos] = interesting[next(s) %
						       sizeof interesting];
			break;
		case 2: /* insert a byte */
			if (n < MAIN_MAX_INPUT) {
				memmove(out + pos + 1, out + pos, n - pos);
				out[pos] = (uint8_t)next(s);
				n++;
			}
			break;
		case 3: /* delete a byte */
			if (n) {
				memmove(out + pos, out + pos + 1, n - pos - 1);
				n--;
			}
			break;
		case 4: /* truncate */
			n = pos;
			break;
		default: { /* copy a chunk over another place */
			if (!n)
				break;
			size_t from = (size_t)(next(s) % n);
			size_t len = 1 + (size_t)(next(s) % 16);
			if (len > n - from)
				len = n - from;
			if (len > n - pos)
				len = n - pos;
			memmove(out + pos, out + from, len);
		}
		}
	}
	return n;
}

int main(int argc, char **argv)
{
	struct corpus c = {0};
	long mutations = 0;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (strcmp(argv[i], "--mutations") == 0 && i + 1 < argc) {
			mutations = strtol(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 10) | 1;
		} else if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			add_dir(&c, argv[i]);
		} else {
			add_input(&c, argv[i]);
		}
	}
	if (c.n == 0) {
		fprintf(stderr, "usage: %s [--mutations N] [--seed S] "
			"FILE|DIR...: no input files\n", argv[0]);
		return 1;
	}
	for (size_t i = 0; i < c.n; i++)
		LLVMFuzzerTestOneInput(c.in[i].data, c.in[i].size);
	uint8_t *buf = malloc(MAIN_MAX_INPUT);
	if (!buf)
		fuzz_fail("no memory", NULL);
	for (long m = 0; m < mutations; m++) {
		size_t n = mutate(&c.in[(size_t)m % c.n], buf, &seed);
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("%s: %zu corpus files, %ld mutants: no failure\n", argv[0], c.n,
	       mutations);
	for (size_t i = 0; i < c.n; i++) {
		free(c.in[i].data);
		free(c.in[i].name);
	}
	free(c.in);
	free(buf);
	return 0;
}
