// `pulse broker --help` and `pulse sim --help` list every key of their config declaration
// (broker/config.ts, device-sim/sim-config.ts) with its flag, environment variable, default and doc
// line, through cli/config-args.ts like the other service commands, so the help, the flags the
// command accepts and docs/configuration.md come from one declaration.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConfigSection, KeySpec } from '../shared/config-schema.ts';
import { brokerConfigSection } from '../broker/config.ts';
import { simConfigSection } from '../device-sim/sim-config.ts';

const PULSE = fileURLToPath(new URL('../bin/pulse.js', import.meta.url));

function pulse(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PULSE, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** How a default reads in help: its doc override, a list joined by commas, or the plain value. */
function shownDefault(spec: KeySpec<unknown>): string {
  if (spec.defaultDoc !== undefined) return spec.defaultDoc;
  return Array.isArray(spec.default) ? spec.default.join(',') : String(spec.default);
}

const commands: Array<[string, ConfigSection]> = [
  ['broker', brokerConfigSection],
  ['sim', simConfigSection],
];

describe('service command help lists every config key', () => {
  for (const [command, section] of commands) {
    it(`pulse ${command} --help: every key of "${section.title}" with flag, variable, default and doc`, async () => {
      const { code, stdout } = await pulse([command, '--help']);
      expect(code).toBe(0);
      const lines = stdout.split('\n');
      expect(lines).toContain(`${section.title} (each also an environment variable):`);
      const specs = Object.values(section.schema);
      for (const spec of specs) {
        const line = lines.filter((l) => l.startsWith(`  --${spec.flag} `));
        expect(line, `--${spec.flag}`).toHaveLength(1);
        expect(line[0]!.trim()).toMatch(new RegExp(`^--${spec.flag} +`));
        expect(line[0]!.endsWith(`${spec.doc} [${spec.env}; default ${shownDefault(spec)}]`), `${line[0]}`).toBe(true);
      }
      // Nothing listed that the declaration does not have (a flag the command would refuse).
      const listed = lines.filter((l) => /^ {2}--[a-z]/.test(l)).map((l) => l.trim().split(/\s+/)[0]!.slice(2));
      expect(listed.sort()).toEqual(specs.map((s) => s.flag).sort());
    });

    it(`pulse ${command} refuses an unknown flag with CLI_USAGE (exit 2)`, async () => {
      const { code, stderr } = await pulse([command, '--no-such-flag', 'x']);
      expect(code).toBe(2);
      expect(stderr).toContain(`pulse ${command}: CLI_USAGE`);
    });
  }

  it('pulse sim takes its boolean keys bare (--load) and validates values through the declaration', async () => {
    // --load bare with --devices 0: a load run of nothing, which reports and exits without a broker.
    const dir = await mkdtemp(join(tmpdir(), 'pulse-sim-help-'));
    try {
      const { code, stdout, stderr } = await pulse(['sim', '--load', '--devices', '0', '--broker', 'mqtt://127.0.0.1:1', '--state-dir', dir]);
      expect({ code, stderr: stderr.includes('CLI_USAGE') }).toEqual({ code: 0, stderr: false });
      expect(stdout).toContain('"connections":0');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const bad = await pulse(['sim', '--misbehave-rate', '2']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--misbehave-rate / PULSE_SIM_MISBEHAVE_RATE');
  });
});
