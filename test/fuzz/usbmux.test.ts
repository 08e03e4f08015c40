// Fuzzing the usbmuxd codecs (src/protocol/usbmux): headers, framed reads, plist messages,
// device lists and events, the binary protocol, NetworkAddress sockaddrs, UDID spellings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  buildAttached,
  buildDetached,
  buildPaired,
  buildRequest,
  decodeBinaryConnectRequest,
  decodeBinaryDeviceRecord,
  decodePlistMessage,
  decodeUsbmuxHeader,
  encodeBinaryConnectRequest,
  encodeBinaryDeviceAdd,
  encodeNetworkAddress,
  encodeUsbmuxMessage,
  isValidPairRecordId,
  normaliseUdid,
  parseDeviceList,
  parseMuxEvent,
  parseNetworkAddress,
  readUsbmuxFrame,
  swapPortBytes,
  udidsMatch,
  usbSerialForUdid,
  USBMUX_HEADER_BYTES,
} from '../../src/protocol/usbmux';
import {
  encodeBinaryPlist,
  encodeXmlPlist,
  isPlistDict,
  type PlistDict,
  type PlistValue,
} from '../../src/protocol/plist';
import {
  anyPlistValue,
  bytesWithPrefix,
  chunkings,
  dictOf,
  endedReader,
  fuzzParams,
  mutated,
  onlyMooringErrors,
  onlyMooringErrorsAsync,
  testTimeoutMs,
} from './harness';

const T = { timeout: testTimeoutMs() };
const hex = (minLength: number, maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength, maxLength });

test(
  'usbmux header: random bytes decode within the bound or fail MALFORMED/FRAME_TOO_LARGE',
  T,
  () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 24 }),
        fc.integer({ min: 16, max: 1 << 20 }),
        (u, max) => {
          const h = onlyMooringErrors(
            () => decodeUsbmuxHeader(Buffer.from(u), max),
            ['MALFORMED', 'FRAME_TOO_LARGE'],
          );
          if (h) assert.ok(h.length >= USBMUX_HEADER_BYTES && h.length <= max);
        },
      ),
      fuzzParams(),
    );
  },
);

test('usbmux frames: a stream of messages reads back; hostile bytes settle', T, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.nat(0xffffffff), fc.uint8Array({ maxLength: 64 })), { maxLength: 4 }),
      fc.uint8Array({ maxLength: 40 }),
      chunkings,
      async (msgs, junk, chunks) => {
        const wire = Buffer.concat([
          ...msgs.map(([tag, p]) => encodeUsbmuxMessage(1, 8, tag, Buffer.from(p))),
          Buffer.from(junk),
        ]);
        const reader = endedReader(wire, chunks);
        for (const [tag, p] of msgs) {
          const f = await readUsbmuxFrame(reader, 5_000);
          assert.equal(f.header.tag, tag);
          assert.deepEqual(f.payload, Buffer.from(p));
        }
        // Whatever follows: frames, MALFORMED/FRAME_TOO_LARGE, or CLOSED at the end.
        for (let i = 0; i < junk.length; i++) {
          const f = await onlyMooringErrorsAsync(
            () => readUsbmuxFrame(reader, 5_000, 'x', 4096),
            ['MALFORMED', 'FRAME_TOO_LARGE', 'CLOSED'],
          );
          if (!f) break;
        }
      },
    ),
    fuzzParams(0.5),
  );
});

/** Dicts shaped like usbmuxd's messages, with every field sometimes of a wrong type. */
const field = (good: fc.Arbitrary<PlistValue>): fc.Arbitrary<PlistValue | undefined> =>
  fc.oneof(
    { arbitrary: good, weight: 4 },
    { arbitrary: anyPlistValue, weight: 1 },
    fc.constant(undefined),
  );

const deviceProps = fc
  .record({
    DeviceID: field(fc.nat(0xffffffff)),
    SerialNumber: field(fc.oneof(hex(24, 40), fc.string({ maxLength: 300 }))),
    ConnectionType: field(fc.constantFrom('USB', 'Network', 'WiFi', 'Bluetooth')),
    ProductID: field(fc.nat(0xffff)),
    LocationID: field(fc.nat()),
    NetworkAddress: field(fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u))),
  })
  .map((r) =>
    dictOf(Object.entries(r).filter((e): e is [string, PlistValue] => e[1] !== undefined)),
  );

const muxMessage: fc.Arbitrary<PlistDict> = fc.oneof(
  fc.tuple(fc.nat(), deviceProps).map(([id, p]) => buildAttached(id, p)),
  fc.nat().map(buildDetached),
  fc.nat().map(buildPaired),
  fc
    .array(
      fc.oneof(
        deviceProps.map((p) => buildAttached(1, p)),
        anyPlistValue,
      ),
      { maxLength: 4 },
    )
    .map((list) => ({ MessageType: 'Result', DeviceList: list })),
  fc
    .tuple(fc.constantFrom('Attached', 'Detached', 'Paired', 'Result', 'Other'), anyPlistValue)
    .map(([t, v]) =>
      dictOf([
        ['MessageType', t],
        ['DeviceID', v],
        ['Properties', v],
        ['DeviceList', v],
        ['Number', v],
      ]),
    ),
);

