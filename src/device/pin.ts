/** A 4-digit PIN, refusing the ones an attacker tries first. */
export function isPinShaped(pin: string): boolean {
  return /^\d{4}$/.test(pin);
}

const COMMON = new Set(['1212', '1122', '1010', '2000', '1004', '6969', '2580', '0852', '1313', '2020', '2001', '1990', '1980']);

export function isTrivialPin(pin: string): boolean {
  const digits = [...pin].map(Number);
  const steps = new Set(digits.slice(1).map((d, i) => d - (digits[i] as number)));
  const single = steps.size === 1 ? [...steps][0] : undefined;
  // Repeated digits (0000) and straight runs up or down (1234, 9876).
  if (single === 0 || single === 1 || single === -1) return true;
  return COMMON.has(pin);
}
