/**
 * XML property lists: our own small parser and writer (no dependency).
 *
 * The parser is iterative (an explicit stack, no recursion), so a hostile document nested a
 * hundred thousand levels deep ends in a LIMIT error, never a stack overflow. It accepts what
 * Apple and libplist write, plus the leniencies devices need: control characters are replaced by
 * spaces (iOS 4.3+ puts them in strings, libimobiledevice does the same replacement), comments,
 * processing instructions and the DOCTYPE are skipped, CDATA sections are honoured.
 */
import { MooringError } from '../../util/errors';
import {
  DEFAULT_PLIST_LIMITS,
  PlistReal,
  PlistUid,
  type PlistDict,
  type PlistLimits,
  type PlistValue,
} from './types';

/** Seconds between the Unix epoch and Apple's reference date 2001-01-01T00:00:00Z. */
export const APPLE_EPOCH_OFFSET_SECONDS = 978_307_200;

const INT64_MIN = -(1n << 63n);
const UINT64_MAX = (1n << 64n) - 1n;
/** Encoders are fed by our own code, but a cyclic object graph must still end in an error. */
export const MAX_ENCODE_DEPTH = 512;

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

interface Tag {
  name: string;
  closing: boolean;
  selfClosing: boolean;
  /** Offset of the `<` (for error messages). */
  at: number;
}

type Frame =
  | { kind: 'array'; items: PlistValue[]; at: number }
  | { kind: 'dict'; dict: PlistDict; key: string | undefined; at: number };

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\x00-\x08\x0b\x0c\x0e-\x1f]/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS_G = /[\x00-\x08\x0b\x0c\x0e-\x1f]/g;

/** Replaces C0 control characters other than TAB, LF and CR with spaces, as libimobiledevice does. */
function scrubControlChars(s: string): string {
  return CONTROL_CHARS.test(s) ? s.replace(CONTROL_CHARS_G, ' ') : s;
}

