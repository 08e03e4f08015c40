/**
 * `npm run bench`: throughput of the pieces every backup byte goes through, printed as figures.
 *   1. plist codecs on a Manifest-sized structure (100,000 entries), binary and XML;
 *   2. the DeviceLink raw file stream over a real loopback TCP connection, plaintext and inside TLS
 *      with pairing certificates: one side encodes 32 KiB blocks, the other decodes them.
 * The end-to-end comparisons with idevicebackup2 come with the backup engine (issue 6).
 */
import net from 'node:net';
import os from 'node:os';
import { generateDeviceKeyPair, generatePairingCertificates } from '../src/pairing/certificates';
import {
  decodePlist,
  encodeBinaryPlist,
  encodeXmlPlist,
  type PlistDict,
} from '../src/protocol/plist';
import {
  DlFileStreamDecoder,
  encodeDlDataBlock,
  encodeDlPath,
  encodeDlStreamEnd,
  encodeDlSuccessBlock,
} from '../src/protocol/device-link';
import { PlistConnection } from '../src/transport/plist-connection';

function timeIt(fn: () => void, rounds: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) fn();
  return Number(process.hrtime.bigint() - t0) / 1e9 / rounds;
}

function plistBench(): void {
  const doc: PlistDict = {};
  for (let i = 0; i < 100_000; i++) {
    doc[`HomeDomain-Library/file-${i}`] = {
      Size: i * 13,
      Mode: 0o100644,
      LastModified: new Date(1_700_000_000_000 + i * 1000),
      Digest: Buffer.alloc(20, i & 0xff),
    };
  }
  const bin = encodeBinaryPlist(doc);
  const xml = encodeXmlPlist(doc);
  const rows = [
    ['binary encode', timeIt(() => encodeBinaryPlist(doc), 3), bin.length],
    ['binary decode', timeIt(() => decodePlist(bin), 3), bin.length],
    ['XML encode', timeIt(() => encodeXmlPlist(doc), 3), xml.length],
    ['XML decode', timeIt(() => decodePlist(xml), 3), xml.length],
  ] as const;
  console.log('plist, 100,000-entry dict of dicts:');
  for (const [name, s, bytes] of rows) {
    console.log(
      `  ${name.padEnd(14)} ${(s * 1000).toFixed(0).padStart(6)} ms  ${(bytes / 1e6 / s).toFixed(1).padStart(7)} MB/s  (${(bytes / 1e6).toFixed(1)} MB)`,
    );
  }
}

async function connectedPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect(port, '127.0.0.1');
  const sock = await accepted;
  server.close();
  return [client, sock];
}

/** Device side sends `totalBytes` as files of `fileBytes` each; host side decodes and discards. */
async function fileStreamBench(totalBytes: number, fileBytes: number, tls: boolean): Promise<void> {
  const [a, b] = await connectedPair();
  const device = new PlistConnection(a, { readTimeoutMs: 60_000 });
  const host = new PlistConnection(b, { readTimeoutMs: 60_000 });
  if (tls) {
    const deviceKey = generateDeviceKeyPair();
    const certs = generatePairingCertificates(deviceKey.publicKeyPkcs1Pem);
    await Promise.all([
      device.upgradeToTlsServer({
        cert: certs.deviceCertPem,
        key: deviceKey.privateKeyPem,
        requestCert: true,
      }),
      host.upgradeToTlsClient({ cert: certs.hostCertPem, key: certs.hostKeyPem }),
    ]);
  }
  const chunk = Buffer.alloc(32 * 1024, 0x5a);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const send = (async () => {
    const files = Math.ceil(totalBytes / fileBytes);
    for (let f = 0; f < files; f++) {
      await device.writeRaw(encodeDlPath(`/var/tmp/file-${f}`));
      await device.writeRaw(encodeDlPath(`UDID/Snapshot/${(f % 256).toString(16)}/file-${f}`));
      for (let sent = 0; sent < fileBytes; sent += chunk.length) {
        await device.writeRaw(
          encodeDlDataBlock(chunk.subarray(0, Math.min(chunk.length, fileBytes - sent))),
        );
      }
      await device.writeRaw(encodeDlSuccessBlock());
    }
    await device.writeRaw(encodeDlStreamEnd());
  })();
  const decoder = new DlFileStreamDecoder(host.reader);
  let received = 0;
  let files = 0;
  while ((await decoder.readPath()) !== null) {
    await decoder.readRequiredPath();
    for (;;) {
      const block = await decoder.readBlock();
      if (block.kind === 'data') received += block.data.length;
      else break;
    }
    files++;
  }
  await send;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  device.close();
  host.close();
  console.log(
    `  ${tls ? 'TLS      ' : 'plaintext'} ${(totalBytes / 1e6).toFixed(0)} MB in files of ${(fileBytes / 1024).toFixed(0)} KiB: ` +
      `${(received / 1e6 / seconds).toFixed(0)} MB/s, ${(files / seconds).toFixed(0)} files/s, ` +
      `CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s (both ends, one process)`,
  );
}

async function main(): Promise<void> {
  console.log(`Mooring benchmarks — ${new Date().toISOString()}`);
  console.log(`node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}`);
  plistBench();
  console.log('DeviceLink file stream over loopback TCP (encode + decode, data discarded):');
  await fileStreamBench(512 * 1024 * 1024, 4 * 1024 * 1024, false);
  await fileStreamBench(512 * 1024 * 1024, 4 * 1024 * 1024, true);
  await fileStreamBench(64 * 1024 * 1024, 4 * 1024, false);
  await fileStreamBench(64 * 1024 * 1024, 4 * 1024, true);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
