// Which chain errors the poster retries (oracle/chain/chain-error.ts isTransient). A revert quotes
// the transaction's hex data in its message; hex such as "…02bc503f…" once made a revert look like
// an HTTP 503, so claims and posts were retried as outages at random.
import { describe, expect, it } from 'vitest';
import { isTransient } from '../oracle/chain/chain-error.ts';

describe('isTransient', () => {
  it('never treats a revert as transient, whatever hex its message quotes', () => {
    const revert = Object.assign(new Error('execution reverted (unknown custom error) (transaction={ "data": "0x3d13f874000002bc503f504a502e" }, code=CALL_EXCEPTION)'), { code: 'CALL_EXCEPTION' });
    expect(isTransient(revert)).toBe(false);
    expect(isTransient(new Error('bad data 0xab503cd502ef504'))).toBe(false);
  });

  it('retries what means the endpoint did not answer', () => {
    expect(isTransient(Object.assign(new Error('x'), { code: 'NETWORK_ERROR' }))).toBe(true);
    expect(isTransient(new Error('socket hang up'))).toBe(true);
    expect(isTransient(new Error('server response 503 Service Unavailable'))).toBe(true);
    expect(isTransient(new Error('connect ECONNREFUSED 127.0.0.1:8545'))).toBe(true);
  });
});
