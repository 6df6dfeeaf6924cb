// The common end of every scenario: A1 must hold, with the auditor's evidence in the failure message
// (the first missing heartbeats and the last lines of every process log).
import { expect } from 'vitest';
import { a1Holds, type A1Report } from '../auditor.ts';
import type { PulseStack } from './pulse-stack.ts';

export async function expectA1(name: string, report: A1Report, stack: PulseStack): Promise<void> {
  const summary = {
    acknowledged: report.acknowledged,
    stored: report.stored,
    missing: report.missing.length,
    firstMissing: report.missing.slice(0, 10),
    mismatched: report.mismatched.length,
    rollupErrors: report.rollupErrors.slice(0, 10),
    duplicatesRecorded: report.duplicatesRecorded,
  };
  if (!a1Holds(report)) {
    Object.assign(summary, { missingInJetStream: await stack.inStream(report.missing).catch((e: unknown) => (e as Error).message) });
    // Keep the evidence: the process logs and the stack are gone once the scenario ends.
    await stack.evidence(name, summary).catch(() => undefined);
  }
  expect(summary.missing, `A1 ${name}: acknowledged heartbeats not stored (evidence in $PULSE_FAULTS_ARTIFACTS or /tmp/pulse-faults-artifacts)\n${JSON.stringify(summary, null, 1)}\n${stack.logs()}`).toBe(0);
  expect(summary.mismatched, `A1 ${name}: stored bytes differ from what the device signed`).toBe(0);
  expect(summary.rollupErrors, `A1 ${name}: rollups differ from the stored heartbeats (credited twice?)`).toEqual([]);
  expect(report.acknowledged).toBeGreaterThan(0);
  expect(report.stored).toBe(report.acknowledged);
  console.log(`${name}: A1 holds: ${report.acknowledged} acknowledged heartbeats stored exactly once (${report.duplicatesRecorded} redeliveries caught as HB_DUPLICATE)`);
}
