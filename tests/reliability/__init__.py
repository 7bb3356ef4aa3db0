"""Every failure mode of the pipeline, tried on the real broker, with exact counts.

All of it is marked `slow` (CI runs it; `make test-fast` does not). The stream tests run
Spark's own Kafka source against Apache Kafka started by the tests; "exactly once" is always
checked by event_id with DuckDB's plain `read_parquet`, which knows nothing of Spark. Each
failure mode, what must hold, and the test that proves it:

Stream and broker (in this folder)
- The stream's process tree SIGKILLed in 5 rounds at seeded moments (start-up, mid-write,
  anywhere in a batch) while a producer runs: 0 lost, 0 doubled.
  test_crash_recovery.py::test_kill_minus_nine_loses_nothing_and_doubles_nothing
- The broker stops mid-stream and comes back: producer and stream ride it out, every
  acknowledged event lands once.
  test_broker_outage.py::test_stream_and_producer_ride_out_a_broker_restart
- The broker stays away past the outage tolerance: the stream ends with one sentence.
  test_stream_failures.py::test_a_broker_that_stays_away_ends_the_stream_with_one_sentence
- One of three brokers SIGKILLed mid-stream (replication 3, min.insync.replicas=2,
  acks=all): every acknowledged event lands once.
  test_broker_cluster.py::test_a_broker_killed_mid_stream_loses_no_acknowledged_event
- The topic deleted and recreated under a checkpoint (fewer, as many, more records): refused
  with one sentence, nothing skipped or added.
  test_stream_failures.py::test_a_recreated_topic_is_refused_whatever_its_offsets
- A lake that refuses writes: the stream stops naming the path, commits no offsets; the
  rerun lands every event once.
  test_stream_failures.py::test_an_unwritable_lake_stops_the_stream_naming_the_path
- A lake out of space (a real 64 KiB tmpfs; skipped where this process may not mount one):
  the stream stops naming the path and "No space left on device", commits no offsets, shows
  readers no half batch; with space again the rerun lands every event once.
  test_stream_failures.py::test_a_full_lake_stops_the_stream_and_the_rerun_lands_every_event_once
- A second stream on the same checkpoint: refused with one sentence.
  test_stream_failures.py::test_a_second_stream_on_one_checkpoint_is_refused
- 1% of each bad kind (undecodable bytes, unknown schema id, a body that does not decode,
  missing field, unknown event type, no key, wrong key, absurd timestamps, tombstone) in live
  traffic: exact dead letters per reason in the lake, on the DLQ topic and in the metrics,
  every good event once, the stream still running, its lag back to 0.
  test_bad_message_storm.py::test_a_storm_of_bad_messages_is_dead_lettered_and_the_stream_keeps_up
- Producers switched from contract v1 to v2 mid-stream: both decoded (schema ids 1 and 2),
  the landed event-id set equals the produced one.
  test_schema_upgrade.py::test_v1_and_v2_producers_switched_mid_stream_all_land

Warehouse (in this folder)
- A corrupt Parquet file in the lake (torn, foreign bytes, empty, damaged footer):
  `warehouse load` fails with one sentence naming the file; moved away, every row is read.
  test_warehouse_failures.py::test_a_corrupt_lake_file_fails_the_load_naming_it
- Lake files torn after the load (events and dead letters): `warehouse build` fails naming
  both, builds nothing.
  test_warehouse_failures.py::test_a_file_torn_after_the_load_fails_the_build_naming_it
- Two dbt builds on one DuckDB file: the second is refused naming the file and the first's
  PID; the first completes, its marts whole.
  test_warehouse_failures.py::test_a_second_build_on_the_warehouse_is_refused_and_the_first_completes
- Two builds that both pass the up-front check: the one that opens the file second gets the
  same sentence, not dbt's lock traceback.
  test_warehouse_failures.py::test_a_writer_that_wins_the_race_after_the_check_is_named_too

Covered elsewhere, not repeated here
- dbt build twice in a row: marts identical.
  tests/dbt/test_dbt_build.py::test_second_build_leaves_the_marts_identical
- Daily incremental runs over late and duplicate deliveries end where a full rebuild does.
  tests/dbt/test_dbt_incremental.py::test_daily_incremental_runs_end_where_a_full_rebuild_does
- Late events inside the lookback window land in their day; later than the window they are
  flagged by the reconciliation test until a full refresh.
  tests/dbt/test_dbt_incremental.py::test_late_events_land_in_their_day_and_too_late_ones_are_flagged
- A replayed micro-batch rewrites its own files.
  tests/spark/test_landing.py::test_land_partition_writes_deterministic_files_and_replay_overwrites
- Each bad kind's reason, decoded in the JVM; dead letters on the DLQ topic (AvailableNow).
  tests/spark/test_landing.py::test_every_bad_kind_is_dead_lettered_with_its_reason
  tests/spark/test_stream.py::test_bad_messages_are_dead_lettered_and_counted
- SIGTERM of a continuous stream: "interrupted", exit 130.
  tests/spark/test_stream.py::test_sigterm_stops_a_continuous_stream_with_one_word
- The lag unknown, not fatal, while the broker is away.
  tests/spark/test_stream.py::test_lag_is_unknown_not_fatal_while_the_broker_is_away
- A warehouse file held by another process, from the CLI.
  tests/test_cli.py::test_a_warehouse_held_by_another_process_is_named
- A lake path that is a file.
  tests/test_cli.py::test_a_lake_path_that_is_a_file_is_refused_by_warehouse_load
- An unreachable broker or a locked warehouse in `orangescrum status`: tests/test_health.py
"""
