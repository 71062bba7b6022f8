# testlib.sh: sourced by the shell tests (merge.sh, sweep_folder.sh,
# mpi_sweep.sh): a fresh working folder, fail, and the small synthetic
# sweep file they run.

# vb_fresh DIR: DIR emptied, created and made the working directory.
vb_fresh() { rm -rf "$1"; mkdir -p "$1"; cd "$1"; }

# fail MESSAGE...: the test fails with MESSAGE on stderr.
fail() { echo "FAIL: $*" >&2; exit 1; }

# vb_sweep_ini FILE N HIDDEN EPOCHS LRS SEEDS: a sweep over optim.lr LRS
# and train.seed SEEDS of a small synthetic run (N training and 32
# held-out images, HIDDEN units, latent 4, EPOCHS epochs of batch 32).
vb_sweep_ini() {
  cat > "$1" <<INI
[data]
dataset = synthetic
synthetic_n = $2
synthetic_eval_n = 32
[model]
hidden = $3
latent = 4
[train]
epochs = $4
batch = 32
[sweep]
optim.lr = $5
train.seed = $6
INI
}
