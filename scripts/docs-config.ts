// Rewrites the README's configuration table from the settings declared in src/config/index.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import { describeSettings } from '../src/config/index.ts';

const file = new URL('../README.md', import.meta.url);
const readme = readFileSync(file, 'utf8');
const updated = readme.replace(/<!-- config:start -->[\s\S]*<!-- config:end -->/, `<!-- config:start -->\n${describeSettings()}\n<!-- config:end -->`);
writeFileSync(file, updated);
