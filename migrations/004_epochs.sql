-- 004: epochs, scores, rewards and posting state (docs/rewards.md §Epoch result, issue 5).
-- Closing an epoch writes its epochs row, per-device scores, per-owner rewards, the cumulative
-- leaves, the tree dump and the advanced cursor in ONE transaction (oracle/epochs/close-epoch.ts),
-- so each epoch is closed exactly once. Bundling and posting are later, idempotent steps that only
-- fill in columns of the epochs row.

-- The epoch cursor: the next epoch to close and its first slot. Ingest reads it (FOR SHARE) in every
-- batch and rejects heartbeats for slots before next_first_slot (HB_EPOCH_CLOSED), so a closed
-- epoch's inputs never change after the fact.
CREATE TABLE epoch_cursor (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  next_epoch bigint NOT NULL CHECK (next_epoch >= 0),
  next_first_slot bigint NOT NULL CHECK (next_first_slot >= 0)
);

-- Every parameter set ever used, by version; the hash is what is posted on chain.
CREATE TABLE reward_params (
  version bigint PRIMARY KEY CHECK (version >= 0),
  params jsonb NOT NULL,
  params_hash text NOT NULL CHECK (params_hash ~ '^0x[0-9a-f]{64}$'),
  first_epoch bigint NOT NULL CHECK (first_epoch >= 0),
  added_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE epochs (
  epoch bigint PRIMARY KEY CHECK (epoch >= 0),
  first_slot bigint NOT NULL CHECK (first_slot >= 0),
  slot_count integer NOT NULL CHECK (slot_count >= 1),
  slot_ms bigint NOT NULL CHECK (slot_ms >= 1),
  params_version bigint NOT NULL REFERENCES reward_params (version),
  params_hash text NOT NULL CHECK (params_hash ~ '^0x[0-9a-f]{64}$'),
  scorer_version text NOT NULL,
  emission numeric(78, 0) NOT NULL CHECK (emission >= 0),
  allocated numeric(78, 0) NOT NULL CHECK (allocated >= 0 AND allocated <= emission),
  unallocated numeric(78, 0) NOT NULL CHECK (unallocated >= 0),
  unallocated_parts jsonb NOT NULL,
  -- Cumulative over all epochs up to and including this one (the contract's cumulativeTotal).
  cumulative_total numeric(78, 0) NOT NULL CHECK (cumulative_total >= 0),
  root text CHECK (root IS NULL OR root ~ '^0x[0-9a-f]{64}$'),
  devices integer NOT NULL CHECK (devices >= 0),
  owners integer NOT NULL CHECK (owners >= 0),
  heartbeats bigint NOT NULL CHECK (heartbeats >= 0),
  closed_at timestamptz NOT NULL DEFAULT now(),
  -- Bundle (issue 6): hash of the canonical bundle file = inputsHash on chain.
  bundle_hash text CHECK (bundle_hash IS NULL OR bundle_hash ~ '^0x[0-9a-f]{64}$'),
  bundle_file text,
  bundle_bytes bigint,
  -- Posting (oracle/chain): 'closed' → 'bundled' → 'posted'; 'failed' keeps the last error and is retried.
  status text NOT NULL DEFAULT 'closed' CHECK (status IN ('closed', 'bundled', 'posted', 'failed', 'vetoed', 'skipped')),
  tx_hash text CHECK (tx_hash IS NULL OR tx_hash ~ '^0x[0-9a-f]{64}$'),
  posted_at timestamptz,
  post_error text,
  CHECK (allocated + unallocated = emission)
);

CREATE TABLE epoch_device_scores (
  epoch bigint NOT NULL REFERENCES epochs (epoch),
  device_id text NOT NULL CHECK (device_id ~ '^[0-9a-f]{64}$'),
  owner text CHECK (owner IS NULL OR owner ~ '^0x[0-9a-f]{40}$'),
  credited_slots integer NOT NULL CHECK (credited_slots >= 0),
  slot_count integer NOT NULL CHECK (slot_count >= 1 AND credited_slots <= slot_count),
  uptime_bps integer NOT NULL CHECK (uptime_bps BETWEEN 0 AND 10000),
  connected_ms bigint NOT NULL DEFAULT 0,
  contribution numeric(78, 0) NOT NULL CHECK (contribution >= 0),
  metrics jsonb NOT NULL,
  eligible boolean NOT NULL,
  reasons text[] NOT NULL,
  availability_reward numeric(78, 0) NOT NULL CHECK (availability_reward >= 0),
  contribution_reward numeric(78, 0) NOT NULL CHECK (contribution_reward >= 0),
  PRIMARY KEY (epoch, device_id)
);
CREATE INDEX epoch_device_scores_device ON epoch_device_scores (device_id, epoch);

CREATE TABLE epoch_rewards (
  epoch bigint NOT NULL REFERENCES epochs (epoch),
  owner text NOT NULL CHECK (owner ~ '^0x[0-9a-f]{40}$'),
  amount numeric(78, 0) NOT NULL CHECK (amount >= 0),
  cumulative numeric(78, 0) NOT NULL CHECK (cumulative >= amount),
  PRIMARY KEY (epoch, owner)
);

-- The leaves after the latest closed epoch (owner → cumulative amount).
CREATE TABLE cumulative_rewards (
  owner text PRIMARY KEY CHECK (owner ~ '^0x[0-9a-f]{40}$'),
  cumulative numeric(78, 0) NOT NULL CHECK (cumulative >= 0),
  last_epoch bigint NOT NULL
);

-- The full tree of each epoch in @openzeppelin/merkle-tree dump format (proofs are served from it).
CREATE TABLE epoch_trees (
  epoch bigint PRIMARY KEY REFERENCES epochs (epoch),
  dump jsonb NOT NULL
);
