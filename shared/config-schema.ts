// Config parsed once into a typed, frozen object (house style). Each component declares its keys
// with `defineConfig`; every key has a flag, an environment variable, a default and a doc line, and
// docs/configuration.md is generated from these declarations (scripts/gen-config-docs.ts), so the
// reference cannot drift from the code.
import { PulseError } from './errors.ts';

type Parser<T> = (raw: string) => T;

export type KeySpec<T> = {
  /** Environment variable, e.g. PULSE_MQTT_PORT. */
  readonly env: string;
  /** Command-line flag without dashes, e.g. mqtt-port. */
  readonly flag: string;
  readonly default: T;
  readonly doc: string;
  readonly parse: Parser<T>;
  /** Shown instead of the default in docs (e.g. for secrets or computed defaults). */
  readonly defaultDoc?: string;
};

export type Schema = Record<string, KeySpec<unknown>>;
export type ConfigOf<S extends Schema> = { readonly [K in keyof S]: S[K] extends KeySpec<infer T> ? T : never };

export type ConfigSection = { readonly title: string; readonly schema: Schema };

export function defineConfig<S extends Schema>(title: string, schema: S): { readonly title: string; readonly schema: S } {
  return { title, schema };
}

/**
 * Resolve a config: flag beats environment beats default. Throws PulseError CONFIG_INVALID naming
 * the flag and variable when a value does not parse.
 */
export function loadConfig<S extends Schema>(
  section: { readonly schema: S },
  flags: Readonly<Record<string, string | undefined>> = {},
  env: Readonly<Record<string, string | undefined>> = process.env,
): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(section.schema)) {
    const raw = flags[spec.flag] ?? env[spec.env];
    if (raw === undefined || raw === '') {
      out[key] = spec.default;
      continue;
    }
    try {
      out[key] = spec.parse(raw);
    } catch (e) {
      throw new PulseError('CONFIG_INVALID', `--${spec.flag} / ${spec.env} = ${JSON.stringify(raw)}: ${(e as Error).message}`);
    }
  }
  return Object.freeze(out) as ConfigOf<S>;
}

// Parsers shared by every schema.
export const parse = {
  string: (raw: string): string => raw,
  int: (min: number, max: number) => (raw: string): number => {
    if (!/^-?\d+$/.test(raw)) throw new Error('not an integer');
    const n = Number(raw);
    if (n < min || n > max) throw new Error(`must be ${min} … ${max}`);
    return n;
  },
  port: (raw: string): number => parse.int(0, 65535)(raw),
  bool: (raw: string): boolean => {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    throw new Error('expected true or false');
  },
  /** Durations: 500ms, 30s, 5m, 1h, or plain milliseconds. */
  durationMs: (raw: string): number => {
    const m = /^(\d+)(ms|s|m|h)?$/.exec(raw);
    if (!m) throw new Error('expected a duration such as 500ms, 30s, 5m or 1h');
    const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
    return Number(m[1]) * mult;
  },
  list: (raw: string): string[] => raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0),
};
