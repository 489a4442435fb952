// Summarises a V8 .cpuprofile (from `npm run bench:login -- --profile`): self time by function
// and by package/file, and inclusive time of the project's own functions.
// Usage: npx node bench/profile-summary.ts bench/profiles/vigie-server.cpuprofile [--top 25] [--callers NAME]
// --callers: where the self time of functions named NAME comes from (the calling stacks, 6 frames).
// --timeline FILE [--route 'POST /token']: see below.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' }, callers: { type: 'string' }, timeline: { type: 'string' }, route: { type: 'string' } } });
const file = positionals[0];
if (!file) throw new Error('usage: profile-summary.ts <file.cpuprofile> [--top N]');
const top = Number(values.top);
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
// --timeline (from bench:login --profile --route-cpu --concurrency 1): only the samples taken while
// a request of route --route was being handled; without --route, the time of each route.
const intervals = values.timeline ? (JSON.parse(readFileSync(values.timeline, 'utf8')) as Array<[string, number, number]>).sort((a, b) => a[1] - b[1]) : undefined;
const routeAt = (at: number): string | undefined => {
  let low = 0;
  let high = intervals!.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const [route, start, end] = intervals![mid]!;
    if (at < start) high = mid - 1;
    else if (at > end) low = mid + 1;
    else return route;
  }
  return undefined;
};
const self = new Map<number, number>();
const byRoute = new Map<string, number>();
let at = profile.startTime;
profile.samples.forEach((id, i) => {
  const us = profile.timeDeltas[i] ?? 0;
  at += us;
  if (intervals) {
    const route = routeAt(at) ?? '(between requests)';
    byRoute.set(route, (byRoute.get(route) ?? 0) + us);
    if (values.route !== undefined && route !== values.route) return;
  }
  self.set(id, (self.get(id) ?? 0) + us);
});
const total = [...self.values()].reduce((a, b) => a + b, 0);

const short = (url: string) => {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const src = url.search(/\/(src|bench|test)\//);
  return src >= 0 ? url.slice(src + 1) : url || '(native)';
};
const pkg = (url: string) => {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (/\/src\//.test(url)) return short(url);
  if (url.startsWith('node:')) return url;
  return url ? short(url) : '(native/VM)';
};
const label = (f: CallFrame) => `${f.functionName || '(anonymous)'} ${short(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;

const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us);
const selfByFunction = new Map<string, number>();
const selfByPackage = new Map<string, number>();
const inclusiveOwn = new Map<string, number>();
for (const [id, us] of self) {
  const node = byId.get(id)!;
  add(selfByFunction, label(node.callFrame), us);
  add(selfByPackage, pkg(node.callFrame.url), us);
  // Inclusive time of project functions (each counted once per sample stack).
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const frame = byId.get(cur)!.callFrame;
    if (/\/src\//.test(frame.url) && !frame.url.includes('node_modules')) {
      const key = label(frame);
      if (!seen.has(key)) {
        seen.add(key);
        add(inclusiveOwn, key, us);
      }
    }
  }
}

const print = (title: string, map: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [key, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((us / total) * 100).toFixed(1).padStart(6)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}`);
  }
};
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled${values.route ? ` while handling ${values.route}` : ''}`);
if (intervals && values.route === undefined) {
  console.log('\nSampled time by route (--route NAME for one)');
  for (const [route, us] of [...byRoute].sort((a, b) => b[1] - a[1])) console.log(`${(us / 1000).toFixed(0).padStart(8)} ms  ${route}`);
}
print('Self time by package / project file', selfByPackage);
print('Self time by function', selfByFunction);
print('Inclusive time of project (src/) functions', inclusiveOwn);

if (values.callers) {
  const stacks = new Map<string, number>();
  for (const [id, us] of self) {
    if (byId.get(id)!.callFrame.functionName !== values.callers) continue;
    const frames: string[] = [];
    for (let cur = parent.get(id); cur !== undefined && frames.length < 6; cur = parent.get(cur)) {
      const frame = byId.get(cur)!.callFrame;
      if (frame.functionName || frame.url) frames.push(label(frame));
    }
    add(stacks, frames.join(' < '), us);
  }
  print(`Callers of ${values.callers}`, stacks);
}
