/**
 * Runs the demo health service alone:
 *   VIGIE_ISSUER=http://localhost:3000 VIGIE_DEMO_PORT=3001 DEMO_CLIENT_SECRET=... npx node demo-service/main.ts
 * The provider must register the client returned by demoClientMetadata(baseUrl, secret).
 */
import { startDemoService } from './server.ts';

const issuer = process.env.VIGIE_ISSUER ?? 'http://localhost:3000';
const port = Number(process.env.VIGIE_DEMO_PORT ?? 3001);
const clientSecret = process.env.DEMO_CLIENT_SECRET;
if (!clientSecret) {
  console.error('DEMO_CLIENT_SECRET is required (the secret registered for client "demo-sante").');
  process.exit(1);
}

const service = await startDemoService({
  issuer,
  port,
  host: process.env.VIGIE_DEMO_HOST,
  baseUrl: process.env.VIGIE_DEMO_BASE_URL,
  clientId: 'demo-sante',
  clientSecret,
  logger: true,
});
console.log(`Service de santé (démo) sur ${service.url} (fournisseur : ${issuer})`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    service.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
