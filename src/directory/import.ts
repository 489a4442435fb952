/**
 * Directory imports: the public open-data extract and the private contacts feed. Both stream the
 * input, write it in batches (one transaction each: a failing batch leaves nothing behind), skip
 * and report malformed lines with their line number, and are idempotent (an upsert replaces a
 * record with the file's version, so importing the same file twice gives the same state).
 * Records absent from a newer file are kept, not deleted.
 */
import type { Readable } from 'node:stream';
import type { Contacts, Professional } from './model.ts';
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

/**
 * Writes batches in the background while parsing goes on, with at most one batch in flight: the
 * database round trips (PostgreSQL) overlap with parsing, and a failed batch stops the import
 * before any later batch is written.
 */
class BatchWriter<T> {
  readonly #write: (list: T[]) => Promise<void>;
  #pending: Promise<void> = Promise.resolve();
  #failure: { error: unknown } | undefined;

  constructor(write: (list: T[]) => Promise<void>) {
    this.#write = write;
  }

  /** Waits for the previous batch, then starts writing this one; `done` runs once it committed. */
  async submit(list: T[], done: () => void): Promise<void> {
    await this.#pending;
    if (this.#failure) throw this.#failure.error;
    // Every outcome is caught here, so a failure waits for the next submit/finish without ever
    // surfacing as an unhandled rejection meanwhile.
    this.#pending = this.#write(list).then(
      () => {
        try {
          done();
        } catch (error) {
          this.#failure ??= { error };
        }
      },
      (error: unknown) => {
        this.#failure ??= { error };
      },
    );
  }

  /** Waits for the last batch and reports its failure, if any. */
  async finish(): Promise<void> {
    await this.#pending;
    if (this.#failure) throw this.#failure.error;
  }
}

/** Imports `PS_LibreAcces_Personne_activite_*.txt` (a path or a stream) into the store. */
export async function importExtract(input: string | Readable, store: DirectoryStore, options: ImportOptions = {}): Promise<ImportResult> {
  const batchSize = batchSizeOf(options);
  const result: ImportResult = { lines: 0, rows: 0, professionals: 0, errors: 0, batches: 0 };
  const buffer = new ProfessionalBuffer();
  const writer = new BatchWriter<Professional>((list) => store.upsertProfessionals(list));
  let lastLine = 1;

  const flush = async () => {
    if (buffer.size === 0) return;
    const batch = buffer.take();
    const lines = lastLine;
    await writer.submit(batch, () => {
      result.professionals += batch.length;
      result.batches++;
      options.onProgress?.({ lines: Math.max(lines, result.lines), professionals: result.professionals, errors: result.errors });
    });
  };

  const items = parseExtract(input, {
    ...(options.onHeader ? { onHeader: options.onHeader } : {}),
    onEnd: ({ lines }) => (result.lines = lines),
  });
  try {
    for await (const item of items) {
      if (item.kind === 'error') {
        result.errors++;
        lastLine = item.error.line;
        options.onError?.(item.error);
        continue;
      }
      const row = item.row;
      // Close a batch only between two persons, so that one person's rows are never split.
      if (buffer.size >= batchSize && !buffer.has(row.nationalId)) await flush();
      lastLine = row.line;
      result.rows++;
      buffer.add(row);
    }
    await flush();
  } finally {
    // Never return (or throw) while a transaction is still running.
    await writer.finish().catch(() => {});
  }
  await writer.finish();
  return result;
}

/** Imports the contacts CSV (`national_id,email,mobile`, `,` or `;`, header required). */
export async function importContacts(input: string | Readable, store: DirectoryStore, options: ImportOptions = {}): Promise<ImportResult> {
  const batchSize = batchSizeOf(options);
  const result: ImportResult = { lines: 0, rows: 0, professionals: 0, errors: 0, batches: 0 };
  // Keyed by national id: a repeated id in one batch keeps its last line.
  const batch = new Map<string, Contacts>();
  const writer = new BatchWriter<Contacts>((list) => store.upsertContacts(list));
  let lastLine = 1;

  const flush = async () => {
    if (batch.size === 0) return;
    const list = [...batch.values()];
    batch.clear();
    const lines = lastLine;
    await writer.submit(list, () => {
      result.professionals += list.length;
      result.batches++;
      options.onProgress?.({ lines: Math.max(lines, result.lines), professionals: result.professionals, errors: result.errors });
    });
  };

  try {
    for await (const item of parseContacts(input, { onEnd: ({ lines }) => (result.lines = lines) })) {
      if (item.kind === 'error') {
        result.errors++;
        lastLine = item.error.line;
        options.onError?.(item.error);
        continue;
      }
      if (batch.size >= batchSize && !batch.has(item.contacts.nationalId)) await flush();
      lastLine = item.line;
      result.rows++;
      batch.set(item.contacts.nationalId, item.contacts);
    }
    await flush();
  } finally {
    await writer.finish().catch(() => {});
  }
  await writer.finish();
  return result;
}
