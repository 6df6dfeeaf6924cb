// Topic authorization for the edge broker (docs/broker.md §Authorization). Pure functions, so every
// rule is unit-tested without sockets.
//
// Devices publish only to devices/<their key id>/heartbeat and subscribe only under
// devices/<their key id>/. Service accounts are read-only and see only the devices/ tree. The
// identity used here always comes from the verified credential (the connect token), never from the
// client id or the topic.
//
// Tricks closed off:
// - wildcards in the first two levels (`+/…`, `devices/+/…`, `#`) would reach other devices;
// - `$SYS/…` and `$share/<group>/…` start with `$`: never granted (MQTT-4.7.2-1 keeps `$` topics
//   out of wildcard matches; Aedes does not implement `$share` in 3.1.1, so it would be an ordinary
//   topic filter — still refused);
// - Aedes accepts NUL (MQTT-1.5.3-2) and invalid UTF-8 (decoded to U+FFFD, MQTT-1.5.3-1) in topic
//   names, so `devices/<id>\u0000/…` style look-alikes are refused explicitly.

/** Who a session is, from its verified credential. */
export type Principal =
  | { readonly kind: 'device'; readonly keyId: string; readonly deviceId: string }
  | { readonly kind: 'service'; readonly username: string };

const MAX_TOPIC_LENGTH = 512;

/** False for topics no client may use: empty, too long, NUL, U+FFFD (invalid UTF-8), `$` first. */
export function isCleanTopic(topic: string): boolean {
  if (topic.length === 0 || topic.length > MAX_TOPIC_LENGTH) return false;
  if (topic.charCodeAt(0) === 36) return false; // '$'
  return !topic.includes('\u0000') && !topic.includes('\ufffd');
}

/** The only topic a device may publish to. */
export function devicePublishTopic(keyId: string): string {
  return `devices/${keyId}/heartbeat`;
}

export function mayPublish(p: Principal, topic: string): boolean {
  return p.kind === 'device' && topic === devicePublishTopic(p.keyId);
}

/** Subscription filter check (wildcards allowed only below the principal's own subtree). */
export function maySubscribe(p: Principal, filter: string): boolean {
  if (!isCleanTopic(filter)) return false;
  const levels = filter.split('/');
  if (levels[0] !== 'devices' || levels.length < 2) return false;
  if (p.kind === 'service') return true;
  // A device: devices/<keyId>/<something>, the first two levels literal.
  return levels.length >= 3 && levels[1] === p.keyId;
}

/** Delivery check (Aedes authorizeForward): may this principal receive a message on `topic`? */
export function mayReceive(p: Principal, topic: string): boolean {
  if (!isCleanTopic(topic)) return false;
  if (p.kind === 'service') return topic.startsWith('devices/');
  return topic.startsWith(`devices/${p.keyId}/`);
}
