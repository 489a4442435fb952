import { z } from 'zod';
import { activateBody, activationCompleteBody, activationStartBody, activationVerifyBody, activationView, approveBody, challengeOutcomeView, challengeView, denyBody, deviceView, errorView, pushKeyView, pushSubscriptionBody } from './schemas.ts';
import { HEADERS, SIGNATURE_VERSION, ACTIVATION_DEVICE_ID } from './signature.ts';
import { attackSummaryView, notificationSettingsBody, notificationSettingsView } from '../defence/schemas.ts';

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
      '/challenges/{id}/outcome': {
        get: { summary: 'Any request addressed to this professional, pending or ended, and whether it may still be reported (what the app shows when a notification is opened after its request was withdrawn or expired)', security: signed, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'The request and how it ended', content: json(challengeOutcomeView) }, '4XX': errors } },
      },
      '/challenges/{id}/approve': {
        post: { summary: 'Approve with the code shown on the login page and the PIN', security: signed, requestBody: { required: true, content: json(approveBody) }, responses: { '200': { description: 'Approved', content: json(z.object({ state: z.literal('approved') })) }, '4XX': errors } },
      },
      '/challenges/{id}/deny': {
        post: { summary: 'Refuse, or report that the request was not made by the user', security: signed, requestBody: { required: true, content: json(denyBody) }, responses: { '200': { description: 'Denied', content: json(z.object({ state: z.literal('denied') })) }, '4XX': errors } },
      },
      // Activation by email + SMS codes (activation-routes.ts). Same answer for every identifier.
      '/activation': {
        post: { summary: 'Start an activation: a 6-digit code is emailed and another texted to the contacts of the directory (unsigned; rate-limited per identifier and per source)', requestBody: { required: true, content: json(activationStartBody) }, responses: { '202': { description: 'Started (whether or not the identifier exists)', content: json(activationView) }, '429': errors, '4XX': errors } },
      },
      '/activation/{flowId}/verify': {
        post: { summary: `Both codes (single use, 5 attempts, 10 minutes); binds the flow to the key that signs, with device id \`${ACTIVATION_DEVICE_ID}\``, security: signed, parameters: [{ name: 'flowId', in: 'path', required: true, schema: { type: 'string' } }], requestBody: { required: true, content: json(activationVerifyBody) }, responses: { '200': { description: 'Verified', content: json(activationView) }, '4XX': errors } },
      },
      '/activation/{flowId}/complete': {
        post: { summary: 'Choose the PIN and register the device, signed by the key that verified the codes; a notice email with a revocation link follows', security: signed, parameters: [{ name: 'flowId', in: 'path', required: true, schema: { type: 'string' } }], requestBody: { required: true, content: json(activationCompleteBody) }, responses: { '201': { description: 'Activated', content: json(deviceView) }, '4XX': errors } },
      },
      // Live delivery (push/routes.ts).
      '/stream': {
        get: { summary: 'Server-Sent Events while the app is open (signed GET): `ready`, `pending` (snapshot), `challenge` (a new request, as in /challenges), `settled` ({ id, state }), `revoked`; ends after 10 minutes, reconnect with a new signature', security: signed, responses: { '200': { description: 'text/event-stream' }, '4XX': errors } },
      },
      '/push/key': {
        get: { summary: 'The VAPID application server key to subscribe to Web Push with', responses: { '200': { description: 'Key', content: json(pushKeyView) } } },
      },
      '/push/subscription': {
        put: { summary: 'Register this device\'s Web Push subscription (https endpoint); pushes carry only { type: "challenge", challengeId }', security: signed, requestBody: { required: true, content: json(pushSubscriptionBody) }, responses: { '204': { description: 'Registered' }, '4XX': errors } },
        delete: { summary: 'Forget this device\'s Web Push subscription', security: signed, responses: { '204': { description: 'Removed' }, '4XX': errors } },
      },
      // Defences (defence/routes.ts).
      '/notification-settings': {
        get: { summary: 'Notification settings: push on/off and quiet period', security: signed, responses: { '200': { description: 'Settings', content: json(notificationSettingsView) }, '4XX': errors } },
        put: { summary: 'Turn push off (logins stay possible by opening the app) or set a quiet period', security: signed, requestBody: { required: true, content: json(notificationSettingsBody) }, responses: { '200': { description: 'Settings', content: json(notificationSettingsView) }, '4XX': errors } },
      },
      '/challenges/{id}/report': {
        post: { summary: 'Report as "not me" a request that ended unanswered (withdrawn by its browser or expired), within 15 minutes of its creation, once: its source is blocked as by a "not me" answer. 409 CHALLENGE_STILL_PENDING (deny it instead), CHALLENGE_NOT_REPORTABLE (it was answered), CHALLENGE_SUPERSEDED (report the newer request of its browser), CHALLENGE_ALREADY_REPORTED; 410 CHALLENGE_REPORT_TOO_LATE', security: signed, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'Reported', content: json(z.object({ id: z.string(), state: z.enum(['cancelled', 'expired']), reported: z.literal(true) })) }, '4XX': errors } },
      },
      '/attack-summary': {
        get: { summary: 'What the defences stopped lately ("7 demandes bloquées depuis Lyon, la dernière à 14:02")', security: signed, parameters: [{ name: 'days', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 90, default: 7 } }], responses: { '200': { description: 'Summary', content: json(attackSummaryView) }, '4XX': errors } },
      },
    },
  };
}
