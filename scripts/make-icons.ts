/**
 * Draws Mooring's icons and writes them into assets/: the app icon (PNG sizes for Linux, an .ico
 * for Windows, a 512 px PNG electron-builder turns into the macOS .icns) and the tray icons for
 * each state (idle, backing-up, attention, paused): macOS template images (black + alpha, 16 px
 * and @2x), Windows .ico, Linux PNGs 16–512.
 *
 * The mark is an anchor; tray states add a small badge (an arrow, "!", or pause bars). Shapes are
 * signed distance functions, so every size is drawn from the geometry with smooth edges rather
 * than scaled from a bitmap. The PNG and ICO encoders are our own (zlib + CRC32), so the outputs
 * depend on nothing but Node. Run: `node --import tsx scripts/make-icons.ts [outDir]`; the
 * outputs are committed and test/electron/icons.test.ts checks they match this script.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

// ---- PNG and ICO ---------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(...parts: Buffer[]): number {
  let c = 0xffffffff;
  for (const b of parts)
    for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(head.subarray(4), data), 0);
  return Buffer.concat([head, data, crc]);
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** 8-bit RGBA, non-interlaced; filter type 0 on every row (simple and deterministic). */
export function encodePng(width: number, height: number, rgba: Uint8Array): Buffer {
  if (rgba.length !== width * height * 4) throw new Error('encodePng: pixel buffer size mismatch');
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type RGBA
  // compression 0, filter 0, interlace 0
  const raw = Buffer.alloc((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 4 + 1)] = 0;
    raw.set(rgba.subarray(y * width * 4, (y + 1) * width * 4), y * (width * 4 + 1) + 1);
  }
  const idat = zlib.deflateSync(raw, { level: 9 });
  return Buffer.concat([
    PNG_SIGNATURE,
    chunk('IHDR', ihdr),
    chunk('IDAT', idat),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** An .ico whose images are PNGs (Windows Vista and later read them at every size). */
export function encodeIco(images: { size: number; png: Buffer }[]): Buffer {
  const header = Buffer.alloc(6);
  header.writeUInt16LE(0, 0);
  header.writeUInt16LE(1, 2); // type: icon
  header.writeUInt16LE(images.length, 4);
  const entries: Buffer[] = [];
  let offset = 6 + 16 * images.length;
  for (const { size, png } of images) {
    const e = Buffer.alloc(16);
    e[0] = size >= 256 ? 0 : size; // 0 means 256
    e[1] = size >= 256 ? 0 : size;
    e[2] = 0; // palette colours
    e[3] = 0;
    e.writeUInt16LE(1, 4); // planes
    e.writeUInt16LE(32, 6); // bits per pixel
    e.writeUInt32LE(png.length, 8);
    e.writeUInt32LE(offset, 12);
    offset += png.length;
    entries.push(e);
  }
  return Buffer.concat([header, ...entries, ...images.map((i) => i.png)]);
}

// ---- geometry (unit square, y down) --------------------------------------------------------

type Sdf = (x: number, y: number) => number;

/** Math.hypot is several times slower and needs no overflow care at these scales. */
const len = (x: number, y: number): number => Math.sqrt(x * x + y * y);

const circle =
  (cx: number, cy: number, r: number): Sdf =>
  (x, y) =>
    len(x - cx, y - cy) - r;

const ring =
  (cx: number, cy: number, r: number, w: number): Sdf =>
  (x, y) =>
    Math.abs(len(x - cx, y - cy) - r) - w / 2;

/** A line from a to b with round ends, radius r. */
function capsule(ax: number, ay: number, bx: number, by: number, r: number): Sdf {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  return (x, y) => {
    const t = Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / len2));
    return len(x - ax - t * dx, y - ay - t * dy) - r;
  };
}

/** The part of a ring between angles a0..a1 (radians, y down), with round ends. */
function arc(cx: number, cy: number, r: number, w: number, a0: number, a1: number): Sdf {
  const [e0x, e0y, e1x, e1y] = [
    cx + r * Math.cos(a0),
    cy + r * Math.sin(a0),
    cx + r * Math.cos(a1),
    cy + r * Math.sin(a1),
  ];
  return (x, y) => {
    const a = Math.atan2(y - cy, x - cx);
    if (a >= a0 && a <= a1) return Math.abs(len(x - cx, y - cy) - r) - w / 2;
    return Math.min(len(x - e0x, y - e0y), len(x - e1x, y - e1y)) - w / 2;
  };
}

