#!/usr/bin/env bash
# The read floor of an evaluation run, on a population kept by the simulate bench
# (`BENCH_KEEP=1 cargo bench -p tierline-scoring --bench simulate`): every tier state whose review
# month has come by JUDGED_MONTH is read with its buckets, as a run's chunk read by block does (the
# states' blocks in parts of 770; the buckets are the state's own month columns, so nothing else
# is probed), on CONNECTIONS connections at once. Prints that time less the cost of starting as
# many `psql` (timed the same way with `SELECT 1`), the plain-SQL RFM baseline over the states'
# month arrays of the same database, and the ratio (docs/BENCHMARKS.md, "Where the target stands
# after session 17").
#
# Usage: scripts/evaluation-read-floor.sh DATABASE [CONNECTIONS=2] [JUDGED_MONTH=first of next month]
set -euo pipefail

database=${1:?usage: $0 DATABASE [CONNECTIONS] [JUDGED_MONTH]}
connections=${2:-2}
judged_month=${3:-$(date -u -d "$(date -u +%Y-%m-01) +1 month" +%Y-%m-%d)}
export PGHOST=${PGHOST:-127.0.0.1} PGUSER=${PGUSER:-postgres} PGDATABASE=$database
blocks_per_part=770

program=$(psql -Atqc "SELECT id FROM scoring.programs LIMIT 1")
blocks=$(psql -Atqc "SELECT pg_relation_size('scoring.tier_states') / current_setting('block_size')::int")
due=$(psql -Atqc "SELECT count(*) FROM scoring.tier_states WHERE review_month <= DATE '$judged_month'")

seconds() { date +%s.%N; }

# Runs "$1" once per part, CONNECTIONS at a time; FROM and UNTIL in it name the part's blocks.
each_part() {
    seq 0 "$blocks_per_part" "$blocks" | xargs -P "$connections" -I{} sh -c '
        from=$1; until=$((from + '"$blocks_per_part"'))
        sql=$(printf "%s" "$2" | sed "s/FROM_BLOCK/$from/; s/UNTIL_BLOCK/$until/")
        psql -Atq -c "SET jit = off" -c "$sql" >/dev/null' _ {} "$1"
}

# A chunk part's read as storage/postgres/chunk_reads.rs makes it (its candidates with their month
# columns, storage/postgres/months.rs), for the due members only: every array is counted, so
# that each is read.
reads="SELECT count(*), sum(cardinality(c.months) + cardinality(c.spend_through)
                           + cardinality(c.points_through) + cardinality(c.purchases_through))
       FROM scoring.tier_states c
       WHERE c.ctid >= '(FROM_BLOCK,0)'::tid AND c.ctid < '(UNTIL_BLOCK,0)'::tid
         AND c.program_id = '$program' AND c.review_month <= DATE '$judged_month'"
# The baseline over the states' month arrays, as `compare` in services/scoring/benches/simulate.rs
# times it (RFM_OVER_STATES): change both together. Frequency and monetary are the sums over the
# window from the first month through the latest any state has (every month stored), by binary
# search in the running totals. The scores are summed so that Postgres computes them (over
# count(*) alone the planner drops the window functions nothing reads).
last_month=$(psql -Atqc "SELECT max(months[cardinality(months)]) FROM scoring.tier_states WHERE program_id = '$program'")
rfm="SELECT count(*), sum(r), sum(f), sum(m) FROM (
         SELECT customer_id, NTILE(5) OVER (ORDER BY last_month) AS r,
                NTILE(5) OVER (ORDER BY purchases) AS f, NTILE(5) OVER (ORDER BY spend) AS m
         FROM (SELECT customer_id, months[cardinality(months)] AS last_month,
                      COALESCE(purchases_through[width_bucket(DATE '$last_month', months)], 0) AS purchases,
                      COALESCE(spend_through[width_bucket(DATE '$last_month', months)], 0) AS spend
               FROM scoring.tier_states WHERE program_id = '$program' AND months <> '{}') t) s"

start=$(seconds); each_part "SELECT 1"; starts=$(echo "$(seconds) - $start" | bc)
start=$(seconds); each_part "$reads"; read_all=$(echo "$(seconds) - $start" | bc)
start=$(seconds); psql -Atq -c "SET jit = off" -c "$rfm" >/dev/null; baseline=$(echo "$(seconds) - $start" | bc)

read_only=$(echo "$read_all - $starts" | bc)
printf 'due members (review month by %s): %s in %s blocks, %s connections\n' \
    "$judged_month" "$due" "$blocks" "$connections"
printf 'reads %.2f s (%.2f s less %.2f s of psql starts); plain-SQL RFM %.2f s; reads / RFM = %.2fx\n' \
    "$read_only" "$read_all" "$starts" "$baseline" "$(echo "$read_only / $baseline" | bc -l)"
