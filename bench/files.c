/* files: atomic writes, folders, copies, the clock and two small helpers
 * shared by bench/ (files.h). The only bench/ file that renames files
 * into place. */
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* DIR/.NAME.tmp.PID for path DIR/NAME (or .NAME.tmp.PID without DIR). */
static char *temp_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
	size_t cap = strlen(path) + 32;
	char *tmp = malloc(cap);
	if (tmp)
		snprintf(tmp, cap, "%.*s.%s.tmp.%ld", (int)dir_len, path,
			 path + dir_len, (long)getpid());
	return tmp;
}

enum vb_status files_write_atomic(const char *path, const void *data,
				  size_t len, bool durable,
				  struct vb_error *err)
{
	char *tmp = temp_name(path);
	FILE *f;
	const char *failed = NULL;
	if (!tmp)
		return vb_fail(err, VB_ERR_NOMEM, "files: %s: no memory", path);
	f = fopen(tmp, "wb");
	if (!f) {
		vb_fail(err, VB_ERR_IO, "files: cannot create %s: %s", tmp,
			strerror(errno));
		free(tmp);
		return VB_ERR_IO;
	}
	if (len > 0 && fwrite(data, 1, len, f) != len)
		failed = "write";
	if (!failed && fflush(f) != 0)
		failed = "write";
	if (!failed && durable && fsync(fileno(f)) != 0)
		failed = "sync";
	if (fclose(f) != 0 && !failed)
		failed = "close";
	if (!failed && rename(tmp, path) != 0)
		failed = "rename";
	if (failed) {
		vb_fail(err, VB_ERR_IO, "files: cannot %s %s: %s", failed,
			!strcmp(failed, "rename") ? path : tmp,
			strerror(errno));
		remove(tmp);
	}
	free(tmp);
	return failed ? VB_ERR_IO : VB_OK;
}

enum vb_status files_write_text(const char *path, const char *text,
				struct vb_error *err)
{
	return files_write_atomic(path, text, strlen(text), false, err);
}

enum vb_status files_write_with(const char *path, files_writer_fn write,
				void *ctx, bool durable, struct vb_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	enum vb_status st;
	if (!m)
		return vb_fail(err, VB_ERR_NOMEM, "files: %s: no memory", path);
	st = write(m, ctx, err);
	if (fclose(m) != 0 && st == VB_OK)
		st = vb_fail(err, VB_ERR_NOMEM, "files: %s: no memory", path);
	if (st == VB_OK)
		st = files_write_atomic(path, buf, len, durable, err);
	free(buf);
	return st;
}

enum vb_status files_mkdirs(const char *path, struct vb_error *err)
{
	char buf[1100];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof buf)
		return vb_fail(err, VB_ERR_IO, "files: bad folder name '%s'",
			       path);
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] == '/' || buf[i] == '\0') {
			char c = buf[i];
			buf[i] = '\0';
			if (mkdir(buf, 0777) != 0 && errno != EEXIST)
				return vb_fail(err, VB_ERR_IO,
					       "files: cannot create folder "
					       "%s: %s", buf, strerror(errno));
			buf[i] = c;
		}
	}
	return VB_OK;
}

bool files_exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

enum vb_status files_read(const char *path, char **out, size_t *len,
			  struct vb_error *err)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	*out = NULL;
	if (!f)
		return vb_fail(err, VB_ERR_IO, "files: cannot read %s: %s",
			       path, strerror(errno));
	for (;;) {
		size_t got;
		if (cap - n < 65536) {
			char *nb = realloc(buf, cap * 2 + 65536 + 1);
			if (!nb) {
				free(buf);
				fclose(f);
				return vb_fail(err, VB_ERR_NOMEM,
					       "files: %s: no memory", path);
			}
			buf = nb;
			cap = cap * 2 + 65536;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return vb_fail(err, VB_ERR_IO, "files: cannot read %s", path);
	}
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return VB_OK;
}

enum vb_status files_copy(const char *src, const char *dst,
			  struct vb_error *err)
{
	char *buf;
	size_t n;
	enum vb_status st = files_read(src, &buf, &n, err);
	if (st != VB_OK)
		return st;
	st = files_write_atomic(dst, buf, n, false, err);
	free(buf);
	return st;
}

