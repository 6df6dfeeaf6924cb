// Prometheus metrics of one broker instance, in its own prom-client Registry (never the global one,
// CONTRIBUTING.md §Rules), so two brokers in one process (tests, horizontal-scale checks) do not mix.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type BrokerMetrics = ReturnType<typeof createBrokerMetrics>;

export function createBrokerMetrics(options: { readonly processMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'pulse_broker_' });
  const registers = [registry];
  return {
    registry,
    connections: new Gauge({ name: 'pulse_broker_connections', help: 'Open client connections by transport.', labelNames: ['transport'] as const, registers }),
    sessions: new Gauge({ name: 'pulse_broker_sessions', help: 'Authenticated MQTT sessions by kind (device, service).', labelNames: ['kind'] as const, registers }),
    connects: new Counter({ name: 'pulse_broker_connects_total', help: 'MQTT CONNECT attempts by outcome: accepted, or the reason code of the refusal.', labelNames: ['outcome'] as const, registers }),
    received: new Counter({ name: 'pulse_broker_messages_received_total', help: 'PUBLISH packets received from clients.', registers }),
    accepted: new Counter({ name: 'pulse_broker_messages_accepted_total', help: 'Heartbeats verified and durably handed to the bus.', registers }),
    rejected: new Counter({ name: 'pulse_broker_messages_rejected_total', help: 'Heartbeats rejected at the edge, by reason code (docs/errors.md).', labelNames: ['reason'] as const, registers }),
    violations: new Counter({ name: 'pulse_broker_violations_total', help: 'Limit and authorization violations by reason (docs/broker.md §Limits).', labelNames: ['reason'] as const, registers }),
    handoff: new Histogram({
      name: 'pulse_broker_bus_handoff_seconds',
      help: 'Time from receiving a heartbeat to the bus confirming it durably (includes retries while the bus is down).',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    busErrors: new Counter({ name: 'pulse_broker_bus_errors_total', help: 'Failed bus publish attempts (retried until the bus accepts or the client goes away).', registers }),
    inflight: new Gauge({ name: 'pulse_broker_handoffs_in_flight', help: 'Heartbeats waiting for the bus to confirm them.', registers }),
    busUp: new Gauge({ name: 'pulse_broker_bus_up', help: '1 while the last bus publish succeeded, 0 while the bus is failing.', registers }),
  };
}