/** Sets a dict entry so that a key such as `__proto__` becomes an own property, never a prototype. */
export function setDictEntry(dict: PlistDict, key: string, value: PlistValue): void {
  if (key === '__proto__') {
    Object.defineProperty(dict, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    dict[key] = value;
  }
}

class XmlParser {
  private pos = 0;
  private objects = 0;

  constructor(
    private readonly src: string,
    private readonly limits: PlistLimits,
  ) {}

  private fail(message: string, at = this.pos): never {
    const { line, column } = this.lineCol(at);
    throw new MooringError(
      'MALFORMED',
      `XML plist: ${message} at line ${line}, column ${column} (offset ${at})`,
    );
  }

  private lineCol(at: number): { line: number; column: number } {
    let line = 1;
    let lastNl = -1;
    for (let i = 0; i < at && i < this.src.length; i++) {
      if (this.src.charCodeAt(i) === 10) {
        line++;
        lastNl = i;
      }
    }
    return { line, column: at - lastNl };
  }

  private count(at: number): void {
    if (++this.objects > this.limits.maxObjects) {
      throw new MooringError(
        'LIMIT',
        `XML plist has more than ${this.limits.maxObjects} elements (offset ${at})`,
      );
    }
  }

  /** Skips whitespace, comments, processing instructions and DOCTYPE; returns the next tag or undefined at end. */
  private nextTag(): Tag | undefined {
    const s = this.src;
    for (;;) {
      while (this.pos < s.length && isSpace(s.charCodeAt(this.pos))) this.pos++;
      if (this.pos >= s.length) return undefined;
      if (s.charCodeAt(this.pos) !== 0x3c /* < */)
        this.fail(`unexpected text '${snippet(s, this.pos)}'`);
      if (s.startsWith('<!--', this.pos)) {
        const end = s.indexOf('-->', this.pos + 4);
        if (end < 0) this.fail('unterminated comment');
        this.pos = end + 3;
        continue;
      }
      if (s.startsWith('<?', this.pos)) {
        const end = s.indexOf('?>', this.pos + 2);
        if (end < 0) this.fail('unterminated processing instruction');
        this.pos = end + 2;
        continue;
      }
      if (s.startsWith('<!', this.pos)) {
        this.skipDeclaration();
        continue;
      }
      return this.readTag();
    }
  }

  /** Skips `<!DOCTYPE …>`, including an internal subset in brackets. */
  private skipDeclaration(): void {
    const s = this.src;
    const start = this.pos;
    let i = this.pos + 2;
    let bracket = 0;
    let quote = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (quote) {
        if (c === quote) quote = 0;
      } else if (c === 0x22 || c === 0x27) quote = c;
      else if (c === 0x5b) bracket++;
      else if (c === 0x5d) bracket--;
      else if (c === 0x3e && bracket <= 0) break;
    }
    if (i >= s.length) this.fail('unterminated declaration', start);
    this.pos = i + 1;
  }

  private readTag(): Tag {
    const s = this.src;
    const at = this.pos;
    let i = at + 1;
    const closing = s.charCodeAt(i) === 0x2f; /* / */
    if (closing) i++;
    const nameStart = i;
    while (i < s.length && isNameChar(s.charCodeAt(i))) i++;
    const name = s.slice(nameStart, i);
    if (name.length === 0) this.fail('malformed tag', at);
    // Attributes (plist version="1.0") are skipped, honouring quotes.
    let quote = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (quote) {
        if (c === quote) quote = 0;
      } else if (c === 0x22 || c === 0x27) quote = c;
      else if (c === 0x3e /* > */) break;
      else if (c === 0x3c) this.fail(`'<' inside tag <${name}>`, i);
    }
    if (i >= s.length) this.fail(`unterminated tag <${name}`, at);
    const selfClosing = s.charCodeAt(i - 1) === 0x2f && i - 1 >= nameStart + name.length;
    if (closing && selfClosing) this.fail(`malformed closing tag </${name}/>`, at);
    this.pos = i + 1;
    return { name, closing, selfClosing, at };
  }

  /** Reads character data up to `</name>`, decoding entities and CDATA. */
  private readText(name: string): string {
    const s = this.src;
    let out = '';
    for (;;) {
      const lt = s.indexOf('<', this.pos);
      if (lt < 0) this.fail(`missing </${name}>`);
      // Entities are searched only inside this run, so a long document without '&' stays linear.
      const run = s.slice(this.pos, lt);
      out += run.includes('&') ? this.decodeEntities(run, this.pos) : run;
      if (s.startsWith('<![CDATA[', lt)) {
        const end = s.indexOf(']]>', lt + 9);
        if (end < 0) this.fail('unterminated CDATA section', lt);
        out += s.slice(lt + 9, end);
        this.pos = end + 3;
        continue;
      }
      if (s.startsWith('<!--', lt)) {
        const end = s.indexOf('-->', lt + 4);
        if (end < 0) this.fail('unterminated comment', lt);
        this.pos = end + 3;
        continue;
      }
      this.pos = lt;
      const tag = this.readTag();
      if (!tag.closing || tag.name !== name) {
        this.fail(`expected </${name}>, found <${tag.closing ? '/' : ''}${tag.name}>`, tag.at);
      }
      return out;
    }
  }

  /** Decodes the entities in `run`, which starts at offset `base` of the document. */
  private decodeEntities(run: string, base: number): string {
    let out = '';
    let i = 0;
    for (;;) {
      const amp = run.indexOf('&', i);
      if (amp < 0) return out + run.slice(i);
      out += run.slice(i, amp);
      const semi = run.indexOf(';', amp);
      if (semi < 0 || semi - amp > 12) this.fail('unterminated entity', base + amp);
      out += this.decodeEntity(run.slice(amp + 1, semi), base + amp);
      i = semi + 1;
    }
  }

  private decodeEntity(body: string, at: number): string {
    switch (body) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
    }
    let code = NaN;
    if (/^#[0-9]{1,8}$/.test(body)) code = Number.parseInt(body.slice(1), 10);
    else if (/^#[xX][0-9a-fA-F]{1,8}$/.test(body)) code = Number.parseInt(body.slice(2), 16);
    if (!(code >= 0 && code <= 0x10ffff)) this.fail(`unknown entity &${body};`, at);
    return String.fromCodePoint(code);
  }

  parse(): PlistValue {
    const stack: Frame[] = [];
    let root: PlistValue | undefined;
    let haveRoot = false;
    let inPlist = false;
    let plistClosed = false;

    const attach = (value: PlistValue, at: number): void => {
      const top = stack[stack.length - 1];
      if (top === undefined) {
        if (haveRoot) this.fail('more than one top-level value', at);
        root = value;
        haveRoot = true;
      } else if (top.kind === 'array') {
        top.items.push(value);
      } else {
        if (top.key === undefined) this.fail('dict value without a <key>', at);
        setDictEntry(top.dict, top.key, value);
        top.key = undefined;
      }
    };

    for (;;) {
      const tag = this.nextTag();
      if (tag === undefined) break;
      if (plistClosed) this.fail(`content after </plist>`, tag.at);
      const { name, at } = tag;

      if (name === 'plist') {
        if (tag.closing) {
          if (!inPlist || stack.length > 0) this.fail('unexpected </plist>', at);
          plistClosed = true;
        } else {
          if (inPlist || haveRoot || stack.length > 0) this.fail('unexpected <plist>', at);
          if (tag.selfClosing) plistClosed = true;
          inPlist = true;
        }
        continue;
      }

      if (tag.closing) {
        const top = stack.pop();
        if (top === undefined || top.kind !== name) this.fail(`unexpected </${name}>`, at);
        if (top.kind === 'dict') {
          if (top.key !== undefined) this.fail(`<key>${top.key}</key> has no value`, at);
          attach(top.dict, at);
        } else {
          attach(top.items, at);
        }
        continue;
      }

      if (name === 'key') {
        const top = stack[stack.length - 1];
        if (top === undefined || top.kind !== 'dict') this.fail('<key> outside a <dict>', at);
        if (top.key !== undefined) this.fail('two <key>s in a row', at);
        top.key = tag.selfClosing ? '' : this.readText('key');
        continue;
      }

      this.count(at);
      switch (name) {
        case 'array':
        case 'dict': {
          if (tag.selfClosing) {
            attach(name === 'array' ? [] : {}, at);
            break;
          }
          if (stack.length >= this.limits.maxDepth) {
            throw new MooringError(
              'LIMIT',
              `XML plist nests deeper than ${this.limits.maxDepth} levels (offset ${at})`,
            );
          }
          stack.push(
            name === 'array'
              ? { kind: 'array', items: [], at }
              : { kind: 'dict', dict: {}, key: undefined, at },
          );
          break;
        }
        case 'true':
        case 'false':
          if (!tag.selfClosing) {
            const text = this.readText(name);
            if (text.trim() !== '') this.fail(`<${name}> must be empty`, at);
          }
          attach(name === 'true', at);
          break;
        default: {
          const text = tag.selfClosing ? '' : this.readText(name);
          attach(this.scalar(name, text, at), at);
        }
      }
    }

    if (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      this.fail(`unclosed <${top.kind}>`, top.at);
    }
    if (inPlist && !plistClosed) this.fail('missing </plist>');
    if (!haveRoot) this.fail('no value in document');
    return root as PlistValue;
  }

  private scalar(name: string, text: string, at: number): PlistValue {
    switch (name) {
      case 'string':
        return text;
      case 'integer':
        return parseInteger(text.trim()) ?? this.fail(`bad <integer> '${clip(text)}'`, at);
      case 'real':
        return parseReal(text.trim()) ?? this.fail(`bad <real> '${clip(text)}'`, at);
      case 'date':
        return parseDate(text.trim()) ?? this.fail(`bad <date> '${clip(text)}'`, at);
      case 'data':
        return parseBase64(text) ?? this.fail('bad base64 in <data>', at);
      default:
        return this.fail(`unknown element <${name}>`, at);
    }
  }
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function isNameChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x5f ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x3a
  );
}

