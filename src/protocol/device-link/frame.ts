/**
 * A device's DL message read from its frame (the plist bytes). A binary MoveItems is read where
 * it lies: its dictionary of paths is checked in place and its moves are decoded a pair at a time
 * as the host carries them out. Decoded whole, a message of 5,000 moves made ~10,000 strings, a
 * dictionary and the pairs, ~2 MB that outlived the young generation and was promoted, only to be
 * thrown away; over a phone's 500,000 files that was most of the backup's old-generation garbage
 * (D51). Every other message, and any MoveItems this reading would not accept, is decoded whole
 * and parsed by `parseDeviceDlMessage`, so what is refused, and why, is decided in one place.
 */
import { MooringError } from '../../util/errors';
import { BinaryPlistReader, isBinaryPlist, type BinaryStringPairs } from '../plist/binary';
import { decodePlist } from '../plist';
import type { PlistLimits } from '../plist/types';
import {
  DlMessageName,
  MAX_DL_MESSAGE_ELEMENTS,
  MAX_DL_PATHS_PER_MESSAGE,
  dlPathAcceptable,
  dlProgress,
  parseDeviceDlMessage,
  type DeviceDlMessage,
  type DlMoves,
} from './messages';

/**
 * Where a MoveItems frame's moves are read from, and for how long: `current` turns false once the
 * bytes may have been reused (the connection reads every frame into one buffer, D52).
 */
export interface KeptFrame {
  buf: Buffer;
  current: () => boolean;
}

const AS_IT_CAME = (frame: Buffer): KeptFrame => ({ buf: frame, current: () => true });

/**
 * The message in `frame`, validated as `parseDeviceDlMessage` validates it. `keep` decides where a
 * MoveItems frame's bytes stay while its moves are read (by default, the frame itself).
 */
export function parseDeviceDlFrame(
  frame: Buffer,
  limits?: Partial<PlistLimits>,
  keep: (frame: Buffer) => KeptFrame = AS_IT_CAME,
): DeviceDlMessage {
  if (isBinaryPlist(frame)) {
    try {
      const moves = movesInPlace(frame, limits, keep);
      if (moves) return moves;
    } catch (e) {
      // Refused here: the whole decode below says why, as for any other message.
      if (!(e instanceof MooringError)) throw e;
    }
  }
  return parseDeviceDlMessage(decodePlist(frame, limits));
}

/** The MoveItems in `frame`, read in place; undefined when it is another message or not acceptable. */
function movesInPlace(
  frame: Buffer,
  limits: Partial<PlistLimits> | undefined,
  keep: (frame: Buffer) => KeptFrame,
): DeviceDlMessage | undefined {
  const first = new BinaryPlistReader(frame, limits);
  const elements = first.topArray();
  if (elements === undefined || elements.length < 4 || elements.length > MAX_DL_MESSAGE_ELEMENTS)
    return undefined;
  const name = first.stringAt(elements[0]!);
  if (name !== DlMessageName.MOVE_ITEMS && name !== DlMessageName.MOVE_FILES) return undefined;
  const kept = keep(frame);
  const reader = kept.buf === frame ? first : new BinaryPlistReader(kept.buf, limits);
  const pairs = reader.stringPairs(elements[1]!, 1);
  if (pairs === undefined || pairs.count > MAX_DL_PATHS_PER_MESSAGE) return undefined;
  for (let i = 0; i < pairs.count; i++) {
    if (!acceptable(reader, pairs.keyRef(i)) || !acceptable(reader, pairs.valueRef(i)))
      return undefined;
  }
  // The rest is small ({} and the progress); decoded, so a fault in it is refused as before, and
  // counted with the name and the dictionary's values, as the whole decode bounds the message.
  let progress: number | undefined;
  let values = 1 + 1 + 1 + pairs.count;
  for (let i = 2; i < elements.length; i++) {
    const [v, size] = reader.decodeCounted(elements[i]!, 1);
    values += size;
    if (i === 3) progress = dlProgress(v);
  }
  if (values > reader.maxObjects) return undefined;
  return { type: 'MoveItems', name, moves: new FrameMoves(pairs, kept.current), progress };
}

function acceptable(reader: BinaryPlistReader, ref: number): boolean {
  return dlPathAcceptable(reader.utf8Length(ref), reader.containsNul(ref));
}

/**
 * A MoveItems dictionary's pairs, each decoded when it is reached. As in the device's frame: a key
 * sent twice is two moves (a decoded dictionary would have kept the last), which a device does not
 * send, and a hostile one gains nothing by (each move is confined as any other).
 */
class FrameMoves implements DlMoves {
  constructor(
    private readonly pairs: BinaryStringPairs,
    private readonly current: () => boolean,
  ) {}

  *[Symbol.iterator](): Iterator<[from: string, to: string]> {
    for (let i = 0; i < this.pairs.count; i++) {
      if (!this.current())
        throw new Error('a MoveItems message was read after the next message had arrived');
      yield [this.pairs.key(i), this.pairs.value(i)];
    }
  }
}
