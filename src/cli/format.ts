/** Turning plist values into what a terminal or a JSON consumer can read. */
import { PlistReal, PlistUid, type PlistValue } from '../protocol/plist/types';

/** JSON-safe form: data as base64, dates as ISO strings, big integers as strings. */
export function plistToJson(v: PlistValue): unknown {
  if (Buffer.isBuffer(v)) return { $data: v.toString('base64') };
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof PlistReal) return v.value;
  if (v instanceof PlistUid) return { $uid: v.value };
  if (Array.isArray(v)) return v.map(plistToJson);
  if (typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = plistToJson(x);
    return o;
  }
  return v;
}

/** `Key: value` lines, nested dicts indented, data summarised (PEM text shown as such). */
export function plistToLines(v: PlistValue, indent = ''): string[] {
  if (typeof v !== 'object' || v instanceof Date || Buffer.isBuffer(v) || Array.isArray(v)) {
    return [indent + scalar(v)];
  }
  const lines: string[] = [];
  for (const [k, x] of Object.entries(v)) {
    if (typeof x === 'object' && !(x instanceof Date) && !Buffer.isBuffer(x) && !Array.isArray(x)) {
      if (x instanceof PlistReal || x instanceof PlistUid)
        lines.push(`${indent}${k}: ${scalar(x)}`);
      else {
        lines.push(`${indent}${k}:`);
        lines.push(...plistToLines(x, indent + '  '));
      }
    } else lines.push(`${indent}${k}: ${scalar(x)}`);
  }
  return lines;
}

function scalar(v: PlistValue): string {
  if (Buffer.isBuffer(v)) {
    const text = v.subarray(0, 64).toString('latin1');
    if (text.startsWith('-----BEGIN ')) return `<${text.split('\n')[0]}…>`;
    return `<${v.length} bytes>`;
  }
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return `[${v.map(scalar).join(', ')}]`;
  return JSON.stringify(plistToJson(v));
}
