// Worker thread of store/sqlite-dialect.ts: moves SQLite's WAL checkpoints off the event loop.
//
// With automatic checkpoints, every ~1000 pages one unlucky write copies the WAL into the database
// file and syncs both, synchronously, on the thread serving requests (measured: ~15% of the login
// benchmark's throughput). Here a second connection checkpoints on a timer instead. PASSIVE mode
// never waits for the main connection's readers or writers, so it can never stall them either.
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';

export interface CheckpointerData {
  path: string;
  intervalMs: number;
}

const { path, intervalMs } = workerData as CheckpointerData;
const database = new DatabaseSync(path);
const checkpoint = database.prepare('PRAGMA wal_checkpoint(PASSIVE)');
const timer = setInterval(() => checkpoint.get(), intervalMs);

parentPort!.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  checkpoint.get();
  database.close();
  parentPort!.close();
});
parentPort!.postMessage('ready');
