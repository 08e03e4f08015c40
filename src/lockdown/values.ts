/**
 * Lockdown values read once and answered later. A backup that runs on its own thread owns the
 * device's session there; whoever wants the device's values at that contact (the agent: name,
 * version, passcode, the Wi-Fi switch, WillEncrypt) names its reads up front, the job answers
 * them from the live session, and the answers come back as a reader that behaves like one.
 */
import { decodeBinaryPlist, encodeBinaryPlist } from '../protocol/plist';
import { isPlistDict, type PlistDict, type PlistValue } from '../protocol/plist/types';
import { MooringError } from '../util/errors';
import { fromWireError, toWireError, type WireError } from '../util/error-wire';

/** What a lockdown session answers; DeviceSession is one. */
export interface ValueReader {
  getValue(domain?: string, key?: string): Promise<PlistValue | undefined>;
  getDomain(domain?: string): Promise<PlistDict>;
}

/** One GetValue: a whole domain when `key` is absent (the default domain when both are). */
export interface ValueQuery {
  domain?: string;
  key?: string;
}

/** An answer as it crosses a thread: the value as a binary plist (keeps every plist type). */
export interface ValueAnswer {
  query: ValueQuery;
  plist?: Uint8Array;
  error?: WireError;
}

/** A domain's value as a dict, or the error lockdown's own getDomain gives. */
export function asDomain(domain: string | undefined, v: PlistValue | undefined): PlistDict {
  if (v === undefined) return {};
  if (!isPlistDict(v)) {
    throw new MooringError('MALFORMED', `lockdown domain ${domain ?? '(default)'} is not a dict`);
  }
  return v;
}

/** Asks each query of `reader`; a failed one is answered with its error, not thrown. */
export async function readAnswers(
  reader: ValueReader,
  queries: readonly ValueQuery[],
): Promise<ValueAnswer[]> {
  const answers: ValueAnswer[] = [];
  for (const query of queries) {
    try {
      const v = await reader.getValue(query.domain, query.key);
      answers.push(v === undefined ? { query } : { query, plist: encodeBinaryPlist({ v }) });
    } catch (e) {
      answers.push({ query, error: toWireError(e) });
    }
  }
  return answers;
}

/** Answers from a recording; a read that was not recorded is a bug in the list of reads. */
export class RecordedValues implements ValueReader {
  constructor(private readonly answers: readonly ValueAnswer[]) {}

  getValue(domain?: string, key?: string): Promise<PlistValue | undefined> {
    const a = this.answers.find((x) => x.query.domain === domain && x.query.key === key);
    if (!a) {
      const what = `${domain ?? '(default domain)'}${key === undefined ? '' : ` ${key}`}`;
      return Promise.reject(
        new MooringError('USAGE', `lockdown value ${what} was not among the reads asked for`),
      );
    }
    if (a.error) return Promise.reject(fromWireError(a.error));
    if (!a.plist) return Promise.resolve(undefined);
    const bytes = Buffer.from(a.plist.buffer, a.plist.byteOffset, a.plist.byteLength);
    const wrapped = decodeBinaryPlist(bytes);
    return Promise.resolve(isPlistDict(wrapped) ? wrapped.v : undefined);
  }

  async getDomain(domain?: string): Promise<PlistDict> {
    return asDomain(domain, await this.getValue(domain));
  }
}
