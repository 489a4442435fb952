import { fileURLToPath } from 'node:url';
import type { Vigie } from './server.ts';
import { importContacts, importExtract } from './directory/import.ts';
import { demoClientMetadata, startDemoService, type DemoService } from '../demo-service/server.ts';
import { randomId } from './lib/crypto.ts';
import type { ClientInput } from './oidc/clients.ts';

export const DEMO_EXTRACT = fileURLToPath(new URL('../fixtures/PS_LibreAcces_Personne_activite_202611230000.txt', import.meta.url));
export const DEMO_CONTACTS = fileURLToPath(new URL('../fixtures/demo-contacts.csv', import.meta.url));

/** Loads the shipped demo directory when the directory is empty (development only). */
export async function loadDemoDirectory(vigie: Vigie): Promise<void> {
  const { professionals } = await vigie.directory.count();
  if (professionals > 0) return;
  const extract = await importExtract(DEMO_EXTRACT, vigie.directory);
  const contacts = await importContacts(DEMO_CONTACTS, vigie.directory);
  vigie.logger.info({ professionals: extract.professionals, contacts: contacts.rows }, 'demo directory loaded');
}

/** Registers the demo service as a client (fresh secret each start) and starts it beside the provider. */
export async function startDemo(vigie: Vigie, options: { port: number; host: string }): Promise<DemoService> {
  const baseUrl = `http://localhost:${options.port}`;
  const secret = randomId(32);
  await vigie.clients.put(demoClientMetadata(baseUrl, secret) as ClientInput);
  return startDemoService({ issuer: vigie.config.issuer, port: options.port, host: options.host, baseUrl, clientId: 'demo-sante', clientSecret: secret });
}
