/* config_keys: the table of every setting (section, key, type, field of
 * struct config, default, range or enum names, help) that config.c
 * drives everything from. Internal to config.c and config_keys.c; the
 * rest of bench/ reads settings through config.h. */
#ifndef VB_BENCH_CONFIG_KEYS_H
#define VB_BENCH_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_type.h"

/* How a string key's value is checked. */
enum config_keys_rule {
	CONFIG_KEYS_NAME,          /* [A-Za-z0-9._-]+, not "." or ".." */
	CONFIG_KEYS_PATH,          /* non-empty path */
	CONFIG_KEYS_PATH_OR_EMPTY  /* path or "" */
};

struct config_keys_def {
	const char *section;
	const char *key;
	const char *name;              /* "section.key" */
	enum config_type type;
	size_t offset;                 /* into struct config */
	size_t size;                   /* of the field */
	const char *def;               /* default, as text */
	int64_t lo, hi;                /* CONFIG_TYPE_INT: inclusive range */
	double dlo, dhi;               /* CONFIG_TYPE_DOUBLE: bounds ... */
	bool lo_open, hi_open;         /* ... exclusive when set */
	const char *const *names;      /* CONFIG_TYPE_ENUM: a name list */
	int n_names;
	/* ... or the owning module's name function (NULL: names); its
	 * values run from 0 to the first one it calls "unknown" */
	const char *(*name_of)(int v);
	enum config_keys_rule rule;            /* CONFIG_TYPE_STRING */
	const char *help;
};

/* Upper bound of config_keys_count, for arrays indexed by key (a static
 * assert in config_keys.c keeps the table within it). */
#define CONFIG_KEYS_MAX 256

/* An int range without an upper bound. */
#define CONFIG_KEYS_IMAX INT64_MAX

/* The keys in table (and INI) order, config_keys_count of them. */
extern const struct config_keys_def config_keys_table[];
extern const size_t config_keys_count;

/* Number of names of enum key d. */
int config_keys_enum_count(const struct config_keys_def *d);

/* Name of value v (0 <= v < config_keys_enum_count(d)) of enum key d. */
const char *config_keys_enum_at(const struct config_keys_def *d, int v);

#endif
