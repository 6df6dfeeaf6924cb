// The Pulse edge broker (docs/broker.md): Aedes behind MQTT/TCP, MQTT over WebSocket and optional
// TLS for both, with device authentication by connect token, per-device topic ACLs, limits, edge
// verification of every heartbeat and a durable hand-off to the bus before the device's PUBACK.
//
// Aedes 1.2 behaviours this file works around (found by probing 1.2.0, see docs/broker.md):
// - a QoS 1 PUBACK is written before the `published` handler runs (lib/handlers/publish.js), so the
//   bus hand-off happens inside `authorizePublish`, whose callback gates the PUBACK;
// - no packet-size limit: every transport's reads are scanned by broker/frame-guard.ts first;
// - NUL and invalid UTF-8 in topic names are accepted: broker/acl.ts refuses them;
// - an empty client id with clean session off is accepted, against MQTT-3.1.3-8: refused here with
//   CONNACK 0x02 (MQTT-3.1.3-9).
import { createServer as createNetServer, type Server as NetServer, type Socket, type AddressInfo } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { timingSafeEqual, randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { Aedes, type AedesPublishPacket, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import type { Bus, BusHeartbeat, BusPublisher } from '../bus/bus.ts';
import type { DeviceDirectory } from '../shared/device-directory.ts';
import { nativeVerifier, type NativeVerifier } from '../shared/crypto/native.ts';
import { verifyConnectToken } from '../shared/protocol/connect-token.ts';
import { eventsTopic } from '../shared/protocol/topics.ts';
import { isDeviceId } from '../shared/protocol/device-id.ts';
import type { HeartbeatCode } from '../shared/error-codes.ts';
import { PulseError } from '../shared/errors.ts';
import type { BrokerConfig } from './config.ts';
import { guardReads } from './frame-guard.ts';
import { RateLimiter } from './rate-limiter.ts';
import { DirectoryCache } from './directory-cache.ts';
import { mayPublish, mayReceive, maySubscribe, type Principal } from './acl.ts';
import { checkHeartbeat } from './edge-check.ts';
import type { Heartbeat } from '../shared/protocol/heartbeat.ts';
import { peekSeq } from './peek-seq.ts';
import { createBrokerMetrics, type BrokerMetrics } from './metrics.ts';
import { SessionReporter } from './session-reporter.ts';
import { silentLogger, type Logger } from './log.ts';

export type BrokerDeps = {
  readonly bus: Bus;
  readonly directory: DeviceDirectory;
  readonly logger?: Logger;
  readonly metrics?: BrokerMetrics;
  readonly verifier?: NativeVerifier;
  /** Broker clock, unix ms (tests move it to check skew rules). */
  readonly now?: () => number;
};

export type ListenAddress = { readonly host: string; readonly port: number };

export type BrokerHealth = {
  readonly status: 'ok' | 'bus_down' | 'closing';
  readonly connections: number;
  readonly sessions: number;
  readonly inFlight: number;
  readonly busUp: boolean;
};

export type BrokerHandle = {
  readonly id: string;
  readonly addresses: {
    readonly mqtt?: ListenAddress;
    readonly ws?: ListenAddress;
    readonly tls?: ListenAddress;
    readonly wss?: ListenAddress;
    readonly metrics?: ListenAddress;
  };
  readonly metrics: BrokerMetrics;
  health(): BrokerHealth;
  /** Graceful shutdown: stop accepting, drain in-flight hand-offs (up to shutdownGraceMs), close. */
  close(): Promise<void>;
};

/** Violations counted by reason (pulse_broker_violations_total) beyond heartbeat reason codes. */
export type ViolationReason =
  | 'max_connections'
  | 'connect_rate'
  | 'frame_too_large'
  | 'malformed_length'
  | 'acl_publish'
  | 'acl_subscribe'
  | 'empty_client_id'
  | 'revoked_session_closed'
  | 'shutting_down';

/** MQTT 3.1.1 §3.2.2.3 CONNACK return codes used here. */
const CONNACK = { IDENTIFIER_REJECTED: 2, SERVER_UNAVAILABLE: 3, BAD_USERNAME_OR_PASSWORD: 4, NOT_AUTHORIZED: 5 } as const;

/** Where rejected heartbeats are re-routed so Aedes still PUBACKs them but nobody receives them. */
const REJECTED_TOPIC = '$pulse/rejected';

/** Headroom above the payload limit for the rest of a frame (topic, packet id, CONNECT fields). */
const FRAME_OVERHEAD = 1024;

type Connection = { readonly transport: 'tcp' | 'ws' | 'tls' | 'wss'; readonly remote: string; client?: Client };

function authError(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function listen(server: NetServer, port: number, host: string, flag: string): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (e.code === 'EADDRINUSE') reject(new PulseError('PORT_IN_USE', `port ${port} on ${host} is already in use; choose another with --${flag}`, { cause: e }));
      else reject(e);
    };
    const onListening = () => {
      server.off('error', onError);
      const a = server.address() as AddressInfo;
      resolve({ host: a.address, port: a.port });
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function startBroker(config: BrokerConfig, deps: BrokerDeps): Promise<BrokerHandle> {
  const log = deps.logger ?? silentLogger;
  const metrics = deps.metrics ?? createBrokerMetrics();
  const verifier = deps.verifier ?? nativeVerifier;
  const now = deps.now ?? Date.now;
  // The JetStream publisher sends each event-loop turn's hand-offs in one burst (bus/pub-ack-mux.ts).
  const publisher: BusPublisher = deps.bus.publisher();
  const directory = new DirectoryCache(deps.directory, config.directoryTtlMs);
  const publishLimiter = new RateLimiter(config.publishRate, config.publishBurst);
  const connectLimiter = new RateLimiter(config.connectRate, config.connectBurst);
  const frameLimit = config.maxPayload + FRAME_OVERHEAD;

  const principals = new WeakMap<Client, Principal>();
  const connectInfo = new WeakMap<Client, { clientId: string; clean: boolean }>();
  const sessionsByKey = new Map<string, Set<Client>>();
  const connections = new Set<Duplex>();
  let sessionCount = 0;
  let inFlight = 0;
  let busUp = true;
  let closing = false;
  let hardClosing = false;
  const drainWaiters = new Set<() => void>();
  metrics.busUp.set(1);

  // Floods are counted, and logged only at debug: one log line per refused socket would let an
  // attacker fill the disk.
  const QUIET: ReadonlySet<ViolationReason> = new Set(['max_connections', 'connect_rate', 'frame_too_large', 'malformed_length', 'shutting_down']);
  const violation = (reason: ViolationReason, fields: Record<string, unknown> = {}) => {
    metrics.violations.inc({ reason });
    (QUIET.has(reason) ? log.debug : log.info)('violation', { reason, ...fields });
  };

  const broker = await Aedes.createBroker({
    id: `pulse-broker-${randomUUID()}`,
    connectTimeout: config.connectTimeoutMs,
    // Device ids are 64 characters; MQTT 3.1 (protocol level 3) would otherwise cap client ids at 23.
    maxClientsIdLength: 128,
    drainTimeout: 10_000,
    heartbeatInterval: 60_000,
    // No mqemitter concurrency limit (Aedes' default is 100). With a limit, emits beyond 100 in
    // flight wait in mqemitter's queue, and when one in-flight emit completes, mqemitter 7 runs the
    // queued ones recursively for as long as their listeners finish synchronously (released → _do →
    // fastparallel → released …): ~2,000 queued synchronous emits ($SYS connect/disconnect notices,
    // rejected or unwatched heartbeats) behind 100 slow deliveries (a subscriber whose socket waits
    // for 'drain') overflow the stack, "RangeError: Maximum call stack size exceeded", and kill the
    // process. Reproduced with a paused service-account subscriber and 50 devices flooding rejected
    // heartbeats (broker/emit-storm.test.ts). The queue bounded nothing (it is unbounded), it made one slow
    // subscriber stall every publish in the broker; without it each emit completes on its own
    // deliveries, and slow clients are still cut off by drainTimeout.
    concurrency: 0,
  });
  // Connected time of device sessions, reported to the bus every interval (docs/broker.md §Session reports).
  const sessionReports = new SessionReporter({ brokerId: broker.id, publisher: deps.bus.sessionPublisher(), intervalMs: config.sessionReportMs, now, log, registry: metrics.registry });

  // ---- authentication (docs/broker.md §Authentication) ----------------------------------------

  broker.preConnect = (client, packet, callback) => {
    connectInfo.set(client, { clientId: packet.clientId ?? '', clean: packet.clean !== false });
    callback(null, true);
  };

  const refuse = (outcome: string, returnCode: number, message: string, done: (e: AuthenticateError | null, ok: boolean | null) => void, fields: Record<string, unknown> = {}) => {
    metrics.connects.inc({ outcome });
    log.info('connect refused', { outcome, returnCode, ...fields });
    done(authError(returnCode, `${outcome}: ${message}`), false);
  };

  /** Register an authenticated session; false when the connection already went away meanwhile. */
  const addSession = (client: Client, p: Principal): boolean => {
    // The directory lookup is asynchronous: a connection closed in the meantime would never fire
    // 'close' again and would leak its entry.
    if (client.closed || (client.conn as Duplex).destroyed) return false;
    principals.set(client, p);
    sessionCount++;
    metrics.sessions.inc({ kind: p.kind });
    if (p.kind === 'device') {
      let set = sessionsByKey.get(p.keyId);
      if (set === undefined) sessionsByKey.set(p.keyId, (set = new Set()));
      set.add(client);
      sessionReports.connected(client, p.deviceId);
    }
    client.conn.once('close', () => {
      sessionCount--;
      metrics.sessions.dec({ kind: p.kind });
      if (p.kind === 'device') {
        sessionReports.disconnected(client);
        const set = sessionsByKey.get(p.keyId);
        set?.delete(client);
        if (set?.size === 0) sessionsByKey.delete(p.keyId);
      }
    });
    return true;
  };

  broker.authenticate = (client, username, password, done) => {
    void (async () => {
      const info = connectInfo.get(client) ?? { clientId: '', clean: true };
      if (closing) return refuse('shutting_down', CONNACK.SERVER_UNAVAILABLE, 'broker is shutting down', done);
      // MQTT-3.1.3-8: a zero-length client id requires clean session = 1.
      if (info.clientId === '' && !info.clean) {
        violation('empty_client_id');
        return refuse('empty_client_id', CONNACK.IDENTIFIER_REJECTED, 'an empty client id needs clean session (MQTT-3.1.3-8)', done);
      }
      const service = username === undefined ? undefined : config.serviceAccounts.get(username);
      if (service !== undefined && username !== undefined) {
        const pw = password === undefined ? '' : Buffer.from(password).toString('utf8');
        if (!safeEqual(pw, service)) return refuse('SERVICE_BAD_CREDENTIALS', CONNACK.BAD_USERNAME_OR_PASSWORD, 'wrong service account password', done, { username });
        // A service account must not take over a device's session (Aedes closes the older
        // session with the same client id), so device-shaped client ids are refused.
        if (isDeviceId(info.clientId)) return refuse('TOKEN_BAD_CLIENT_ID', CONNACK.IDENTIFIER_REJECTED, 'a service account cannot use a device id as client id', done, { username });
        if (!addSession(client, { kind: 'service', username })) return refuse('connection_closed', CONNACK.SERVER_UNAVAILABLE, 'connection closed during authentication', done);
        metrics.connects.inc({ outcome: 'accepted' });
        log.debug('service account connected', { username, clientId: client.id });
        return done(null, true);
      }
      // Device: client id = username = device key id, password = connect token (docs/protocol.md §Connect token).
      const verified = verifyConnectToken({ clientId: info.clientId, username, password }, { verifier, networkId: config.networkId, now: now(), skewMs: config.skewMs });
      if (!verified.ok) {
        const rc = verified.code === 'TOKEN_BAD_CLIENT_ID' ? CONNACK.IDENTIFIER_REJECTED : CONNACK.BAD_USERNAME_OR_PASSWORD;
        return refuse(verified.code, rc, verified.message, done, { clientId: info.clientId.slice(0, 80) });
      }
      const keyId = verified.value.deviceId;
      try {
        const entry = await directory.lookup(keyId);
        if (entry === undefined) return refuse('TOKEN_UNKNOWN_DEVICE', CONNACK.NOT_AUTHORIZED, 'device is not registered', done, { keyId });
        if (entry.status !== 'active') return refuse('TOKEN_REVOKED_DEVICE', CONNACK.NOT_AUTHORIZED, `device key is ${entry.status}`, done, { keyId });
        // Cross-broker replay protection: the directory accepts each token timestamp once per key.
        if (!(await deps.directory.acceptToken(keyId, verified.value.timestamp)))
          return refuse('TOKEN_STALE', CONNACK.BAD_USERNAME_OR_PASSWORD, 'token is not newer than the last one accepted', done, { keyId });
        if (closing) return refuse('shutting_down', CONNACK.SERVER_UNAVAILABLE, 'broker is shutting down', done);
        if (!addSession(client, { kind: 'device', keyId, deviceId: entry.deviceId }))
          return refuse('connection_closed', CONNACK.SERVER_UNAVAILABLE, 'connection closed during authentication', done, { keyId });
        metrics.connects.inc({ outcome: 'accepted' });
        log.debug('device connected', { keyId, deviceId: entry.deviceId });
        done(null, true);
      } catch (e) {
        log.warn('device directory unavailable', { keyId, error: e });
        refuse('directory_unavailable', CONNACK.SERVER_UNAVAILABLE, 'device directory unavailable', done, { keyId });
      }
    })();
  };

  // ---- authorization (docs/broker.md §Authorization) ------------------------------------------

  broker.authorizeSubscribe = (client, sub: Subscription, callback) => {
    const p = principals.get(client);
    if (p !== undefined && maySubscribe(p, sub.topic)) return callback(null, sub);
    violation('acl_subscribe', { clientId: client.id, topic: sub.topic.slice(0, 200) });
    // Negated: SUBACK 0x80 for this filter (MQTT-3.9.3), the session stays up.
    callback(null, null);
  };

  broker.authorizeForward = (client, packet: AedesPublishPacket) => {
    const p = principals.get(client);
    return p !== undefined && mayReceive(p, packet.topic) ? packet : null;
  };

  // ---- publish path: limits, edge verification, hand-off (docs/broker.md §Heartbeats) ----------

  /**
   * Tell the device why, on devices/<id>/events; `then` runs once Aedes has handed the event to the
   * subscribers. The caller acknowledges the rejected PUBLISH only then, so the event is written to
   * the device's socket before the PUBACK: a device (device-sim/sim-device.ts) that sees a PUBACK
   * with no event before it may take the heartbeat as accepted.
   */
  const notifyRejected = (keyId: string, seq: bigint | undefined, reason: HeartbeatCode, message: string, then: () => void) => {
    // seq as a JSON number while exact (2^53 − 1 heartbeats is beyond any device lifetime), else a string.
    const seqJson = seq === undefined ? null : seq <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(seq) : seq.toString();
    const payload = Buffer.from(JSON.stringify({ seq: seqJson, status: 'rejected', reason, message }));
    broker.publish({ cmd: 'publish', topic: eventsTopic(keyId), payload, qos: 1, retain: false, dup: false } as PublishPacket, () => then());
  };

  const handoff = async (message: BusHeartbeat, client: Client): Promise<boolean> => {
    inFlight++;
    metrics.inflight.inc();
    const started = performance.now();
    let delay = 50;
    try {
      for (;;) {
        try {
          await publisher.publish(message);
          if (!busUp) {
            busUp = true;
            metrics.busUp.set(1);
            log.info('bus is accepting again');
          }
          // observe() rather than startTimer(): no closure and no hrtime tuple per heartbeat.
          metrics.handoff.observe((performance.now() - started) / 1000);
          return true;
        } catch (e) {
          metrics.busErrors.inc();
          if (busUp) {
            busUp = false;
            metrics.busUp.set(0);
            log.warn('bus publish failed; holding PUBACKs and retrying', { error: e });
          }
          // Not acknowledged, not dropped: the device keeps the heartbeat and resends it after
          // reconnecting (MQTT-4.4.0-1), and JetStream's duplicate window drops any copy that did land.
          if (client.closed || hardClosing) return false;
          await sleep(delay);
          delay = Math.min(delay * 2, 2_000);
        }
      }
    } finally {
      inFlight--;
      metrics.inflight.dec();
      if (inFlight === 0) for (const w of drainWaiters) w();
    }
  };

  /**
   * Reject one heartbeat: counted, explained on the device's events topic, then PUBACKed but forwarded
   * to nobody. One function for every reason, not a closure per PUBLISH: under tsx each named closure
   * also costs an Object.defineProperty (esbuild keepNames) on the hot path.
   */
  const rejectHeartbeat = (keyId: string, packet: PublishPacket, callback: (error: Error | null) => void, code: HeartbeatCode, message: string, seq: bigint | undefined) => {
    metrics.rejected.inc({ reason: code });
    log.debug('heartbeat rejected', { keyId, seq, reason: code, message });
    packet.topic = REJECTED_TOPIC; // PUBACKed (the device must not resend it) but forwarded to nobody
    notifyRejected(keyId, seq, code, message, () => callback(null));
  };

  /** A verified heartbeat: durably on the bus, then the callback lets Aedes send the PUBACK. */
  const acceptHeartbeat = async (client: Client, payload: Buffer, hb: Heartbeat, receivedAt: number, callback: (error: Error | null) => void) => {
    const delivered = await handoff({ deviceId: hb.deviceId, seq: hb.seq, raw: payload, receivedAt }, client);
    if (!delivered) return callback(new Error('bus unavailable; connection closed before the hand-off completed'));
    metrics.accepted.inc();
    callback(null);
  };

  broker.authorizePublish = (client, packet, callback) => {
    // client is null only for a Will left behind by a departed broker process: never published.
    if (client === null) return callback(new Error('no session'));
    const p = principals.get(client);
    if (p === undefined) return callback(new Error('no session'));
    metrics.received.inc();
    if (closing) {
      // Disconnect without PUBACK: the device resends to another broker instance.
      violation('shutting_down', { clientId: client.id });
      return callback(new Error('broker is shutting down'));
    }
    if (!mayPublish(p, packet.topic)) {
      // MQTT 3.1.1 has no negative PUBACK: an unauthorized PUBLISH closes the connection (MQTT-3.3.5-2).
      violation('acl_publish', { clientId: client.id, topic: packet.topic.slice(0, 200) });
      return callback(new Error('not authorized to publish to this topic'));
    }
    if (p.kind !== 'device') return callback(new Error('read-only account'));
    packet.retain = false; // heartbeats are never retained
    const payload = packet.payload as Buffer;
    const keyId = p.keyId;
    // Both limits run before any decoding or signature check (a flood must stay cheap); their events
    // still name the heartbeat when its seq can be read at its fixed offset (broker/peek-seq.ts).
    if (payload.length > config.maxPayload) return rejectHeartbeat(keyId, packet, callback, 'HB_OVERSIZED', `payload is ${payload.length} bytes; the limit is ${config.maxPayload}`, peekSeq(payload));
    if (!publishLimiter.take(keyId)) return rejectHeartbeat(keyId, packet, callback, 'HB_RATE_LIMITED', `more than ${config.publishRate}/s sustained (burst ${config.publishBurst})`, peekSeq(payload));
    const receivedAt = now();
    void checkHeartbeat(payload, { verifier, networkId: config.networkId, keyId, topic: packet.topic, receivedAt, skewMs: config.skewMs }).then(
      (verdict) => (verdict.ok ? acceptHeartbeat(client, payload, verdict.heartbeat, receivedAt, callback) : rejectHeartbeat(keyId, packet, callback, verdict.code, verdict.message, verdict.seq)),
      (e: unknown) => {
        log.error('edge check failed', { error: e });
        callback(new Error('internal error'));
      },
    );
  };

  broker.on('clientError', (client: Client, e: Error) => log.debug('client error', { clientId: client.id, error: e.message }));
  broker.on('connectionError', (_client: Client, e: Error) => log.debug('connection error', { error: e.message }));

  // ---- transports (docs/broker.md §Listeners) ---------------------------------------------------

  const accept = (transport: Connection['transport'], inner: Duplex, remote: string, req?: IncomingMessage): void => {
    if (closing || connections.size >= config.maxConnections) {
      violation(closing ? 'shutting_down' : 'max_connections', { remote });
      inner.destroy();
      return;
    }
    if (!connectLimiter.take(remote)) {
      violation('connect_rate', { remote });
      inner.destroy();
      return;
    }
    guardReads(inner, frameLimit, (v) => violation(v, { remote, transport }));
    connections.add(inner);
    metrics.connections.inc({ transport });
    inner.once('close', () => {
      connections.delete(inner);
      metrics.connections.dec({ transport });
    });
    broker.handle(inner, req);
  };

  const onSocket = (transport: 'tcp' | 'tls') => (socket: Socket) => {
    // Without TCP_NODELAY a QoS 1 round trip waits for Nagle + delayed ACK (~40 ms, DESIGN.md).
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    accept(transport, socket, socket.remoteAddress ?? 'unknown');
  };

  const servers: NetServer[] = [];
  const wsServers: WebSocketServer[] = [];
  const addresses: { mqtt?: ListenAddress; ws?: ListenAddress; tls?: ListenAddress; wss?: ListenAddress; metrics?: ListenAddress } = {};

  const attachWs = (http: HttpServer, transport: 'ws' | 'wss') => {
    const wss = new WebSocketServer({
      server: http,
      maxPayload: frameLimit + 16,
      // MQTT over WebSocket uses the "mqtt" subprotocol (MQTT 3.1.1 §6); pick it when offered.
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
    });
    wss.on('connection', (ws, req) => {
      req.socket.setNoDelay(true);
      const stream = createWebSocketStream(ws);
      stream.on('error', () => undefined);
      accept(transport, stream, req.socket.remoteAddress ?? 'unknown', req);
    });
    wss.on('error', () => undefined);
    wsServers.push(wss);
  };

  const tlsOptions = config.tlsCert !== '' && config.tlsKey !== '' ? { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) } : undefined;

  const http = createHttpServer((req, res) => {
    void (async () => {
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(await metrics.registry.metrics());
      } else if (req.url === '/health') {
        const h = health();
        res.writeHead(h.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
        res.end(JSON.stringify(h));
      } else {
        res.writeHead(404).end();
      }
    })().catch(() => res.destroy());
  });

  const health = (): BrokerHealth => ({
    status: closing ? 'closing' : busUp ? 'ok' : 'bus_down',
    connections: connections.size,
    sessions: sessionCount,
    inFlight,
    busUp,
  });

  try {
    if (config.mqttPort !== undefined) {
      const s = createNetServer({ noDelay: true }, onSocket('tcp'));
      servers.push(s);
      addresses.mqtt = await listen(s, config.mqttPort, config.mqttHost, 'mqtt-port');
    }
    if (config.wsPort !== undefined) {
      const s = createHttpServer((_req, res) => res.writeHead(426, { upgrade: 'websocket' }).end('MQTT over WebSocket: connect with subprotocol "mqtt"\n'));
      servers.push(s);
      attachWs(s, 'ws');
      addresses.ws = await listen(s, config.wsPort, config.wsHost, 'ws-port');
    }
    if (tlsOptions !== undefined && config.tlsPort !== undefined) {
      const s = createTlsServer(tlsOptions, onSocket('tls'));
      servers.push(s);
      addresses.tls = await listen(s, config.tlsPort, config.mqttHost, 'tls-port');
    }
    if (tlsOptions !== undefined && config.wssPort !== undefined) {
      const s = createHttpsServer(tlsOptions, (_req, res) => res.writeHead(426, { upgrade: 'websocket' }).end());
      servers.push(s);
      attachWs(s, 'wss');
      addresses.wss = await listen(s, config.wssPort, config.wsHost, 'wss-port');
    }
    if (config.metricsPort !== undefined) {
      servers.push(http);
      addresses.metrics = await listen(http, config.metricsPort, config.metricsHost, 'metrics-port');
    }
    await directory.poll();
  } catch (e) {
    for (const s of servers) s.close();
    await new Promise<void>((r) => broker.close(() => r()));
    await sessionReports.close(0);
    await publisher.close().catch(() => undefined);
    throw e;
  }

  // ---- directory changes: close sessions of revoked / rotated-away keys --------------------------

  let polling = false;
  const pollChanges = async () => {
    if (polling || closing) return;
    polling = true;
    try {
      for (const keyId of await directory.poll()) {
        const live = sessionsByKey.get(keyId);
        if (live === undefined || live.size === 0) continue;
        const entry = await directory.fetch(keyId);
        if (entry !== undefined && entry.status === 'active') continue;
        for (const client of [...live]) {
          violation('revoked_session_closed', { keyId, status: entry?.status ?? 'unknown' });
          client.close();
        }
      }
    } catch (e) {
      log.warn('device directory poll failed', { error: e });
    } finally {
      polling = false;
    }
  };
  const pollTimer = setInterval(() => void pollChanges(), Math.max(100, config.directoryTtlMs));
  pollTimer.unref();
  const pruneTimer = setInterval(() => {
    publishLimiter.prune();
    connectLimiter.prune();
  }, 60_000);
  pruneTimer.unref();
  sessionReports.start();

  log.info('broker listening', { id: broker.id, ...Object.fromEntries(Object.entries(addresses).map(([k, a]) => [k, `${a.host}:${a.port}`])) });

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      clearInterval(pollTimer);
      clearInterval(pruneTimer);
      for (const s of servers) if (s !== http) s.close();
      // Drain: hand-offs already running finish (their PUBACKs go out); new PUBLISHes are refused.
      if (inFlight > 0) {
        log.info('draining in-flight hand-offs', { inFlight });
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, config.shutdownGraceMs);
          function done() {
            clearTimeout(t);
            drainWaiters.delete(done);
            resolve();
          }
          drainWaiters.add(done);
        });
      }
      hardClosing = true;
      // Let the last PUBACKs reach the sockets before Aedes closes them.
      await new Promise<void>((r) => setImmediate(r));
      await new Promise<void>((r) => broker.close(() => r()));
      for (const c of connections) c.destroy();
      for (const w of wsServers) w.close();
      if (servers.includes(http)) await new Promise<void>((r) => http.close(() => r()));
      http.closeAllConnections();
      // The last window: every session ends now; the bus gets up to the shutdown grace to take it.
      await sessionReports.close(config.shutdownGraceMs);
      await publisher.close().catch(() => undefined);
      log.info('broker closed', { id: broker.id, inFlight });
    })();
    return closed;
  };

  return { id: broker.id, addresses, metrics, health, close };
}
