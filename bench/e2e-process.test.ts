// bench/e2e-process.ts: a real `pulse broker` child (devices file, in-memory bus, port 0) is found
// by its log line and stopped gracefully with SIGTERM; a process that exits early fails the wait.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PulseProcess } from './e2e-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'pulse-e2e-process-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('PulseProcess', () => {
  it('waits for a log line, then stops the process with SIGTERM', async () => {
    const devices = join(dir, 'devices.json');
    writeFileSync(devices, '[]');
    const p = new PulseProcess('broker', ['broker', '--devices-file', devices, '--bus', 'memory', '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--ws-port', 'off', '--tls-port', 'off', '--wss-port', 'off', '--metrics-port', 'off']);
    try {
      const m = await p.waitForLog(/"msg":"broker listening".*?"mqtt":"[^"]*:(\d+)"/, 60_000);
      expect(Number(m[1])).toBeGreaterThan(0);
      expect(p.running).toBe(true);
      await p.stop(15_000);
      expect(p.running).toBe(false);
      expect(p.log).toMatch(/exited code=0 signal=null/);
    } finally {
      p.killNow();
    }
  });

  it('rejects the wait when the process exits first', async () => {
    const p = new PulseProcess('broker', ['broker', '--no-such-flag']);
    await expect(p.waitForLog(/"msg":"broker listening"/, 60_000)).rejects.toThrow(/exited before logging/);
  });
});
