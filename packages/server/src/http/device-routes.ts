import { TetherError } from '@tether/protocol';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DEVICE_PLATFORMS, type DeviceRecord, type DeviceStore } from '../push/device-store.js';
import type { ApiOperation } from './openapi.js';
import { parseBody } from './validate.js';

/** The body as parsed below; the OpenAPI document (`deviceOperations`) describes this same object. */
export const deviceSchema = z
  .object({
    userId: z.string().min(1).max(256),
    platform: z.enum(DEVICE_PLATFORMS as [string, ...string[]]),
    token: z.string().min(1).max(4096),
  })
  .strict();

const idParam = z.object({ id: z.string().min(1).max(200) });

/** The OpenAPI description of the routes below (`openapi.ts`). */
export const deviceOperations: readonly ApiOperation[] = [
  {
    method: 'post',
    path: '/v1/devices',
    operationId: 'registerDevice',
    summary: "Register a user's push device (used while the user has no live connection)",
    tag: 'devices',
    security: ['apiKey'],
    body: deviceSchema,
    responses: {
      201: {
        description: 'Registered (the push token is never echoed)',
        schema: z.object({
          id: z.string(),
          userId: z.string(),
          platform: z.enum(DEVICE_PLATFORMS as [string, ...string[]]),
          createdAt: z.number().int(),
        }),
      },
    },
    errors: ['API_KEY_INVALID'],
  },
  {
    method: 'delete',
    path: '/v1/devices/{id}',
    operationId: 'removeDevice',
    summary: 'Remove a push device',
    tag: 'devices',
    security: ['apiKey'],
    params: idParam,
    responses: { 204: { description: 'Removed' } },
    errors: ['API_KEY_INVALID', 'NOT_FOUND'],
  },
];

/**
 * `POST /v1/devices` `{userId, platform, token}` → `201 {id, userId, platform, createdAt}` and
 * `DELETE /v1/devices/{id}` → `204`. The API-key check is the `/v1` hook of `registerV1Routes`.
 * Answers never echo the push token: it is a credential of the user's device.
 */
export async function registerDeviceRoutes(app: FastifyInstance, devices: DeviceStore): Promise<void> {
  app.post('/v1/devices', async (request, reply) => {
    const body = parseBody(deviceSchema, request.body);
    const device = await devices.register(body as Pick<DeviceRecord, 'userId' | 'platform' | 'token'>);
    return reply.code(201).send(publicDevice(device));
  });

  app.delete('/v1/devices/:id', async (request, reply) => {
    const { id } = parseBody(idParam, request.params);
    if (!(await devices.remove(id))) throw new TetherError('NOT_FOUND', 'No such device');
    return reply.code(204).send();
  });
}

function publicDevice(device: DeviceRecord): Omit<DeviceRecord, 'token'> {
  return { id: device.id, userId: device.userId, platform: device.platform, createdAt: device.createdAt };
}
