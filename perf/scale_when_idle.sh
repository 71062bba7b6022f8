#!/bin/sh
# scale_when_idle.sh BENCH_DIR [MINUTES]: waits (up to MINUTES, default 60)
# for the machine to be idle (>= 90 % idle CPU over 3 s: no other process
# running), then runs bench_threads's 5-process thread-scaling check
# (1 vs 2 threads, ResNet RHVAE step) in each setting: GOMP's default wait
# policy, OMP_WAIT_POLICY=passive, threads pinned to cores
# (OMP_PROC_BIND=close OMP_PLACES=cores), and the threads as before
# op_set_threads (--old-threads), printing the idle share before each;
# POLICIES="default old" picks some.
# Thread scaling can only be judged on an idle machine: with other
# processes runnable, every fork/join waits for a descheduled thread.
dir=${1:?usage: scale_when_idle.sh BENCH_DIR [MINUTES]}
end=$(( $(date +%s) + 60 * ${2:-60} ))
idle() { # percent idle over 3 s, from /proc/stat
	set -- $(head -1 /proc/stat); a=$(( $2+$3+$4+$5+$6+$7+$8+$9 )); i=$5
	sleep 3
	set -- $(head -1 /proc/stat); b=$(( $2+$3+$4+$5+$6+$7+$8+$9 ))
	echo $(( 100 * ($5 - i) / (b - a) ))
}
for policy in ${POLICIES:-default passive pinned old}; do
	while :; do
		v=$(idle)
		[ "$v" -ge 90 ] && break
		[ "$(date +%s)" -ge "$end" ] && { echo "never idle (last ${v}% idle)"; exit 1; }
	done
	echo "== policy $policy, ${v}% idle, load $(cut -d' ' -f1-3 /proc/loadavg)"
	set -- --arch resnet --scale 2 --steps 10 --processes 5
	case $policy in
	passive) OMP_WAIT_POLICY=passive "$dir"/bench_threads "$@" ;;
	pinned) OMP_PROC_BIND=close OMP_PLACES=cores "$dir"/bench_threads "$@" ;;
	old) "$dir"/bench_threads "$@" --old-threads ;;
	*) "$dir"/bench_threads "$@" ;;
	esac
done
