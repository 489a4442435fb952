import { createRequire } from 'node:module';
import { isPublicIp, type Geo } from './source.ts';

/** Offline place of an address. An interface so tests can say where an address is. */
export interface GeoLocator {
  locate(ip: string): Geo | null;
}

type GeoipLite = { lookup(ip: string): { country: string; region: string; city: string } | null };

/**
 * `geoip-lite` ships its database (GeoLite2 derived) inside the npm package: no network, no key.
 * It reads ~150 MB into memory when first required, so it is loaded on the first public address
 * (tests on loopback never pay for it) or at start-up with `warm()` in production.
 */
export class GeoIpLiteLocator implements GeoLocator {
  #geoip: GeoipLite | undefined;

  warm(): void {
    this.#geoip ??= createRequire(import.meta.url)('geoip-lite') as GeoipLite;
  }

  locate(ip: string): Geo | null {
    if (!isPublicIp(ip)) return null;
    this.warm();
    const found = this.#geoip!.lookup(ip);
    if (!found?.country) return null;
    return { country: found.country, region: found.region ?? '', city: found.city ?? '' };
  }
}

/** For `VIGIE_GEOIP=false` and for tests: every address is of unknown place. */
export const noGeo: GeoLocator = { locate: () => null };

/** A fixed table of addresses or prefixes (`'203.0.113.'`) to places, for tests and the simulator. */
export class TableLocator implements GeoLocator {
  readonly #entries: Array<[string, Geo]>;
  constructor(entries: Record<string, Geo>) {
    this.#entries = Object.entries(entries);
  }
  locate(ip: string): Geo | null {
    return this.#entries.find(([start]) => ip.startsWith(start))?.[1] ?? null;
  }
}

const COUNTRY_NAMES = new Intl.DisplayNames(['fr'], { type: 'region' });

export function countryName(code: string): string {
  try {
    return COUNTRY_NAMES.of(code) ?? code;
  } catch {
    return code;
  }
}

/** "Lyon, France", or "Allemagne" when the city is unknown; null when the place is unknown. */
export function describePlace(geo: Geo | null): string | null {
  if (!geo) return null;
  return geo.city ? `${geo.city}, ${countryName(geo.country)}` : countryName(geo.country);
}

/** The short form used in summaries: "Lyon", or the country. */
export function shortPlace(geo: Geo | null): string | null {
  if (!geo) return null;
  return geo.city || countryName(geo.country);
}
