/**
 * Glob matching for file queries without a backtracking regular expression: a pattern from the
 * HTTP API such as `**a**a**a**b` would make a RegExp take exponential time on a long path, so
 * the glob is compiled to a list of steps and run as a set of positions (Thompson-style), which
 * costs at most (path length × pattern length) steps whatever the input.
 *
 * Syntax (case-insensitive): `*` any run of characters except `/`, `**` any run including `/`,
 * `?` one character except `/`, `[abc]` `[a-z]` one of a set (`[!…]` or `[^…]` negated; an
 * unclosed `[` is a literal), anything else literal.
 */

/** Longest glob accepted; longer ones are refused by the callers that take untrusted input. */
export const MAX_GLOB_CHARS = 512;

type Step = { kind: 'star'; crossesSlash: boolean } | { kind: 'one'; test: (c: string) => boolean };

function classTest(body: string): (c: string) => boolean {
  let negate = false;
  if (body.startsWith('!') || body.startsWith('^')) {
    negate = true;
    body = body.slice(1);
  }
  const singles = new Set<string>();
  const ranges: Array<[string, string]> = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (body[i + 1] === '-' && i + 2 < body.length) {
      ranges.push([c, body[i + 2]!]);
      i += 2;
    } else singles.add(c);
  }
  return (c) => {
    const hit = singles.has(c) || ranges.some(([lo, hi]) => c >= lo && c <= hi);
    return hit !== negate;
  };
}

function compile(glob: string): Step[] {
  const steps: Step[] = [];
  const g = glob.toLowerCase();
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === '*') {
      const crossesSlash = g[i + 1] === '*';
      if (crossesSlash) while (g[i + 1] === '*') i++;
      const prev = steps[steps.length - 1];
      // Adjacent stars collapse into one (the wider wins): fewer steps, same language.
      if (prev?.kind === 'star') prev.crossesSlash ||= crossesSlash;
      else steps.push({ kind: 'star', crossesSlash });
    } else if (c === '?') {
      steps.push({ kind: 'one', test: (x) => x !== '/' });
    } else if (c === '[') {
      const end = g.indexOf(']', i + 2);
      if (end < 0) steps.push({ kind: 'one', test: (x) => x === '[' });
      else {
        steps.push({ kind: 'one', test: classTest(g.slice(i + 1, end)) });
        i = end;
      }
    } else steps.push({ kind: 'one', test: (x) => x === c });
  }
  return steps;
}

/** Whether `s` matches `glob` as a whole (see the file comment for the syntax). */
export function globMatcher(glob: string): (s: string) => boolean {
  const steps = compile(glob);
  const n = steps.length;
  return (input) => {
    const s = input.toLowerCase();
    let cur = new Uint8Array(n + 1);
    let next = new Uint8Array(n + 1);
    const close = (set: Uint8Array): void => {
      // A star may match nothing: reaching it reaches the step after it.
      for (let i = 0; i < n; i++) if (set[i] && steps[i]!.kind === 'star') set[i + 1] = 1;
    };
    cur[0] = 1;
    close(cur);
    for (const ch of s) {
      next.fill(0);
      let any = false;
      for (let i = 0; i < n; i++) {
        if (!cur[i]) continue;
        const st = steps[i]!;
        if (st.kind === 'star') {
          if (st.crossesSlash || ch !== '/') {
            next[i] = 1;
            any = true;
          }
        } else if (st.test(ch)) {
          next[i + 1] = 1;
          any = true;
        }
      }
      if (!any) return false;
      close(next);
      [cur, next] = [next, cur];
    }
    return cur[n] === 1;
  };
}

export const GLOB_CHARS = /[*?[]/;
