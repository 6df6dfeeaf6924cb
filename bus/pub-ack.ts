// What a JetStream publish's reply says (pure: no IO). A message published to a stream's subject with
// a reply subject is answered on that subject by the stream (JetStream API "PubAck"):
// - success: JSON `{"stream": "<name>", "seq": <n>}`, with `"duplicate": true` when the
//   Nats-Msg-Id was already stored inside the duplicate window (the stream holds it either way);
// - failure: JSON `{"error": {"code": <http-like>, "err_code": <jetstream>, "description": "…"}}`,
//   e.g. 10060 "expected stream does not match" when Nats-Expected-Stream names another stream;
// - no stream listens on the subject: the server itself answers with an empty message whose header
//   status line is 503 ("no responders", sent because nats.js connects with no_responders: true).
// Only a success from the expected stream counts as durable; everything else is a failure with a
// reason, and the caller (bus/pub-ack-mux.ts) turns it into BUS_UNAVAILABLE.

export type PubAckOutcome =
  | { readonly ok: true; readonly seq: number; readonly duplicate: boolean }
  | { readonly ok: false; readonly noResponders: boolean; readonly reason: string };

const decoder = new TextDecoder();

function failure(reason: string, noResponders = false): PubAckOutcome {
  return { ok: false, noResponders, reason };
}

/**
 * @param data the reply payload
 * @param status the status code of the reply's header line (503 for "no responders"), undefined
 *   when the reply has no headers
 * @param stream the only stream allowed to confirm
 */
export function readPubAck(data: Uint8Array, status: number | undefined, stream: string): PubAckOutcome {
  if (data.length === 0) return status === 503 ? failure('no responders: no stream listens on the subject', true) : failure(`empty reply${status === undefined ? '' : ` with status ${status}`}`);
  let body: unknown;
  try {
    body = JSON.parse(decoder.decode(data));
  } catch {
    return failure(`reply is not JSON (${data.length} bytes)`);
  }
  if (typeof body !== 'object' || body === null) return failure('reply is not a JSON object');
  const r = body as { stream?: unknown; seq?: unknown; duplicate?: unknown; error?: unknown };
  if (r.error !== undefined) {
    const e = (typeof r.error === 'object' && r.error !== null ? r.error : {}) as { code?: unknown; err_code?: unknown; description?: unknown };
    return failure(`JetStream error ${String(e.code)}/${String(e.err_code)}: ${typeof e.description === 'string' ? e.description.slice(0, 200) : 'no description'}`);
  }
  if (r.stream !== stream) return failure(`PubAck from stream ${JSON.stringify(r.stream)?.slice(0, 100)}, expected ${stream}`);
  if (typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq) || r.seq < 1) return failure(`PubAck without a stream sequence (${JSON.stringify(r.seq)?.slice(0, 40)})`);
  return { ok: true, seq: r.seq, duplicate: r.duplicate === true };
}
