#!/bin/bash
# Alternating A/B of two builds of benches/examples/apply_loop.rs on a shared, noisy host:
# runs A and B one after the other, PAIRS times, and prints each run's fastest round (apply and
# disconnect tx/s), which host noise can only slow down. Compare pair by pair.
#
#   cargo build --profile bench -p benches --example apply_loop && cp target/release/examples/apply_loop /tmp/A
#   (change, rebuild, copy to /tmp/B)
#   benches/ab_apply.sh /tmp/A /tmp/B [ROUNDS=30] [PAIRS=6] [2in2out|mainnet]
set -euo pipefail
A=$1; B=$2; ROUNDS=${3:-30}; PAIRS=${4:-6}; SHAPE=${5:-2in2out}
best() { "$1" "$SHAPE" "$ROUNDS" 2>&1 | sed -E 's/.*best round: apply ([0-9]+), disconnect ([0-9]+).*/\1 \2/'; }
for _ in $(seq "$PAIRS"); do
  read -r a_apply a_disc < <(best "$A")
  read -r b_apply b_disc < <(best "$B")
  awk -v aa="$a_apply" -v ad="$a_disc" -v ba="$b_apply" -v bd="$b_disc" 'BEGIN {
    printf "A apply %d disconnect %d | B apply %d disconnect %d | B/A apply %.3f disconnect %.3f\n",
      aa, ad, ba, bd, ba / aa, bd / ad }'
done
