/* files: the file-system and clock helpers every bench/ module shares:
 * atomic whole-file writes (temporary name unique to the process, every
 * write and close checked, then a rename), mkdir -p, file copies, the
 * monotonic clock, string duplication and the qsort comparator of
 * doubles. Nothing here knows about runs, sweeps or tables. */
#ifndef VB_BENCH_FILES_H
#define VB_BENCH_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "vb.h"

/* Writes len bytes of data to path: into DIR/.NAME.tmp.PID first (hidden,
 * unique to this process, so concurrent writers of one path never share
 * a temporary), every fwrite and the fclose checked, fsync'd first when
 * durable, then renamed over path. On failure the temporary is removed,
 * path is untouched and err says which step failed (VB_ERR_IO). */
enum vb_status files_write_atomic(const char *path, const void *data,
				  size_t len, bool durable,
				  struct vb_error *err);

/* As files_write_atomic for a NUL-terminated text. */
enum vb_status files_write_text(const char *path, const char *text,
				struct vb_error *err);

/* Writer callback of files_write_with: writes the content to f; returns
 * VB_OK or an error (err filled). */
typedef enum vb_status (*files_writer_fn)(FILE *f, void *ctx,
					  struct vb_error *err);

/* Builds the content in memory with write(f, ctx, err), then writes it
 * atomically (files_write_atomic). An in-memory stream that fails is
 * VB_ERR_NOMEM. */
enum vb_status files_write_with(const char *path, files_writer_fn write,
				void *ctx, bool durable, struct vb_error *err);

/* Creates a folder and its parents (mkdir -p); an existing folder is
 * fine. VB_ERR_IO names the component that failed. */
enum vb_status files_mkdirs(const char *path, struct vb_error *err);

/* True when path exists (any kind of file). */
bool files_exists(const char *path);

/* True when path is a folder holding at least one entry (false when it
 * is missing, empty or not a folder). */
bool files_dir_nonempty(const char *path);

/* Removes path and everything below it (rm -r; symbolic links are
 * removed, never followed); a missing path is fine. VB_ERR_IO names the
 * entry that could not be removed, with strerror(errno). */
enum vb_status files_remove_tree(const char *path, struct vb_error *err);

/* Removes the temporary files a killed process left in folder dir:
 * entries named *.tmp.PID (files_write_atomic's .NAME.tmp.PID,
 * checkpoint_write's NAME.tmp.PID) whose process PID no longer exists.
 * Files of live processes stay. Returns how many were removed. */
int files_remove_stale_temps(const char *dir);

/* Empties the folder path "atomically enough": renames it aside to a
 * hidden sibling .NAME.old.PID (one rename: readers see the old folder
 * or none, never a mix), creates path anew and then deletes the sibling.
 * A missing path is just created. */
enum vb_status files_clear_dir(const char *path, struct vb_error *err);

/* Copies src to dst atomically (files_write_atomic's temporary name and
 * rename). VB_ERR_IO when src cannot be read or dst not written. */
enum vb_status files_copy(const char *src, const char *dst,
			  struct vb_error *err);

/* Reads a whole file into a malloc'd NUL-terminated buffer (*out, owned
 * by the caller; *len bytes without the NUL, len may be NULL).
 * VB_ERR_IO on a missing or unreadable file, VB_ERR_NOMEM. */
enum vb_status files_read(const char *path, char **out, size_t *len,
			  struct vb_error *err);

/* Seconds on the monotonic clock (for durations only). */
double files_now(void);

/* Writes s as one CSV field to f: as is, or quoted (quotes doubled) when
 * it holds a comma, quote or line break (pythae's exception texts do). */
void files_csv_field(FILE *f, const char *s);

/* A malloc'd copy of s (NULL when out of memory). */
char *files_dup_str(const char *s);

/* Whether name is one of list's comma-separated names ("a,b,c"); true
 * for every name when list is NULL (no list: no filter). */
bool files_name_in_list(const char *list, const char *name);

/* qsort comparator for doubles in ascending order (no NaN expected). */
int files_cmp_double(const void *a, const void *b);

#endif
