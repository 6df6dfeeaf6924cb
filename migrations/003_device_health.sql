-- 003: device health derived from signed heartbeats (issue 7 §2, docs/operations.md §Device health).
-- Health is never taken from sockets: a device is online while its latest accepted, signed heartbeat
-- is at most N slot intervals old, offline after that. The health monitor (oracle/health) keeps the
-- current state in device_health and appends every transition, with the time the rule puts it at,
-- to device_health_events; the API's live feed (/api/events) follows that table by id.

CREATE TABLE device_health (
  device_id text PRIMARY KEY REFERENCES devices (device_id),
  status text NOT NULL CHECK (status IN ('unseen', 'online', 'offline', 'revoked')),
  -- When the current status began (unix ms, rule time: see device_health_events.at_ms).
  since_ms bigint NOT NULL CHECK (since_ms >= 0),
  -- Device timestamp and seq of the latest accepted heartbeat the monitor has seen.
  last_ts bigint CHECK (last_ts IS NULL OR last_ts >= 0),
  last_seq bigint CHECK (last_seq IS NULL OR last_seq >= 1),
  flapping boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_health_status ON device_health (status);

CREATE TABLE device_health_events (
  id bigserial PRIMARY KEY,
  device_id text NOT NULL REFERENCES devices (device_id),
  -- online/offline/revoked change the status; flapping/stable change only the flapping flag.
  event text NOT NULL CHECK (event IN ('online', 'offline', 'revoked', 'flapping', 'stable')),
  from_status text NOT NULL CHECK (from_status IN ('unseen', 'online', 'offline', 'revoked')),
  to_status text NOT NULL CHECK (to_status IN ('unseen', 'online', 'offline', 'revoked')),
  flapping boolean NOT NULL,
  -- When the transition happened by the rules (unix ms): the first heartbeat after a gap for
  -- 'online', last heartbeat + N intervals for 'offline'. detected_at is when the monitor saw it.
  at_ms bigint NOT NULL CHECK (at_ms >= 0),
  detected_at timestamptz NOT NULL DEFAULT now(),
  last_seq bigint CHECK (last_seq IS NULL OR last_seq >= 1),
  last_ts bigint CHECK (last_ts IS NULL OR last_ts >= 0),
  reason text NOT NULL CHECK (char_length(reason) <= 200),
  CHECK (event IN ('flapping', 'stable') OR from_status <> to_status)
);
CREATE INDEX device_health_events_device ON device_health_events (device_id, id);
CREATE INDEX device_health_events_at ON device_health_events (at_ms);

-- /api/fleet and the rejection-spike alert count recent rejections by time.
CREATE INDEX rejections_recorded_at ON rejections (recorded_at);