/** A filled triangle (exact distance outside, negative inside). */
function triangle(p: readonly (readonly [number, number])[]): Sdf {
  const pts = p.flat();
  const orient = Math.sign(
    (pts[2]! - pts[0]!) * (pts[5]! - pts[1]!) - (pts[3]! - pts[1]!) * (pts[4]! - pts[0]!),
  );
  return (x, y) => {
    let d = Infinity;
    let inside = true;
    for (let i = 0; i < 3; i++) {
      const px = pts[2 * i]!;
      const py = pts[2 * i + 1]!;
      const ex = pts[(2 * i + 2) % 6]! - px;
      const ey = pts[(2 * i + 3) % 6]! - py;
      const t = Math.max(0, Math.min(1, ((x - px) * ex + (y - py) * ey) / (ex * ex + ey * ey)));
      d = Math.min(d, len(x - px - t * ex, y - py - t * ey));
      if (Math.sign(ex * (y - py) - ey * (x - px)) === -orient) inside = false;
    }
    return inside ? -d : d;
  };
}

function roundBox(cx: number, cy: number, half: number, r: number): Sdf {
  return (x, y) => {
    const qx = Math.abs(x - cx) - half + r;
    const qy = Math.abs(y - cy) - half + r;
    return len(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0) - r;
  };
}

const union =
  (...s: Sdf[]): Sdf =>
  (x, y) => {
    let d = Infinity;
    for (const f of s) d = Math.min(d, f(x, y));
    return d;
  };

/** The same shape drawn smaller around (cx, cy). */
const scaled =
  (s: Sdf, k: number, cx = 0.5, cy = 0.5): Sdf =>
  (x, y) =>
    s(cx + (x - cx) / k, cy + (y - cy) / k) * k;

const STROKE = 0.09;
const ANCHOR: Sdf = (() => {
  const armR = 0.33;
  const armC = [0.5, 0.5] as const;
  const a0 = (22 * Math.PI) / 180;
  const a1 = Math.PI - a0;
  const fluke = (a: number, side: 1 | -1): Sdf => {
    const ex = armC[0] + armR * Math.cos(a);
    const ey = armC[1] + armR * Math.sin(a);
    // Tangent pointing up and outward, and the arm's normal.
    const tx = side * Math.sin(a0);
    const ty = -Math.cos(a0);
    const nx = Math.cos(a);
    const ny = Math.sin(a);
    return triangle([
      [ex + 0.17 * tx, ey + 0.17 * ty],
      [ex + 0.09 * nx, ey + 0.09 * ny],
      [ex - 0.09 * nx, ey - 0.09 * ny],
    ]);
  };
  return union(
    ring(0.5, 0.15, 0.075, STROKE),
    capsule(0.5, 0.225, 0.5, 0.83, STROKE / 2),
    capsule(0.3, 0.35, 0.7, 0.35, STROKE / 2),
    arc(armC[0], armC[1], armR, STROKE, a0, a1),
    fluke(a0, 1),
    fluke(a1, -1),
  );
})();

export type IconState = 'idle' | 'backing-up' | 'attention' | 'paused';
export const ICON_STATES: readonly IconState[] = ['idle', 'backing-up', 'attention', 'paused'];

const BADGE = { x: 0.75, y: 0.75, r: 0.24, clearance: 0.31 };
const SYMBOL_R = 0.04;

function badgeSymbol(state: IconState): Sdf | undefined {
  const { x, y } = BADGE;
  switch (state) {
    case 'attention':
      return union(
        capsule(x, y - 0.125, x, y - 0.02, SYMBOL_R),
        circle(x, y + 0.1, SYMBOL_R * 1.05),
      );
    case 'paused':
      return union(
        capsule(x - 0.06, y - 0.085, x - 0.06, y + 0.085, SYMBOL_R),
        capsule(x + 0.06, y - 0.085, x + 0.06, y + 0.085, SYMBOL_R),
      );
    case 'backing-up':
      return union(
        capsule(x, y - 0.12, x, y + 0.1, SYMBOL_R),
        capsule(x - 0.085, y + 0.02, x, y + 0.1, SYMBOL_R),
        capsule(x + 0.085, y + 0.02, x, y + 0.1, SYMBOL_R),
      );
    case 'idle':
      return undefined;
  }
}

// ---- rasteriser ----------------------------------------------------------------------------

type Rgb = readonly [number, number, number];

/** Premultiplied float RGBA, painted with coverage from a distance field. */
class Canvas {
  readonly px: Float64Array;
  constructor(readonly size: number) {
    this.px = new Float64Array(size * size * 4);
  }

