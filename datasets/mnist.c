/* mnist: MNIST / Fashion-MNIST file names and default folders. Finds a
 * split's image and label files (raw preferred over .gz) and hands them to
 * dataset_from_idx; never downloads (scripts/fetch-mnist.sh does). */
#include "mnist.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MNIST_PATH_MAX 4096

static bool path_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Puts <dir>/<base> into path if it exists, else <dir>/<base>.gz if that
 * exists. Returns 1 when found, 0 when neither exists, -1 when the path is
 * too long. */
static int find_file(const char *dir, const char *base, char *path,
		     size_t cap)
{
	int k = snprintf(path, cap, "%s/%s", dir, base);
	if (k < 0 || (size_t)k >= cap)
		return -1;
	if (path_exists(path))
		return 1;
	k = snprintf(path, cap, "%s/%s.gz", dir, base);
	if (k < 0 || (size_t)k >= cap)
		return -1;
	return path_exists(path) ? 1 : 0;
}

/* The last part of dir without trailing slashes, as (start, length). */
static const char *last_part(const char *dir, size_t *len)
{
	size_t end = strlen(dir);
	while (end > 1 && dir[end - 1] == '/')
		end--;
	size_t start = end;
	while (start > 0 && dir[start - 1] != '/')
		start--;
	*len = end - start;
	return dir + start;
}

enum vb_status mnist_load(const char *dir, const char *split,
			  struct dataset *out, struct vb_error *err)
{
	memset(out, 0, sizeof *out);
	if (!split || (strcmp(split, "train") != 0 && strcmp(split, "t10k") != 0))
		return vb_fail(err, VB_ERR_CONFIG,
			       "mnist: split '%s', expected 'train' or 't10k'",
			       split ? split : "(null)");
	char img_base[32], lab_base[32];
	snprintf(img_base, sizeof img_base, "%s-images-idx3-ubyte", split);
	snprintf(lab_base, sizeof lab_base, "%s-labels-idx1-ubyte", split);

	char img_path[MNIST_PATH_MAX], lab_path[MNIST_PATH_MAX];
	int has_img = find_file(dir, img_base, img_path, sizeof img_path);
	int has_lab = find_file(dir, lab_base, lab_path, sizeof lab_path);
	if (has_img < 0 || has_lab < 0)
		return vb_fail(err, VB_ERR_CONFIG,
			       "mnist: folder path too long (%zu characters), expected under %d",
			       strlen(dir), MNIST_PATH_MAX - 64);
	if (!has_img || !has_lab) {
		const char *why = path_exists(dir) ? "" :
			" (the folder does not exist)";
		if (!has_img && !has_lab)
			return vb_fail(err, VB_ERR_IO,
				       "mnist: %s%s: found neither %s nor %s.gz, and neither %s nor %s.gz; run scripts/fetch-mnist.sh",
				       dir, why, img_base, img_base, lab_base,
				       lab_base);
		const char *base = has_img ? lab_base : img_base;
		return vb_fail(err, VB_ERR_IO,
			       "mnist: %s%s: found neither %s nor %s.gz; run scripts/fetch-mnist.sh",
			       dir, why, base, base);
	}

	size_t plen;
	const char *part = last_part(dir, &plen);
	char name[sizeof out->name];
	snprintf(name, sizeof name, "%.*s/%s", (int)(plen < 40 ? plen : 40),
		 part, split);
	enum vb_status st = dataset_from_idx(img_path, lab_path, name, out,
					     err);
	if (st != VB_OK)
		return st;
	for (size_t i = 0; i < out->n; i++) {
		if (out->labels[i] >= MNIST_N_CLASSES) {
			st = vb_fail(err, VB_ERR_DATA,
				     "mnist: %s: label %u at index %zu, expected 0..%d",
				     lab_path, out->labels[i], i,
				     MNIST_N_CLASSES - 1);
			dataset_free(out);
			return st;
		}
	}
	return VB_OK;
}

const char *mnist_default_dir(const char *dataset)
{
	const char *var, *fallback;
	if (!dataset)
		return NULL;
	if (strcmp(dataset, "mnist") == 0) {
		var = "VAEBENCH_DATA";
		fallback = "data";
	} else if (strcmp(dataset, "fashion-mnist") == 0) {
		var = "VAEBENCH_FASHION_DATA";
		fallback = "/usr/share/datasets/fashion-mnist";
	} else {
		return NULL;
	}
	const char *v = getenv(var);
	return v && *v ? v : fallback;
}
