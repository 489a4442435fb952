import { loadConfig } from './config/index.ts';
import { createVigie } from './server.ts';
import { loadDemoDirectory, startDemo } from './demo.ts';

/** `npm start`: validated configuration, stores, provider; in development the demo service too. */
async function main(): Promise<void> {
  const config = loadConfig();
  const vigie = await createVigie(config);
  const closers: Array<() => Promise<void>> = [];
  if (config.demo) await loadDemoDirectory(vigie);
  const address = await vigie.listen();
  closers.push(() => vigie.close());
  vigie.logger.info({ address, issuer: config.issuer, storage: vigie.db.dialect }, 'Vigie provider listening');
  if (config.demo) {
    const demo = await startDemo(vigie, { port: config.demoPort, host: config.host });
    closers.unshift(() => demo.close());
    vigie.logger.info({ url: demo.url }, 'demo service listening: open it in a browser to try a login');
  }
  const stop = async (signal: string) => {
    vigie.logger.info({ signal }, 'shutting down');
    for (const close of closers) await close().catch(() => {});
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
