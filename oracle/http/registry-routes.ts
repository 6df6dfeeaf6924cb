// Registry endpoints (issue 4 §Registry): operator writes need the operator token; onboarding,
// transfer and rotation are authorised by the device's own signature instead.
import type { Registry, RegistryCode } from '../registry/registry.ts';
import { statusForCode } from '../registry/registry.ts';
import type { Result } from '../../shared/result.ts';
import { errorResponse, type ApiResponse, type Handler, type Router } from './router.ts';
import { isDeviceId } from '../../shared/protocol/device-id.ts';

function reply<T>(r: Result<T, RegistryCode>, okStatus = 200): ApiResponse {
  return r.ok ? { status: okStatus, body: r.value } : errorResponse(statusForCode(r.code), r.code, r.message);
}

/**
 * @param deviceDocument handler for GET /api/devices/:id when the operator surface serves the full
 * device document (registry record + health, oracle/api/operator-api.ts deviceStatusHandler); the
 * plain registry record otherwise.
 */
export function addRegistryRoutes(router: Router, registry: Registry, deviceDocument?: Handler): void {
  router.add('POST', '/api/makers', async (req) => {
    const r = await registry.addMaker({ publicKey: req.body['publicKey'], name: req.body['name'] });
    return reply(r, r.ok && r.value.created ? 201 : 200);
  }, { auth: 'operator' });

  router.add('POST', '/api/devices', async (req) =>
    reply(await registry.addDevice({ id: req.body['id'], owner: req.body['owner'], maker: req.body['maker'], model: req.body['model'] }), 201),
  { auth: 'operator' });

  router.add('GET', '/api/devices/:id', deviceDocument ?? (async (req) => {
    const id = req.params['id']!;
    if (!isDeviceId(id)) return errorResponse(400, 'REG_BAD_INPUT', 'device id must be 64 lowercase hex characters');
    const d = await registry.getDevice(id);
    return d === undefined ? errorResponse(404, 'REG_UNKNOWN_DEVICE', `no device ${id}`) : { status: 200, body: d };
  }));

  router.add('POST', '/api/onboard', async (req) => reply(await registry.onboard({ certificate: req.body['certificate'], binding: req.body['binding'] }), 201));

  router.add('POST', '/api/devices/:id/transfer', async (req) => reply(await registry.transfer(req.params['id']!, { message: req.body['message'] })));

  router.add('POST', '/api/devices/:id/rotate', async (req) => reply(await registry.rotate(req.params['id']!, { message: req.body['message'] })));

  router.add('POST', '/api/devices/:id/revoke', async (req) => reply(await registry.revoke(req.params['id']!)), { auth: 'operator' });
}
