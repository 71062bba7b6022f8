/* mnist: where MNIST and Fashion-MNIST live and which file names make a
 * split ("train", "t10k"), raw or .gz. Reading is dataset.c / idx.c's;
 * fetching the files is scripts/fetch-mnist.sh's. */
#ifndef VB_DATASETS_MNIST_H
#define VB_DATASETS_MNIST_H

#include "dataset.h"
#include "vb.h"

/* Number of classes in MNIST and Fashion-MNIST: labels are 0 .. 9. */
#define MNIST_N_CLASSES 10

/* Loads split ("train" or "t10k") from folder dir: images from
 * <dir>/<split>-images-idx3-ubyte, else the same name + ".gz"; labels from
 * <dir>/<split>-labels-idx1-ubyte, else + ".gz" (raw preferred). The
 * dataset is owned and named "<last part of dir>/<split>". Every label
 * must be < MNIST_N_CLASSES. Errors: VB_ERR_CONFIG for another split name
 * or a too long path; VB_ERR_IO naming the folder and the names looked for
 * (and to run scripts/fetch-mnist.sh) when a file is missing; those of
 * dataset_from_idx; VB_ERR_DATA for a label out of range. On error *out is
 * left empty. */
enum vb_status mnist_load(const char *dir, const char *split,
			  struct dataset *out, struct vb_error *err);

/* The default folder of dataset "mnist" ($VAEBENCH_DATA when set and
 * non-empty, else "data") or "fashion-mnist" ($VAEBENCH_FASHION_DATA when
 * set and non-empty, else "/usr/share/datasets/fashion-mnist"). NULL for
 * any other name. The string is borrowed (environment or static storage):
 * valid until the environment changes. */
const char *mnist_default_dir(const char *dataset);

#endif
