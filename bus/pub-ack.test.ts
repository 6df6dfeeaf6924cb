// readPubAck: only a PubAck from the expected stream with a stream sequence is a success; every other
// reply (JetStream error, another stream, "no responders", junk) is a failure with a reason.
import { describe, expect, it } from 'vitest';
import { readPubAck } from './pub-ack.ts';

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe('readPubAck', () => {
  it('accepts a PubAck from the expected stream, and a duplicate as held', () => {
    expect(readPubAck(json({ stream: 'S', seq: 7 }), undefined, 'S')).toEqual({ ok: true, seq: 7, duplicate: false });
    expect(readPubAck(json({ stream: 'S', seq: 7, duplicate: true }), undefined, 'S')).toEqual({ ok: true, seq: 7, duplicate: true });
    expect(readPubAck(json({ stream: 'S', seq: 1, domain: 'hub' }), undefined, 'S')).toEqual({ ok: true, seq: 1, duplicate: false });
  });

  it('refuses a PubAck from another stream or without a usable sequence', () => {
    expect(readPubAck(json({ stream: 'OTHER', seq: 7 }), undefined, 'S')).toMatchObject({ ok: false, noResponders: false, reason: expect.stringMatching(/"OTHER", expected S/) });
    expect(readPubAck(json({ seq: 7 }), undefined, 'S')).toMatchObject({ ok: false });
    for (const seq of [0, -1, 1.5, '7', null, 2 ** 60]) expect(readPubAck(json({ stream: 'S', seq }), undefined, 'S')).toMatchObject({ ok: false, reason: expect.stringMatching(/sequence/) });
  });

  it('reports a JetStream error with its codes and description', () => {
    const r = readPubAck(json({ error: { code: 400, err_code: 10060, description: 'expected stream does not match' } }), undefined, 'S');
    expect(r).toEqual({ ok: false, noResponders: false, reason: 'JetStream error 400/10060: expected stream does not match' });
    // An error wins even when the reply also names our stream.
    expect(readPubAck(json({ stream: 'S', seq: 3, error: { code: 503 } }), undefined, 'S')).toMatchObject({ ok: false, reason: expect.stringMatching(/^JetStream error 503/) });
    expect(readPubAck(json({ error: 'boom' }), undefined, 'S')).toMatchObject({ ok: false, reason: expect.stringMatching(/no description/) });
  });

  it('tells "no responders" (empty reply, status 503) from other empty or malformed replies', () => {
    expect(readPubAck(new Uint8Array(0), 503, 'S')).toMatchObject({ ok: false, noResponders: true });
    expect(readPubAck(new Uint8Array(0), 408, 'S')).toMatchObject({ ok: false, noResponders: false, reason: 'empty reply with status 408' });
    expect(readPubAck(new Uint8Array(0), undefined, 'S')).toMatchObject({ ok: false, noResponders: false });
    expect(readPubAck(new TextEncoder().encode('{"stream":'), undefined, 'S')).toMatchObject({ ok: false, reason: expect.stringMatching(/not JSON/) });
    expect(readPubAck(json([1, 2]), undefined, 'S')).toMatchObject({ ok: false });
    expect(readPubAck(json('S'), undefined, 'S')).toMatchObject({ ok: false, reason: 'reply is not a JSON object' });
  });
});
