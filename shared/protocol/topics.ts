// MQTT topics of protocol v1 (docs/protocol.md §MQTT). A device publishes heartbeats to
// devices/<deviceId>/heartbeat at QoS 1 and reads its rejections on devices/<deviceId>/events.
import { isDeviceId } from './device-id.ts';

export function heartbeatTopic(deviceId: string): string {
  return `devices/${deviceId}/heartbeat`;
}

export function eventsTopic(deviceId: string): string {
  return `devices/${deviceId}/events`;
}

/** The device id of a heartbeat topic, or undefined when the topic is anything else. */
export function parseHeartbeatTopic(topic: string): string | undefined {
  const parts = topic.split('/');
  if (parts.length !== 3 || parts[0] !== 'devices' || parts[2] !== 'heartbeat') return undefined;
  const id = parts[1]!;
  return isDeviceId(id) ? id : undefined;
}
