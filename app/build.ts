/**
 * Builds the e-CPS web app into app/dist: the page and its assets (Vite), the PNG icons, then the
 * service worker (a classic script, given the list of files to keep offline).
 *
 *   node app/build.ts             build
 *   node app/build.ts --if-stale  build only when the sources changed since the last build
 *                                 (npm install, npm start and npm test run this)
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const APP = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(APP, '..');
const DIST = join(APP, 'dist');
const STAMP = join(DIST, '.build-hash');
// Modules of the server the app shares (signing, PIN rules, identifier rules, browser names).
const SHARED = ['src/device/signature.ts', 'src/device/pin.ts', 'src/login/identifier.ts', 'src/login/browser.ts'];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    if (name === 'dist' || name === 'node_modules') return [];
    return statSync(full).isDirectory() ? files(full) : [full];
  });
}

function sourceHash(): string {
  const hash = createHash('sha256');
  for (const file of [...files(APP), ...SHARED.map((f) => join(ROOT, f))].sort()) {
    hash.update(relative(ROOT, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex');
}

// ---- PNG icons, drawn here so the repository holds no binary -----------------------------------
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const byte of buf) c = (CRC_TABLE[(c ^ byte) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A calm navy square (rounded unless maskable) with a white check mark inside a shield. */
function icon(size: number, maskable: boolean): Buffer {
  const rows: Buffer[] = [];
  const r = maskable ? 0 : size * 0.18;
  const inside = (x: number, y: number) => {
    const cx = Math.min(Math.max(x, r), size - r);
    const cy = Math.min(Math.max(y, r), size - r);
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
  };
  // Check mark: two thick segments, in the central 60 % (safe zone of maskable icons).
  const s = size;
  const segments: Array<[number, number, number, number]> = [
    [0.3 * s, 0.52 * s, 0.44 * s, 0.66 * s],
    [0.44 * s, 0.66 * s, 0.72 * s, 0.36 * s],
  ];
  const width = 0.075 * s;
  const nearSegment = (x: number, y: number) =>
    segments.some(([x1, y1, x2, y2]) => {
      const dx = x2 - x1;
      const dy = y2 - y1;
      const t = Math.max(0, Math.min(1, ((x - x1) * dx + (y - y1) * dy) / (dx * dx + dy * dy)));
      return (x - (x1 + t * dx)) ** 2 + (y - (y1 + t * dy)) ** 2 <= width * width;
    });
  for (let y = 0; y < size; y += 1) {
    const row = Buffer.alloc(1 + size * 4);
    for (let x = 0; x < size; x += 1) {
      const o = 1 + x * 4;
      if (!inside(x + 0.5, y + 0.5)) continue; // transparent corner
      const white = nearSegment(x + 0.5, y + 0.5);
      row[o] = white ? 255 : 0;
      row[o + 1] = white ? 255 : 0;
      row[o + 2] = white ? 255 : 145;
      row[o + 3] = 255;
    }
    rows.push(row);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8; // bit depth
  header[9] = 6; // RGBA
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}

async function build(): Promise<void> {
  const { build: viteBuild } = await import('vite');
  const started = Date.now();
  await viteBuild({
    root: APP,
    base: '/app/',
    configFile: false,
    logLevel: 'warn',
    publicDir: join(APP, 'public'),
    build: { outDir: DIST, emptyOutDir: true, target: 'es2022', sourcemap: false, modulePreload: { polyfill: false } },
  });
  mkdirSync(join(DIST, 'icons'), { recursive: true });
  writeFileSync(join(DIST, 'icons', 'icon-192.png'), icon(192, false));
  writeFileSync(join(DIST, 'icons', 'icon-512.png'), icon(512, false));
  writeFileSync(join(DIST, 'icons', 'maskable-512.png'), icon(512, true));

  // The offline shell: every built file but the worker itself.
  const precache = files(DIST).map((f) => relative(DIST, f).split(sep).join('/')).filter((f) => !f.startsWith('.')).sort();
  const version = createHash('sha256').update(precache.map((f) => f + readFileSync(join(DIST, f)).length).join('\n')).digest('hex').slice(0, 12);
  await viteBuild({
    root: APP,
    configFile: false,
    logLevel: 'warn',
    publicDir: false,
    define: { __PRECACHE__: JSON.stringify(['./', ...precache.filter((f) => f !== 'index.html')]), __VERSION__: JSON.stringify(version) },
    build: {
      outDir: DIST,
      emptyOutDir: false,
      target: 'es2022',
      minify: true,
      lib: { entry: join(APP, 'src/sw/sw.ts'), formats: ['iife'], name: 'vigieServiceWorker', fileName: () => 'sw.js' },
    },
  });
  writeFileSync(STAMP, sourceHash());
  console.log(`e-CPS app built in app/dist (${Date.now() - started} ms, ${precache.length + 1} files)`);
}

const ifStale = process.argv.includes('--if-stale');
if (ifStale && existsSync(STAMP) && existsSync(join(DIST, 'index.html')) && readFileSync(STAMP, 'utf8') === sourceHash()) process.exit(0);
try {
  await import('vite');
} catch {
  // A production install without devDependencies: serve the build shipped with it, if any.
  // Not fatal: the provider still starts and /app says the app is not built.
  console.warn(`vite is not installed (devDependencies omitted?): the e-CPS app is not rebuilt${existsSync(join(DIST, 'index.html')) ? '' : ' and /app will answer 503'}.`);
  process.exit(0);
}
await build();