double files_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void files_csv_field(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\n\r")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

char *files_dup_str(const char *s)
{
	return strdup(s); /* POSIX */
}

int files_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

bool files_dir_nonempty(const char *path)
{
	DIR *dp = opendir(path);
	struct dirent *de;
	bool any = false;
	if (!dp)
		return false;
	while (!any && (de = readdir(dp)) != NULL)
		any = strcmp(de->d_name, ".") != 0 &&
		      strcmp(de->d_name, "..") != 0;
	closedir(dp);
	return any;
}

enum vb_status files_remove_tree(const char *path, struct vb_error *err)
{
	struct stat sb;
	DIR *dp;
	struct dirent *de;
	enum vb_status st = VB_OK;
	if (lstat(path, &sb) != 0)
		return errno == ENOENT ? VB_OK
				       : vb_fail(err, VB_ERR_IO,
						 "files: cannot stat %s: %s",
						 path, strerror(errno));
	if (!S_ISDIR(sb.st_mode)) {
		if (remove(path) != 0 && errno != ENOENT)
			return vb_fail(err, VB_ERR_IO, "files: cannot remove "
				       "%s: %s", path, strerror(errno));
		return VB_OK;
	}
	dp = opendir(path);
	if (!dp)
		return vb_fail(err, VB_ERR_IO, "files: cannot open %s: %s",
			       path, strerror(errno));
	while (st == VB_OK && (de = readdir(dp)) != NULL) {
		size_t cap;
		char *sub;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		cap = strlen(path) + strlen(de->d_name) + 2;
		sub = malloc(cap);
		if (!sub) {
			st = vb_fail(err, VB_ERR_NOMEM, "files: no memory");
			break;
		}
		snprintf(sub, cap, "%s/%s", path, de->d_name);
		st = files_remove_tree(sub, err);
		free(sub);
	}
	closedir(dp);
	if (st == VB_OK && rmdir(path) != 0 && errno != ENOENT)
		st = vb_fail(err, VB_ERR_IO, "files: cannot remove %s: %s",
			     path, strerror(errno));
	return st;
}

enum vb_status files_clear_dir(const char *path, struct vb_error *err)
{
	const char *slash = strrchr(path, '/');
	size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
	size_t cap = strlen(path) + 32;
	char *old = malloc(cap);
	enum vb_status st;
	if (!old)
		return vb_fail(err, VB_ERR_NOMEM, "files: no memory");
	snprintf(old, cap, "%.*s.%s.old.%ld", (int)dir_len, path,
		 path + dir_len, (long)getpid());
	if (rename(path, old) != 0 && errno != ENOENT) {
		st = vb_fail(err, VB_ERR_IO, "files: cannot move %s aside "
			     "to %s: %s", path, old, strerror(errno));
		free(old);
		return st;
	}
	st = files_mkdirs(path, err);
	if (st == VB_OK)
		st = files_remove_tree(old, err);
	free(old);
	return st;
}

int files_remove_stale_temps(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	int removed = 0;
	if (!dp)
		return 0;
	while ((de = readdir(dp)) != NULL) {
		const char *t = strstr(de->d_name, ".tmp.");
		char *end, path[4096];
		long pid;
		while (t && strstr(t + 1, ".tmp."))
			t = strstr(t + 1, ".tmp.");
		if (!t)
			continue;
		pid = strtol(t + 5, &end, 10);
		if (end == t + 5 || *end || pid <= 0)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue; /* alive (or not ours to judge) */
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir,
				     de->d_name) < sizeof path &&
		    remove(path) == 0)
			removed++;
	}
	closedir(dp);
	return removed;
}

bool files_name_in_list(const char *list, const char *name)
{
	size_t len = strlen(name);
	for (const char *s = list; s && *s;) {
		size_t k = strcspn(s, ",");
		if (k == len && !strncmp(s, name, len))
			return true;
		s += k + (s[k] == ',');
	}
	return !list;
}