function snippet(s: string, at: number): string {
  return clip(s.slice(at, at + 20));
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/** Decimal or 0x-hex, −2^63 … 2^64−1 (libplist's range); a number when safe, else a bigint. */
export function parseInteger(t: string): number | bigint | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F]{1,16}|[0-9]{1,20})$/.exec(t);
  if (!m) return undefined;
  let v = BigInt(m[2]!);
  if (m[1] === '-') v = -v;
  if (v < INT64_MIN || v > UINT64_MAX) return undefined;
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(v)
    : v;
}

function parseReal(t: string): number | undefined {
  const lower = t.toLowerCase();
  if (lower === 'nan') return NaN;
  if (lower === 'inf' || lower === '+inf' || lower === 'infinity' || lower === '+infinity')
    return Infinity;
  if (lower === '-inf' || lower === '-infinity') return -Infinity;
  // One way to match each text (fuzz regression): the former `[0-9]+\.?[0-9]*` could split a digit
  // run two ways, and `<real>` + 30 000 digits + `x` took seconds (quadratic backtracking).
  if (!/^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/.test(t)) return undefined;
  return Number(t);
}

function parseDate(t: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?Z$/.exec(t);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return undefined;
  const ms = m[7] ? Math.round(Number(`0${m[7]}`) * 1000) : 0;
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s, ms));
  if (y < 100) date.setUTCFullYear(y);
  return date;
}

