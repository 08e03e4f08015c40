/**
 * The committed icons in assets/ are exactly what scripts/make-icons.ts draws, and every file is
 * a valid PNG or ICO: signature, chunk CRCs, IHDR, image data that inflates to the right size;
 * ICO directories whose entries are such PNGs at the sizes they claim. Template images (macOS)
 * are black with alpha only.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import {
  crc32,
  ICON_STATES,
  PNG_SIGNATURE,
  TRAY_ICO_SIZES,
  writeIcons,
} from '../../scripts/make-icons';

const ASSETS = path.join(__dirname, '..', '..', 'assets');

interface Png {
  width: number;
  height: number;
  pixels: Buffer;
}

/** A strict reader for what our encoder writes: 8-bit RGBA, non-interlaced, filter 0. */
function parsePng(b: Buffer, what: string): Png {
  assert.ok(b.subarray(0, 8).equals(PNG_SIGNATURE), `${what}: PNG signature`);
  let off = 8;
  const chunks: { type: string; data: Buffer }[] = [];
  while (off < b.length) {
    const len = b.readUInt32BE(off);
    const type = b.toString('ascii', off + 4, off + 8);
    const data = b.subarray(off + 8, off + 8 + len);
    assert.equal(
      b.readUInt32BE(off + 8 + len),
      crc32(b.subarray(off + 4, off + 8), data),
      `${what}: ${type} CRC`,
    );
    chunks.push({ type, data });
    off += 12 + len;
  }
  assert.equal(off, b.length, `${what}: no trailing bytes`);
  assert.deepEqual(
    chunks.map((c) => c.type),
    ['IHDR', 'IDAT', 'IEND'],
    what,
  );
  const ihdr = chunks[0]!.data;
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  assert.deepEqual([...ihdr.subarray(8)], [8, 6, 0, 0, 0], `${what}: RGBA 8-bit, no interlace`);
  const raw = zlib.inflateSync(chunks[1]!.data);
  assert.equal(raw.length, (width * 4 + 1) * height, `${what}: image data size`);
  const pixels = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    assert.equal(raw[y * (width * 4 + 1)], 0, `${what}: filter type`);
    raw.copy(pixels, y * width * 4, y * (width * 4 + 1) + 1, (y + 1) * (width * 4 + 1));
  }
  return { width, height, pixels };
}

function parseIco(b: Buffer, what: string): { size: number; png: Png }[] {
  assert.equal(b.readUInt16LE(0), 0, `${what}: reserved`);
  assert.equal(b.readUInt16LE(2), 1, `${what}: type icon`);
  const n = b.readUInt16LE(4);
  assert.ok(n > 0, `${what}: has images`);
  const out: { size: number; png: Png }[] = [];
  for (let i = 0; i < n; i++) {
    const e = 6 + 16 * i;
    const size = b[e] === 0 ? 256 : b[e]!;
    assert.equal(b[e + 1] === 0 ? 256 : b[e + 1], size, `${what}: square`);
    assert.equal(b.readUInt16LE(e + 6), 32, `${what}: 32 bpp`);
    const len = b.readUInt32LE(e + 8);
    const at = b.readUInt32LE(e + 12);
    assert.ok(at + len <= b.length, `${what}: entry ${i} inside the file`);
    const png = parsePng(b.subarray(at, at + len), `${what}#${i}`);
    assert.equal(png.width, size, `${what}: entry ${i} size`);
    out.push({ size, png });
  }
  return out;
}

async function listFiles(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p, base)));
    else out.push(path.relative(base, p).split(path.sep).join('/'));
  }
  return out.sort();
}

describe('icons', () => {
  let tmp: string;
  let generated: string[];

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mooring-icons-'));
    generated = writeIcons(tmp).sort();
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  it('the committed assets are exactly what the script draws', async () => {
    assert.deepEqual(await listFiles(ASSETS), generated, 'same set of files');
    for (const rel of generated) {
      const committed = await readFile(path.join(ASSETS, rel));
      const fresh = await readFile(path.join(tmp, rel));
      assert.ok(
        committed.equals(fresh),
        `${rel} differs from scripts/make-icons.ts output: run it again`,
      );
    }
  });

  it('every PNG is valid and as large as its name says', async () => {
    for (const rel of generated.filter((f) => f.endsWith('.png'))) {
      const png = parsePng(await readFile(path.join(ASSETS, rel)), rel);
      assert.equal(png.width, png.height, rel);
      const named = /(\d+)x\d+\.png$|-(\d+)\.png$/.exec(rel);
      const size = Number(named?.[1] ?? named?.[2] ?? NaN);
      if (rel.endsWith('Template@2x.png')) assert.equal(png.width, 32, rel);
      else if (rel.endsWith('Template.png')) assert.equal(png.width, 16, rel);
      else if (rel === 'icon.png') assert.equal(png.width, 512, rel);
      else assert.equal(png.width, size, rel);
      // Something is drawn, and the corners stay transparent.
      assert.ok(
        png.pixels.some((v, i) => i % 4 === 3 && v === 255),
        `${rel}: has opaque pixels`,
      );
      assert.equal(png.pixels[3], 0, `${rel}: top-left corner transparent`);
    }
  });

  it('macOS template images are black with alpha only, and each state looks different', async () => {
    const seen = new Set<string>();
    for (const state of ICON_STATES) {
      for (const suffix of ['Template.png', 'Template@2x.png']) {
        const rel = `tray/mac/tray-${state}${suffix}`;
        const png = parsePng(await readFile(path.join(ASSETS, rel)), rel);
        for (let i = 0; i < png.pixels.length; i += 4) {
          assert.deepEqual(
            [...png.pixels.subarray(i, i + 3)],
            [0, 0, 0],
            `${rel}: pixel ${i / 4} is black`,
          );
        }
        seen.add(png.pixels.toString('base64'));
      }
    }
    assert.equal(seen.size, ICON_STATES.length * 2);
  });

  it('the .ico files hold PNGs at every size', async () => {
    for (const state of ICON_STATES) {
      const rel = `tray/win/tray-${state}.ico`;
      const images = parseIco(await readFile(path.join(ASSETS, rel)), rel);
      assert.deepEqual(
        images.map((i) => i.size),
        [...TRAY_ICO_SIZES],
        rel,
      );
    }
    const app = parseIco(await readFile(path.join(ASSETS, 'icon.ico')), 'icon.ico');
    assert.ok(app.some((i) => i.size === 256) && app.some((i) => i.size === 16));
  });

  it('the readers catch damage', async () => {
    const good = await readFile(path.join(ASSETS, 'icons/16x16.png'));
    const bad = Buffer.from(good);
    bad[40] = bad[40]! ^ 0xff; // inside IDAT
    assert.throws(() => parsePng(bad, 'damaged'), /CRC/);
    assert.throws(() => parsePng(good.subarray(0, 30), 'truncated'));
  });
});
