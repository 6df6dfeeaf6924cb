-- 007: broker session reports counted into connected time (issue 5 §Scores: connected time is
-- reported beside credited uptime and never paid; docs/storage.md §Session reports).
--
-- Each broker process publishes one report per interval (docs/broker.md §Session reports); the bus
-- delivers at least once. Session ingest (oracle/ingest/session-ingest.ts) inserts the report part's
-- id here and adds its milliseconds to epoch_device_stats.connected_ms in the SAME transaction, so a
-- redelivered or resent report finds its id already here (ON CONFLICT DO NOTHING) and adds nothing:
-- every report is counted exactly once.
CREATE TABLE session_reports (
  -- `<broker id>:<report seq>:<part>` (bus/session-report.ts sessionReportId).
  report_id text PRIMARY KEY CHECK (char_length(report_id) BETWEEN 5 AND 200),
  broker_id text NOT NULL CHECK (broker_id ~ '^[A-Za-z0-9_-]{1,128}$'),
  report_seq bigint NOT NULL CHECK (report_seq >= 1),
  part integer NOT NULL CHECK (part >= 0),
  parts integer NOT NULL CHECK (parts >= 1 AND part < parts),
  -- The report window, unix ms, [from_ms, to_ms).
  from_ms bigint NOT NULL CHECK (from_ms >= 0),
  to_ms bigint NOT NULL CHECK (to_ms > from_ms),
  intervals integer NOT NULL CHECK (intervals >= 0),
  -- Connected time the report carried (before time in closed epochs or of unknown devices is left out).
  reported_ms bigint NOT NULL CHECK (reported_ms >= 0),
  received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_reports_broker ON session_reports (broker_id, report_seq);
