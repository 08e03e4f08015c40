/**
 * The agent's log on disk, `<data>/logs/agent.log`: what the tray app (which has no console) and a
 * headless agent run by a service manager both leave behind for "look at the agent log". Each
 * line is written at once with its time (a crash loses nothing written before it); past
 * `maxBytes` the file becomes agent.log.1 (the older ones shift up to `keep`) and a new one
 * begins, so it never fills a disk. A line is bounded and kept on one line: a device's words in it
 * cannot forge other lines or grow it without end.
 */
import fs from 'node:fs';
import path from 'node:path';

export const LOG_FILE_NAME = 'agent.log';
export const DEFAULT_LOG_MAX_BYTES = 2 * 1024 * 1024;
/** Rotated files kept beside the current one (agent.log.1 … agent.log.N). */
export const DEFAULT_LOG_KEEP = 2;
/** Characters of one line kept (the rest is cut, and says so). */
export const MAX_LOG_LINE_CHARS = 4096;
/** The most a tail returns. */
export const MAX_LOG_TAIL_BYTES = 1024 * 1024;

export function logFilePath(dataDir: string): string {
  return path.join(dataDir, 'logs', LOG_FILE_NAME);
}

/** One line as written: its time, then the text with control characters shown, bounded. */
export function formatLogLine(at: Date, line: string): string {
  // eslint-disable-next-line no-control-regex
  let text = line.replace(/\r?\n/g, ' ⏎ ').replace(/[\u0000-\u001f\u007f]/g, (c) => {
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
  if (text.length > MAX_LOG_LINE_CHARS) {
    text = `${text.slice(0, MAX_LOG_LINE_CHARS)} … (${text.length - MAX_LOG_LINE_CHARS} more characters)`;
  }
  return `${at.toISOString()} ${text}\n`;
}

export interface LogFileOptions {
  maxBytes?: number;
  keep?: number;
  now?: () => Date;
}

export class LogFile {
  private fd: number | undefined;
  private size = 0;
  private readonly maxBytes: number;
  private readonly keep: number;
  private readonly now: () => Date;

  /** Opens (creating the folder, 0700, and the file, 0600) for appending; throws if it cannot. */
  constructor(
    readonly file: string,
    o: LogFileOptions = {},
  ) {
    this.maxBytes = o.maxBytes ?? DEFAULT_LOG_MAX_BYTES;
    this.keep = o.keep ?? DEFAULT_LOG_KEEP;
    this.now = o.now ?? (() => new Date());
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.open();
  }

  private open(): void {
    this.fd = fs.openSync(this.file, 'a', 0o600);
    this.size = fs.fstatSync(this.fd).size;
  }

  /**
   * Appends one line. A write that fails (a full disk) is dropped, never thrown: the log must not
   * be what stops a backup.
   */
  write(line: string): void {
    if (this.fd === undefined) return;
    const buf = Buffer.from(formatLogLine(this.now(), line), 'utf8');
    if (this.size > 0 && this.size + buf.length > this.maxBytes) {
      try {
        this.rotate();
      } catch {
        // not rotated: the line goes on in the file there is
      }
    }
    if (this.fd === undefined) return;
    try {
      fs.writeSync(this.fd, buf);
      this.size += buf.length;
    } catch {
      // dropped: see above
    }
  }

  /**
   * agent.log → agent.log.1 → … → agent.log.KEEP (the oldest goes), then a new agent.log. A rename
   * that fails leaves the files as they are, and the log goes on in the one it has.
   */
  private rotate(): void {
    this.close();
    try {
      for (let i = this.keep; i >= 1; i--) {
        const from = i === 1 ? this.file : `${this.file}.${i - 1}`;
        try {
          fs.renameSync(from, `${this.file}.${i}`);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
      }
      if (this.keep === 0) fs.rmSync(this.file, { force: true });
    } finally {
      this.open();
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    fs.closeSync(fd);
  }
}

export interface LogTail {
  /** The log file (whether or not it exists yet). */
  file: string;
  /** Whole lines, oldest first, at most `maxBytes` of them. */
  text: string;
  /** Older lines were left out. */
  truncated: boolean;
}

/**
 * The newest lines of the log, up to `maxBytes` (bounded by MAX_LOG_TAIL_BYTES), reaching into
 * agent.log.1 when agent.log alone is shorter; a line cut by the bound is left out whole.
 * `truncated` when older lines are left out (cut, or in agent.log.2 and beyond).
 */
export async function readLogTail(file: string, maxBytes = 64 * 1024): Promise<LogTail> {
  const budget = Math.max(1, Math.min(Math.floor(maxBytes), MAX_LOG_TAIL_BYTES));
  const parts: Buffer[] = [];
  let left = budget;
  let truncated = false;
  let partial = false;
  for (const f of [file, `${file}.1`]) {
    if (left === 0) {
      truncated = await nonEmpty(f);
      break;
    }
    const end = await readEnd(f, left);
    parts.unshift(end.bytes);
    left -= end.bytes.length;
    if (end.cut) {
      truncated = true;
      partial = !end.wholeLines;
      break;
    }
  }
  let text = Buffer.concat(parts).toString('utf8');
  if (partial) {
    const nl = text.indexOf('\n');
    text = nl < 0 ? '' : text.slice(nl + 1);
  }
  return { file, text, truncated: truncated || (await nonEmpty(`${file}.2`)) };
}

async function nonEmpty(f: string): Promise<boolean> {
  const st = await fs.promises.stat(f).catch(() => undefined);
  return st !== undefined && st.size > 0;
}

/**
 * The last `max` bytes of `f` (none when it does not exist). `cut`: it holds more; `wholeLines`:
 * what was read begins a line.
 */
async function readEnd(
  f: string,
  max: number,
): Promise<{ bytes: Buffer; cut: boolean; wholeLines: boolean }> {
  let h: fs.promises.FileHandle;
  try {
    h = await fs.promises.open(f, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      return { bytes: Buffer.alloc(0), cut: false, wholeLines: true };
    }
    throw e;
  }
  try {
    const size = (await h.stat()).size;
    const n = Math.min(size, max);
    // One byte more, before them: whether they begin a line.
    const from = size - n - (size > n ? 1 : 0);
    const buf = Buffer.alloc(size - from);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await h.read(buf, got, buf.length - got, from + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    const before = size > n ? buf[0] : undefined;
    return {
      bytes: buf.subarray(size > n ? 1 : 0, got),
      cut: size > n,
      wholeLines: before === undefined || before === 0x0a,
    };
  } finally {
    await h.close();
  }
}