test('usbmux plist messages: device lists and events parse or fail with a MooringError', T, () => {
  fc.assert(
    fc.property(muxMessage, (msg) => {
      // Binary, so every generated value survives the trip (XML refuses some dates).
      const decoded = onlyMooringErrors(
        () => decodePlistMessage(encodeBinaryPlist(msg)),
        ['LIMIT'],
      );
      if (decoded === undefined) return; // nested deeper than usbmux's 8 levels
      assert.ok(isPlistDict(decoded));
      const list = onlyMooringErrors(() => parseDeviceList(decoded), ['PROTOCOL']);
      if (list) {
        for (const d of list.devices) {
          assert.ok(d.serialNumber.length > 0 && d.serialNumber.length <= 255);
          assert.ok(d.connectionType === 'USB' || d.networkAddress !== undefined);
        }
      }
      onlyMooringErrors(() => parseMuxEvent(decoded), ['MALFORMED']);
    }),
    fuzzParams(),
  );
});

test('usbmux plist payloads: random and mutated bytes give a dict or MALFORMED/LIMIT', T, () => {
  const samples = [
    encodeXmlPlist(buildRequest('Listen')),
    encodeXmlPlist(
      buildAttached(3, { DeviceID: 3, SerialNumber: 'a'.repeat(24), ConnectionType: 'USB' }),
    ),
  ];
  fc.assert(
    fc.property(fc.oneof(mutated(samples), bytesWithPrefix([Buffer.from('bplist00')])), (buf) => {
      onlyMooringErrors(() => decodePlistMessage(buf), ['MALFORMED', 'LIMIT']);
    }),
    fuzzParams(),
  );
});

test('usbmux binary protocol: records round-trip; short payloads are MALFORMED', T, () => {
  fc.assert(
    fc.property(
      fc.record({
        deviceId: fc.nat(0xffffffff),
        productId: fc.nat(0xffff),
        serialNumber: hex(0, 255),
        locationId: fc.nat(0xffffffff),
      }),
      fc.nat(0xffff),
      fc.uint8Array({ maxLength: 300 }),
      (r, port, junk) => {
        const rec = { ...r };
        const add = encodeBinaryDeviceAdd(rec).subarray(USBMUX_HEADER_BYTES);
        assert.deepEqual(decodeBinaryDeviceRecord(add), rec);
        const conn = encodeBinaryConnectRequest(1, rec.deviceId, port).subarray(
          USBMUX_HEADER_BYTES,
        );
        assert.deepEqual(decodeBinaryConnectRequest(conn), { deviceId: rec.deviceId, port });
        onlyMooringErrors(() => decodeBinaryDeviceRecord(Buffer.from(junk)), ['MALFORMED']);
        onlyMooringErrors(() => decodeBinaryConnectRequest(Buffer.from(junk)), ['MALFORMED']);
      },
    ),
    fuzzParams(),
  );
});

test(
  'NetworkAddress: every layout round-trips; random sockaddrs parse or fail MALFORMED',
  T,
  () => {
    const v4 = fc.ipV4().map((address) => ({ family: 4 as const, address }));
    const v6 = fc
      .tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.nat(0xffffffff))
      .map(([b, scope]) => {
        const groups: string[] = [];
        for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
        const address = new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
        return scope
          ? { family: 6 as const, address, scopeId: scope }
          : { family: 6 as const, address };
      });
    fc.assert(
      fc.property(
        fc.oneof(v4, v6),
        fc.constantFrom('linux' as const, 'darwin' as const, 'windows' as const),
        fc.uint8Array({ maxLength: 130 }),
        (addr, layout, junk) => {
          const back = parseNetworkAddress(encodeNetworkAddress(addr, layout));
          // Dotted quads with leading zeros are not produced by fc.ipV4; compare as written.
          assert.deepEqual(back, addr);
          onlyMooringErrors(() => parseNetworkAddress(Buffer.from(junk)), ['MALFORMED']);
        },
      ),
      fuzzParams(),
    );
  },
);

test(
  'UDID spellings: normalise/serial are inverse for 24-digit UDIDs; pair-record ids stay in their folder',
  T,
  () => {
    fc.assert(
      fc.property(hex(24, 24), fc.nat(0xffff), fc.string({ maxLength: 140 }), (hex, port, id) => {
        const udid = normaliseUdid(hex);
        assert.equal(usbSerialForUdid(udid), hex);
        assert.ok(udidsMatch(udid, hex.toUpperCase()));
        assert.equal(swapPortBytes(swapPortBytes(port)), port);
        if (isValidPairRecordId(id)) {
          assert.ok(
            !id.includes('/') && !id.includes('\\') && !id.includes('..') && !id.includes('\0'),
          );
        }
      }),
      fuzzParams(),
    );
  },
);
