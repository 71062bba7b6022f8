/* config_type: the value type of a setting, shared by config.h (the key
 * queries) and config_keys.h (the table) so that neither header includes
 * the other. */
#ifndef VB_BENCH_CONFIG_TYPE_H
#define VB_BENCH_CONFIG_TYPE_H

/* Value type of a key, as the table stores it. */
enum config_type {
	CONFIG_TYPE_STRING,  /* char[] field */
	CONFIG_TYPE_INT,     /* int64_t field */
	CONFIG_TYPE_U64,     /* uint64_t field */
	CONFIG_TYPE_DOUBLE,  /* double field */
	CONFIG_TYPE_BOOL,    /* bool field */
	CONFIG_TYPE_ENUM     /* int field, index into the key's names */
};

#endif
