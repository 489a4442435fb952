import { z } from 'zod';
import { activateBody, approveBody, challengeView, denyBody, deviceView, errorView } from './schemas.ts';
import { HEADERS, SIGNATURE_VERSION, ACTIVATION_DEVICE_ID } from './signature.ts';

const json = (schema: z.ZodType) => ({ 'application/json': { schema: z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) } });
const errors = { description: 'Error', content: json(errorView) };
const signed = [{ deviceSignature: [] }];

/** The device protocol as OpenAPI 3.1, served at /device/openapi.json for native app implementers. */
export function deviceOpenApi(issuer: string) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Vigie device protocol',
      version: '1',
      description: [
        'Every request is signed by the device key (ECDSA P-256, SHA-256, IEEE P1363 r||s, base64url) over the string',
        `\`${SIGNATURE_VERSION}\\nMETHOD\\nPATH?QUERY\\nTIMESTAMP_MS\\nNONCE\\nDEVICE_ID\\nBASE64URL(SHA-256(BODY))\`,`,
        `sent as headers ${Object.values(HEADERS).join(', ')}. Timestamps outside the window and reused nonces are rejected.`,
        `Activation is signed by the new key itself, with device id \`${ACTIVATION_DEVICE_ID}\`.`,
      ].join(' '),
    },
    servers: [{ url: `${issuer}/device/v1` }],
    components: {
      securitySchemes: {
        deviceSignature: { type: 'apiKey', in: 'header', name: HEADERS.signature, description: 'See info.description.' },
      },
    },
    paths: {
      '/activate': {
        post: { summary: 'Register this device with an activation code, its public key and a PIN', security: signed, requestBody: { required: true, content: json(activateBody) }, responses: { '201': { description: 'Activated', content: json(deviceView) }, '4XX': errors } },
      },
      '/me': {
        get: { summary: 'This device', security: signed, responses: { '200': { description: 'The device', content: json(deviceView) }, '4XX': errors } },
        delete: { summary: 'Delete this device ("Supprimer ma e-CPS")', security: signed, responses: { '204': { description: 'Deleted' }, '4XX': errors } },
      },
      '/challenges': {
        get: { summary: 'Pending requests addressed to this professional (pull)', security: signed, responses: { '200': { description: 'Pending requests', content: json(z.object({ challenges: z.array(challengeView) })) }, '4XX': errors } },
      },
      '/challenges/{id}': {
        get: { summary: 'One pending request with its context and candidate codes', security: signed, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'The request', content: json(challengeView) }, '4XX': errors } },
      },
      '/challenges/{id}/approve': {
        post: { summary: 'Approve with the code shown on the login page and the PIN', security: signed, requestBody: { required: true, content: json(approveBody) }, responses: { '200': { description: 'Approved', content: json(z.object({ state: z.literal('approved') })) }, '4XX': errors } },
      },
      '/challenges/{id}/deny': {
        post: { summary: 'Refuse, or report that the request was not made by the user', security: signed, requestBody: { required: true, content: json(denyBody) }, responses: { '200': { description: 'Denied', content: json(z.object({ state: z.literal('denied') })) }, '4XX': errors } },
      },
    },
  };
}
