-- 002: the TimescaleDB branch, kept in this one place (docs/storage.md §TimescaleDB). When the
-- extension can be created, heartbeats become a hypertable on device time with
-- compression, retention and an hourly continuous aggregate. Otherwise the same names exist as
-- plain objects: heartbeats stays a plain table and heartbeats_hourly is an ordinary view using
-- date_bin, which runs on PostgreSQL >= 14 and PGlite. Scoring never depends on either: it reads
-- the oracle-maintained slot_rollups (001).
DO $$
DECLARE
  have_timescaledb boolean := false;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
    -- A server that has the package but not in shared_preload_libraries refuses CREATE EXTENSION;
    -- that must not fail the migration, so try it in a subtransaction and fall back to plain tables.
    BEGIN
      CREATE EXTENSION IF NOT EXISTS timescaledb;
      have_timescaledb := true;
    EXCEPTION WHEN OTHERS THEN
      RAISE NOTICE 'timescaledb is available but could not be created (%); using plain tables', SQLERRM;
    END;
  END IF;
  IF have_timescaledb THEN
    -- A hypertable's unique indexes must include the partitioning column, so (device_id, seq)
    -- becomes (device_id, seq, at). Exactly-once per (device_id, seq) is still guaranteed: ingest
    -- holds the device row lock and checks devices.max_seq before inserting (oracle/ingest).
    ALTER TABLE heartbeats DROP CONSTRAINT heartbeats_pkey;
    CREATE UNIQUE INDEX heartbeats_device_seq_at ON heartbeats (device_id, seq, at);
    PERFORM create_hypertable('heartbeats', 'at', chunk_time_interval => interval '1 day', migrate_data => true);
    EXECUTE 'ALTER TABLE heartbeats SET (timescaledb.compress, timescaledb.compress_segmentby = ''device_id'', timescaledb.compress_orderby = ''seq'')';
    PERFORM add_compression_policy('heartbeats', interval '7 days');
    -- Raw signed heartbeats back published epoch bundles; keep them well past any challenge period.
    PERFORM add_retention_policy('heartbeats', interval '400 days');
    -- Continuous aggregates only accept time_bucket; this is the one place it appears.
    EXECUTE 'CREATE MATERIALIZED VIEW heartbeats_hourly WITH (timescaledb.continuous) AS '
         || 'SELECT device_id, time_bucket(interval ''1 hour'', at) AS hour, count(*) AS heartbeats '
         || 'FROM heartbeats GROUP BY device_id, time_bucket(interval ''1 hour'', at) WITH NO DATA';
    PERFORM add_continuous_aggregate_policy('heartbeats_hourly', start_offset => interval '3 days', end_offset => interval '1 hour', schedule_interval => interval '15 minutes');
    INSERT INTO oracle_settings (key, value) VALUES ('storage_mode', 'timescaledb');
  ELSE
    CREATE INDEX heartbeats_at ON heartbeats (at);
    CREATE VIEW heartbeats_hourly AS
      SELECT device_id, date_bin(interval '1 hour', at, timestamptz '1970-01-01 00:00:00+00') AS hour, count(*) AS heartbeats
      FROM heartbeats GROUP BY 1, 2;
    INSERT INTO oracle_settings (key, value) VALUES ('storage_mode', 'plain');
  END IF;
END
$$;
