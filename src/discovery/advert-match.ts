/**
 * Which of our paired devices an advert is (reference §8.2). Policy, no I/O.
 *
 * Order, as netmuxd: the TXT authTag rule first, then the MAC in the instance name. A tag names
 * a host, so when several records share a HostID (pymobiledevice3 derives one HostID per
 * computer) the MAC narrows them down, and if it cannot the advert is ambiguous, never guessed.
 * An advert whose tags match none of our hosts still gets the MAC rule: a device that kept its
 * real MAC but forgot us should show up, so that connecting to it reports "pairing no longer
 * valid" instead of the device silently vanishing.
 */
import {
  authTagKey,
  isUsableHostId,
  macFromInstanceName,
  normaliseMac,
  txtMatchesHostKey,
  type Mobdev2Txt,
} from './txt-auth';

/** What matching needs from a pair record. */
export interface PairingKey {
  udid: string;
  hostId: string;
  wifiMac?: string;
}

export type MatchRule = 'authTag' | 'mac';

export type AdvertMatch =
  | { kind: 'matched'; udid: string; by: MatchRule }
  | { kind: 'ambiguous'; udids: string[]; by: MatchRule }
  | { kind: 'unknown' };

export interface AdvertIdentity {
  instanceName: string;
  txt: Mobdev2Txt;
}

/** Derives (and may cache) the HKDF key of a HostID. */
export type HostKeyFn = (hostId: string) => Buffer;

function distinct(udids: string[]): string[] {
  return [...new Set(udids)];
}

export function matchAdvert(
  advert: AdvertIdentity,
  records: readonly PairingKey[],
  keyFor: HostKeyFn = authTagKey,
): AdvertMatch {
  const mac = macFromInstanceName(advert.instanceName);
  const byMac = (rs: readonly PairingKey[]): PairingKey[] =>
    mac === undefined ? [] : rs.filter((r) => normaliseMac(r.wifiMac) === mac);

  if (advert.txt.identifier && advert.txt.authTags.length > 0) {
    const tagged = records.filter(
      (r) => isUsableHostId(r.hostId) && txtMatchesHostKey(advert.txt, keyFor(r.hostId)),
    );
    const udids = distinct(tagged.map((r) => r.udid));
    if (udids.length === 1) return { kind: 'matched', udid: udids[0]!, by: 'authTag' };
    if (udids.length > 1) {
      const narrowed = distinct(byMac(tagged).map((r) => r.udid));
      if (narrowed.length === 1) return { kind: 'matched', udid: narrowed[0]!, by: 'authTag' };
      return { kind: 'ambiguous', udids: udids.sort(), by: 'authTag' };
    }
  }
  const udids = distinct(byMac(records).map((r) => r.udid));
  if (udids.length === 1) return { kind: 'matched', udid: udids[0]!, by: 'mac' };
  if (udids.length > 1) return { kind: 'ambiguous', udids: udids.sort(), by: 'mac' };
  return { kind: 'unknown' };
}
