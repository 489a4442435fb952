/**
 * Directory imports: the public open-data extract and the private contacts feed. Both stream the
 * input, write it in batches (one transaction each: a failing batch leaves nothing behind), skip
 * and report malformed lines with their line number, and are idempotent (an upsert replaces a
 * record with the file's version, so importing the same file twice gives the same state).
 * Records absent from a newer file are kept, not deleted.
 */
import type { Readable } from 'node:stream';
import type { Contacts } from './model.ts';
import { parseContacts } from './contacts.ts';
import { ProfessionalBuffer, parseExtract, type ExtractError, type ExtractHeader } from './extract.ts';
import type { DirectoryStore } from './store.ts';

export interface ImportProgress {
  lines: number;
  professionals: number;
  errors: number;
}

export interface ImportOptions {
  /** Records per transaction (professionals for the extract, contacts for the feed). Default 1000. */
  batchSize?: number;
  /** Called after each batch is written. */
  onProgress?: (progress: ImportProgress) => void;
  /** Called for every rejected line. */
  onError?: (error: ExtractError) => void;
  /** Extract only: which known columns the file lacks and which extra ones it has. */
  onHeader?: (header: ExtractHeader) => void;
}

export interface ImportResult {
  /** Lines read, header and blank lines included. */
  lines: number;
  /** Valid data lines. */
  rows: number;
  /** Records written: professionals for the extract, contact entries for the feed. */
  professionals: number;
  /** Rejected lines. */
  errors: number;
  /** Transactions committed. */
  batches: number;
}

const DEFAULT_BATCH_SIZE = 1000;

function batchSizeOf(options: ImportOptions): number {
  const size = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`batchSize must be a positive integer, got ${size}`);
  return size;
}

/** Imports `PS_LibreAcces_Personne_activite_*.txt` (a path or a stream) into the store. */
export async function importExtract(input: string | Readable, store: DirectoryStore, options: ImportOptions = {}): Promise<ImportResult> {
  const batchSize = batchSizeOf(options);
  const result: ImportResult = { lines: 0, rows: 0, professionals: 0, errors: 0, batches: 0 };
  const buffer = new ProfessionalBuffer();
  let lastLine = 1;

  const flush = async () => {
    if (buffer.size === 0) return;
    const batch = buffer.take();
    await store.upsertProfessionals(batch);
    result.professionals += batch.length;
    result.batches++;
    options.onProgress?.({ lines: Math.max(lastLine, result.lines), professionals: result.professionals, errors: result.errors });
  };

  const items = parseExtract(input, {
    ...(options.onHeader ? { onHeader: options.onHeader } : {}),
    onEnd: ({ lines }) => (result.lines = lines),
  });
  for await (const item of items) {
    if (item.kind === 'error') {
      result.errors++;
      lastLine = item.error.line;
      options.onError?.(item.error);
      continue;
    }
    const row = item.row;
    lastLine = row.line;
    result.rows++;
    // Close a batch only between two persons, so that one person's rows are never split.
    if (buffer.size >= batchSize && !buffer.has(row.nationalId)) await flush();
    buffer.add(row);
  }
  await flush();
  return result;
}

/** Imports the contacts CSV (`national_id,email,mobile`, `,` or `;`, header required). */
export async function importContacts(input: string | Readable, store: DirectoryStore, options: ImportOptions = {}): Promise<ImportResult> {
  const batchSize = batchSizeOf(options);
  const result: ImportResult = { lines: 0, rows: 0, professionals: 0, errors: 0, batches: 0 };
  // Keyed by national id: a repeated id in one batch keeps its last line.
  const batch = new Map<string, Contacts>();
  let lastLine = 1;

  const flush = async () => {
    if (batch.size === 0) return;
    const list = [...batch.values()];
    batch.clear();
    await store.upsertContacts(list);
    result.professionals += list.length;
    result.batches++;
    options.onProgress?.({ lines: Math.max(lastLine, result.lines), professionals: result.professionals, errors: result.errors });
  };

  for await (const item of parseContacts(input, { onEnd: ({ lines }) => (result.lines = lines) })) {
    if (item.kind === 'error') {
      result.errors++;
      lastLine = item.error.line;
      options.onError?.(item.error);
      continue;
    }
    lastLine = item.line;
    result.rows++;
    if (batch.size >= batchSize && !batch.has(item.contacts.nationalId)) await flush();
    batch.set(item.contacts.nationalId, item.contacts);
  }
  await flush();
  return result;
}
