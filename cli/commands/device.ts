// `pulse device`: operator registry commands (docs/storage.md §Registry). Two modes: through the
// oracle API (--api URL with the operator token; what an operator uses against a running oracle),
// or directly on the database (--database-url / --data-dir; for bootstrapping and scripts).
import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { usageErrors } from './hb.ts';
import { PulseError } from '../../shared/errors.ts';
import { loadOracleConfig } from '../../oracle/config.ts';
import type { Registry } from '../../oracle/registry/registry.ts';
import type { Result } from '../../shared/result.ts';

export const summary = 'Device registry: add, show or revoke devices, add trusted makers (via the API or the database)';

const HELP = `Usage:
  pulse device add --id HEX [--owner 0xADDR] [--maker HEX] [--model TEXT] [mode]
  pulse device show --id HEX [mode]
  pulse device revoke --id HEX [mode]
  pulse device add-maker --key HEX --name TEXT [mode]

Mode (one of):
  --api URL --token TOKEN   call a running oracle (token also from PULSE_OPERATOR_TOKEN)
  --database-url URL        write the PostgreSQL database directly [DATABASE_URL]
  --data-dir DIR            write the embedded PGlite database directly [PULSE_DATA_DIR]
  --network-id N            network for signed messages in database mode [PULSE_NETWORK_ID]

Prints the device (or maker) as JSON. A refused request prints its reason code and exits 1.`;

type Reply = { status: number; body: unknown };

async function callApi(api: string, token: string, method: string, path: string, body?: unknown): Promise<Reply> {
  let res: Response;
  try {
    res = await fetch(new URL(path, api), {
      method,
      headers: { 'content-type': 'application/json', ...(token !== '' ? { authorization: `Bearer ${token}` } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (e) {
    throw new PulseError('CLI_INPUT', `cannot reach the oracle API at ${api}: ${(e as Error).message}`);
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: res.status, body: parsed };
}

function print(r: Result<unknown, string>): number {
  if (r.ok) {
    console.log(JSON.stringify(r.value, null, 2));
    return 0;
  }
  console.error(`pulse device: ${r.code}: ${r.message}`);
  return 1;
}

function fromReply(reply: Reply): Result<unknown, string> {
  if (reply.status >= 200 && reply.status < 300) return { ok: true, value: reply.body };
  const e = (reply.body as { error?: { code?: string; message?: string } } | null)?.error;
  return { ok: false, code: e?.code ?? `HTTP_${reply.status}`, message: e?.message ?? String(reply.body) };
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(HELP);
    return sub === undefined ? 2 : 0;
  }
  const { values } = usageErrors(() =>
    parseArgs({
      args: rest,
      options: {
        id: { type: 'string' }, owner: { type: 'string' }, maker: { type: 'string' }, model: { type: 'string' },
        key: { type: 'string' }, name: { type: 'string' },
        api: { type: 'string' }, token: { type: 'string' },
        'database-url': { type: 'string' }, 'data-dir': { type: 'string' }, 'network-id': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }),
  );
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  if (!['add', 'show', 'revoke', 'add-maker'].includes(sub)) throw new PulseError('CLI_USAGE', `unknown subcommand ${JSON.stringify(sub)}; see pulse device --help`);
  const needId = () => {
    if (values.id === undefined) throw new PulseError('CLI_USAGE', '--id HEX is required');
    return values.id;
  };
  if (sub === 'add-maker' && (values.key === undefined || values.name === undefined)) throw new PulseError('CLI_USAGE', '--key HEX and --name TEXT are required');

  if (values.api !== undefined) {
    const token = values.token ?? process.env['PULSE_OPERATOR_TOKEN'] ?? '';
    const api = values.api;
    switch (sub) {
      case 'add':
        return print(fromReply(await callApi(api, token, 'POST', '/api/devices', { id: needId(), owner: values.owner, maker: values.maker, model: values.model })));
      case 'show':
        return print(fromReply(await callApi(api, token, 'GET', `/api/devices/${encodeURIComponent(needId())}`)));
      case 'revoke':
        return print(fromReply(await callApi(api, token, 'POST', `/api/devices/${encodeURIComponent(needId())}/revoke`, {})));
      default:
        return print(fromReply(await callApi(api, token, 'POST', '/api/makers', { publicKey: values.key, name: values.name })));
    }
  }

  const cfg = loadOracleConfig({ 'database-url': values['database-url'], 'data-dir': values['data-dir'], 'network-id': values['network-id'] });
  const { openStore } = await import('../../oracle/store/open-store.ts');
  const { migrate } = await import('../../oracle/store/migrate.ts');
  const { Registry: RegistryClass } = await import('../../oracle/registry/registry.ts');
  if (cfg.databaseUrl === '' && cfg.dataDir !== 'memory://') mkdirSync(cfg.dataDir, { recursive: true });
  const store = await openStore({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, maxConnections: 2 });
  try {
    await migrate(store);
    const registry: Registry = new RegistryClass({ store, networkId: cfg.networkId });
    switch (sub) {
      case 'add':
        return print(await registry.addDevice({ id: needId(), owner: values.owner, maker: values.maker, model: values.model }));
      case 'show': {
        const d = await registry.getDevice(needId());
        return print(d === undefined ? { ok: false, code: 'REG_UNKNOWN_DEVICE', message: `no device ${values.id}` } : { ok: true, value: d });
      }
      case 'revoke':
        return print(await registry.revoke(needId()));
      default:
        return print(await registry.addMaker({ publicKey: values.key, name: values.name }));
    }
  } finally {
    await store.close();
  }
}
