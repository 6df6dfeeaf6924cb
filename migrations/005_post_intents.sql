-- 005: the root poster's journal (oracle/chain/post-journal.ts, docs/contracts.md §Posting). The
-- signed raw transactions of an epoch's post are saved here BEFORE they are broadcast, so an oracle
-- that crashes between signing and confirmation resumes the same transaction (same nonce, same
-- signatures) instead of signing a second one. In the database rather than a file so any oracle
-- process of the deployment can resume it.
CREATE TABLE post_intents (
  epoch bigint PRIMARY KEY CHECK (epoch >= 0),
  intent jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
