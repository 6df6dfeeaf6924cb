// mqtt.js clients over our own sockets. mqtt.js's TCP builder passes neither `localAddress` nor
// `noDelay`, and the simulator needs both: load mode spreads connections over several 127.0.0.x
// source addresses (each has its own ~28k ephemeral ports), and without TCP_NODELAY every QoS 1
// round trip waits for Nagle + delayed ACK (~40 ms, ../shared/DESIGN.md §Performance anchors).
import { connect as netConnect, isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { MqttClient, type IClientOptions } from 'mqtt';
import { PulseError } from '../shared/errors.ts';

export type BrokerAddress = {
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
};

/** Parse mqtt://host:port or mqtts://host:port (also tcp:// and ssl://). */
export function parseBrokerUrl(url: string): BrokerAddress {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PulseError('CLI_USAGE', `--broker ${JSON.stringify(url)} is not a URL such as mqtt://127.0.0.1:1883`);
  }
  const tls = u.protocol === 'mqtts:' || u.protocol === 'ssl:';
  if (!tls && u.protocol !== 'mqtt:' && u.protocol !== 'tcp:') throw new PulseError('CLI_USAGE', `--broker: unsupported scheme ${u.protocol} (use mqtt:// or mqtts://)`);
  const port = u.port === '' ? (tls ? 8883 : 1883) : Number(u.port);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return { tls, host, port };
}

export type TransportOptions = {
  /** Source address for the socket (load mode: 127.0.0.x). */
  readonly localAddress?: string;
  /** TLS: verify the broker certificate (default true); `ca` adds trusted roots (PEM). */
  readonly rejectUnauthorized?: boolean;
  readonly ca?: string | Buffer;
};

/** A not-yet-connected client: call `.connect()` to open it (mqtt.js then reconnects by itself). */
export function createClient(broker: BrokerAddress, options: IClientOptions, transport: TransportOptions = {}): MqttClient {
  const build = () => {
    const common = { host: broker.host, port: broker.port, ...(transport.localAddress !== undefined ? { localAddress: transport.localAddress } : {}) };
    const socket = broker.tls
      ? tlsConnect({
          ...common,
          // SNI carries host names only (RFC 6066 §3); an IP literal is verified against the SAN.
          ...(isIP(broker.host) === 0 ? { servername: broker.host } : {}),
          rejectUnauthorized: transport.rejectUnauthorized ?? true,
          ...(transport.ca !== undefined ? { ca: transport.ca } : {}),
        })
      : netConnect(common);
    socket.setNoDelay(true);
    return socket;
  };
  return new MqttClient(build, { ...options, manualConnect: true });
}
