import { z } from 'zod';

/** Device protocol bodies of the defence calls (defence/routes.ts); the OpenAPI document is generated from these. */
/** Body of PUT /device/v1/notification-settings: either field may be left out to keep it. */
export const notificationSettingsBody = z.object({
  pushEnabled: z.boolean().optional().describe('false: no push at all; requests stay visible when the app is opened'),
  quietUntil: z.number().int().nullable().optional().describe('epoch ms: no push before this time ("je ne me connecte pas avant le …"); null ends it'),
}).strict();

export const notificationSettingsView = z.object({
  pushEnabled: z.boolean(),
  quietUntil: z.number().nullable(),
  updatedAt: z.number().nullable(),
});

export const attackSummaryQuery = z.object({ days: z.coerce.number().int().min(1).max(90).default(7) }).strict();

export const attackSummaryView = z.object({
  since: z.number(),
  days: z.number(),
  blocked: z.number().describe('requests from unknown browsers not notified (silent) or refused'),
  notified: z.number().describe('requests from unknown browsers that were notified'),
  reports: z.number().describe('"not me" answers and wrong codes'),
  places: z.array(z.object({ place: z.string().nullable(), count: z.number(), lastAt: z.number() })),
  lastAt: z.number().nullable(),
  message: z.string().describe('French sentence for the app, e.g. "7 demandes bloquées depuis Lyon, la dernière à 14:02"'),
});