  private each(s: Sdf, f: (i: number, coverage: number) => void): void {
    const n = this.size;
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        // Distance in pixels; a half-pixel ramp gives the edge its antialiasing.
        const d = s((x + 0.5) / n, (y + 0.5) / n) * n;
        const c = d <= -0.5 ? 1 : d >= 0.5 ? 0 : 0.5 - d;
        if (c > 0) f((y * n + x) * 4, c);
      }
    }
  }

  fill(s: Sdf, [r, g, b]: Rgb): void {
    this.each(s, (i, c) => {
      const k = 1 - c;
      this.px[i] = (r / 255) * c + this.px[i]! * k;
      this.px[i + 1] = (g / 255) * c + this.px[i + 1]! * k;
      this.px[i + 2] = (b / 255) * c + this.px[i + 2]! * k;
      this.px[i + 3] = c + this.px[i + 3]! * k;
    });
  }

  clear(s: Sdf): void {
    this.each(s, (i, c) => {
      for (let j = 0; j < 4; j++) this.px[i + j] = this.px[i + j]! * (1 - c);
    });
  }

  rgba(): Uint8Array {
    const out = new Uint8Array(this.size * this.size * 4);
    for (let i = 0; i < out.length; i += 4) {
      const a = this.px[i + 3]!;
      if (a <= 0) continue;
      for (let j = 0; j < 3; j++) out[i + j] = Math.round(Math.min(1, this.px[i + j]! / a) * 255);
      out[i + 3] = Math.round(Math.min(1, a) * 255);
    }
    return out;
  }
}

const BLUE: Rgb = [0x1d, 0x6f, 0xd6];
const WHITE: Rgb = [0xff, 0xff, 0xff];
const BLACK: Rgb = [0, 0, 0];
const BADGE_COLOURS: Record<IconState, Rgb> = {
  idle: WHITE,
  'backing-up': [0x2f, 0xa4, 0x6c],
  attention: [0xe5, 0x48, 0x4d],
  paused: [0x7c, 0x7f, 0x8a],
};

/** The app icon, and the coloured tray icon (Windows, Linux): a white anchor on a blue tile. */
export function drawColour(size: number, state: IconState): Uint8Array {
  const c = new Canvas(size);
  c.fill(roundBox(0.5, 0.5, 0.47, 0.2), BLUE);
  c.fill(scaled(ANCHOR, 0.74), WHITE);
  const symbol = badgeSymbol(state);
  if (symbol) {
    c.clear(circle(BADGE.x, BADGE.y, BADGE.clearance));
    c.fill(circle(BADGE.x, BADGE.y, BADGE.r), BADGE_COLOURS[state]);
    c.fill(symbol, WHITE);
  }
  return c.rgba();
}

/** A macOS template image: black with alpha only; the system tints it for light and dark bars. */
export function drawTemplate(size: number, state: IconState): Uint8Array {
  const c = new Canvas(size);
  c.fill(scaled(ANCHOR, 0.94), BLACK);
  const symbol = badgeSymbol(state);
  if (symbol) {
    c.clear(circle(BADGE.x, BADGE.y, BADGE.clearance));
    c.fill(circle(BADGE.x, BADGE.y, BADGE.r), BLACK);
    c.clear(symbol);
  }
  return c.rgba();
}

// ---- the files -----------------------------------------------------------------------------

export const APP_ICON_SIZES = [16, 24, 32, 48, 64, 128, 256, 512] as const;
export const APP_ICO_SIZES = [16, 24, 32, 48, 64, 128, 256] as const;
export const TRAY_LINUX_SIZES = [16, 24, 32, 48, 64, 128, 256, 512] as const;
export const TRAY_ICO_SIZES = [16, 20, 24, 32, 40, 48] as const;

const png = (size: number, rgba: Uint8Array): Buffer => encodePng(size, size, rgba);

/** Every icon file, by path relative to assets/. */
export function iconFiles(): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const colour = new Map<string, Buffer>();
  const colourPng = (size: number, state: IconState): Buffer => {
    const key = `${state}:${size}`;
    let b = colour.get(key);
    if (!b) colour.set(key, (b = png(size, drawColour(size, state))));
    return b;
  };
  for (const size of APP_ICON_SIZES)
    files.set(`icons/${size}x${size}.png`, colourPng(size, 'idle'));
  files.set('icon.png', colourPng(512, 'idle'));
  files.set(
    'icon.ico',
    encodeIco(APP_ICO_SIZES.map((size) => ({ size, png: colourPng(size, 'idle') }))),
  );
  for (const state of ICON_STATES) {
    files.set(`tray/mac/tray-${state}Template.png`, png(16, drawTemplate(16, state)));
    files.set(`tray/mac/tray-${state}Template@2x.png`, png(32, drawTemplate(32, state)));
    files.set(
      `tray/win/tray-${state}.ico`,
      encodeIco(TRAY_ICO_SIZES.map((size) => ({ size, png: colourPng(size, state) }))),
    );
    for (const size of TRAY_LINUX_SIZES) {
      files.set(`tray/linux/tray-${state}-${size}.png`, colourPng(size, state));
    }
  }
  return files;
}

export function writeIcons(outDir: string): string[] {
  const written: string[] = [];
  for (const [rel, data] of iconFiles()) {
    const file = path.join(outDir, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, data);
    written.push(rel);
  }
  return written;
}

if (require.main === module) {
  const out = path.resolve(process.argv[2] ?? path.join(__dirname, '..', 'assets'));
  const files = writeIcons(out);
  console.log(`wrote ${files.length} icon files to ${out}`);
}
