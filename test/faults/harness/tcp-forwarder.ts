// A small TCP front end for the fault suite: forwards each new connection to the first backend that
// accepts it (in round-robin order), the way a TCP load balancer sits in front of several brokers
// (scenario 1: devices reconnect to the other broker through the same address). `cut()` drops every
// live connection and refuses new ones (a network cut between a client and a service, e.g. the chain
// RPC in scenario 7), `heal()` lets them through again.
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export type Backend = { host: string; port: number };

export class TcpForwarder {
  private readonly live = new Set<Socket>();
  private down = false;
  private next = 0;
  private constructor(
    private readonly server: Server,
    readonly port: number,
    private backends: Backend[],
  ) {}

  static async start(backends: Backend[]): Promise<TcpForwarder> {
    const holder: { self?: TcpForwarder } = {};
    const server = createServer({ noDelay: true }, (client) => {
      if (holder.self === undefined) client.destroy();
      else holder.self.accept(client);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    holder.self = new TcpForwarder(server, (server.address() as AddressInfo).port, backends);
    return holder.self;
  }

  get url(): string {
    return `127.0.0.1:${this.port}`;
  }

  setBackends(backends: Backend[]): void {
    this.backends = backends;
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.down || this.backends.length === 0) return void client.destroy();
    client.pause();
    const order = this.backends.map((_, i) => this.backends[(this.next + i) % this.backends.length]!);
    this.next = (this.next + 1) % Math.max(1, this.backends.length);
    const tryNext = (i: number) => {
      const b = order[i];
      if (b === undefined || this.down) return void client.destroy();
      const up = netConnect({ host: b.host, port: b.port });
      up.setNoDelay(true);
      up.once('error', () => {
        up.destroy();
        tryNext(i + 1); // a dead broker refuses: try the next one
      });
      up.once('connect', () => {
        up.removeAllListeners('error');
        this.live.add(client).add(up);
        const end = () => {
          client.destroy();
          up.destroy();
          this.live.delete(client);
          this.live.delete(up);
        };
        client.on('close', end);
        up.on('error', end).on('close', end);
        client.pipe(up).pipe(client);
        client.resume();
      });
    };
    tryNext(0);
  }

  cut(): void {
    this.down = true;
    for (const s of this.live) s.destroy();
    this.live.clear();
  }

  heal(): void {
    this.down = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