function parseBase64(t: string): Buffer | undefined {
  const compact = t.replace(/[\s]+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return undefined;
  return Buffer.from(compact, 'base64');
}

/** Parses an XML plist document. Throws MooringError MALFORMED or LIMIT. */
export function decodeXmlPlist(buf: Buffer, limits: Partial<PlistLimits> = {}): PlistValue {
  let start = 0;
  if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) start = 3;
  const text = scrubControlChars(buf.toString('utf8', start));
  return new XmlParser(text, { ...DEFAULT_PLIST_LIMITS, ...limits }).parse();
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

const XML_HEADER =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
  '<plist version="1.0">\n';

function escapeText(s: string): string {
  return /[<>&]/.test(s) ? s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;') : s;
}

/** Real formatting: shortest round-trip form; non-finite values as Apple writes them. */
export function formatReal(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return '+infinity';
  if (v === -Infinity) return '-infinity';
  return String(v);
}

/** ISO 8601 in UTC without fractional seconds, as Apple and libplist write (sub-second precision is dropped). */
export function formatXmlDate(d: Date): string {
  const t = d.getTime();
  if (!Number.isFinite(t))
    throw new MooringError('MALFORMED', 'cannot encode an invalid Date in a plist');
  const whole = new Date(Math.floor(t / 1000) * 1000);
  // Fuzzing found it: toISOString writes years outside 0000–9999 as "+010000-…"/"-000001-…", which
  // no plist reader (ours included) parses. Refuse rather than write a document nobody can read.
  const year = whole.getUTCFullYear();
  if (year < 0 || year > 9999) {
    throw new MooringError(
      'MALFORMED',
      `cannot encode the date ${whole.toISOString()} in an XML plist (years 0000–9999 only)`,
    );
  }
  return whole.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** How an integral JS number or bigint is written: in-range integers, else undefined (→ real). */
export function integerValue(v: number | bigint): bigint | undefined {
  if (typeof v === 'bigint') {
    if (v < INT64_MIN || v > UINT64_MAX) {
      throw new MooringError('MALFORMED', `integer ${v} is outside the plist range −2^63…2^64−1`);
    }
    return v;
  }
  if (!Number.isInteger(v)) return undefined;
  const b = BigInt(v);
  return b < INT64_MIN || b > UINT64_MAX ? undefined : b;
}

class XmlWriter {
  private parts: string[] = [];

  write(v: PlistValue, depth: number): void {
    if (depth > MAX_ENCODE_DEPTH) {
      throw new MooringError(
        'LIMIT',
        `plist nests deeper than ${MAX_ENCODE_DEPTH} levels while encoding (a cycle?)`,
      );
    }
    const ind = '\t'.repeat(depth);
    const p = this.parts;
    switch (typeof v) {
      case 'string':
        p.push(`${ind}<string>${escapeText(v)}</string>\n`);
        return;
      case 'boolean':
        p.push(v ? `${ind}<true/>\n` : `${ind}<false/>\n`);
        return;
      case 'number':
      case 'bigint': {
        const i = integerValue(v);
        if (i !== undefined) p.push(`${ind}<integer>${i}</integer>\n`);
        else p.push(`${ind}<real>${formatReal(v as number)}</real>\n`);
        return;
      }
      case 'object':
        break;
      default:
        throw new MooringError('MALFORMED', `cannot encode a ${typeof v} in a plist`);
    }
    if (v === null) throw new MooringError('MALFORMED', 'cannot encode null in a plist');
    if (v instanceof PlistReal) {
      p.push(`${ind}<real>${formatReal(v.value)}</real>\n`);
    } else if (v instanceof Date) {
      p.push(`${ind}<date>${formatXmlDate(v)}</date>\n`);
    } else if (Buffer.isBuffer(v)) {
      this.writeData(v, depth);
    } else if (v instanceof PlistUid) {
      // XML has no UID type; Apple and libplist write the CF$UID dict.
      p.push(
        `${ind}<dict>\n${ind}\t<key>CF$UID</key>\n${ind}\t<integer>${v.value}</integer>\n${ind}</dict>\n`,
      );
    } else if (Array.isArray(v)) {
      if (v.length === 0) {
        p.push(`${ind}<array/>\n`);
        return;
      }
      p.push(`${ind}<array>\n`);
      for (const item of v) this.write(item, depth + 1);
      p.push(`${ind}</array>\n`);
    } else if (v instanceof Uint8Array) {
      this.writeData(Buffer.from(v.buffer, v.byteOffset, v.byteLength), depth);
    } else {
      const keys = Object.keys(v);
      if (keys.length === 0) {
        p.push(`${ind}<dict/>\n`);
        return;
      }
      p.push(`${ind}<dict>\n`);
      for (const k of keys) {
        const item = v[k];
        if (item === undefined) continue; // optional fields left unset are simply absent
        p.push(`${ind}\t<key>${escapeText(k)}</key>\n`);
        this.write(item, depth + 1);
      }
      p.push(`${ind}</dict>\n`);
    }
  }

  /** Base64 in lines whose width shrinks with the indentation, as libplist lays it out. */
  private writeData(b: Buffer, depth: number): void {
    const ind = '\t'.repeat(depth);
    const b64 = b.toString('base64');
    const width = Math.max(16, 76 - 8 * depth) & ~3;
    const p = this.parts;
    p.push(`${ind}<data>\n`);
    for (let i = 0; i < b64.length; i += width) p.push(`${ind}${b64.slice(i, i + width)}\n`);
    p.push(`${ind}</data>\n`);
  }

  result(): string {
    return this.parts.join('');
  }
}

/** Serializes a value as an XML plist with Apple's header and DOCTYPE, tab-indented like libplist. */
export function encodeXmlPlist(v: PlistValue): Buffer {
  const w = new XmlWriter();
  w.write(v, 0);
  return Buffer.from(`${XML_HEADER}${w.result()}</plist>\n`, 'utf8');
}
