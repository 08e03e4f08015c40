/** Runs a CLI `main`, turning its result into the exit code and any escaped error into one line. */
export interface RunMainOptions {
  /**
   * Once `main` has returned, exit after this long even if something (a socket a dependency
   * forgot to close) still holds the event loop; the leftovers are named on stderr.
   */
  lingerMs?: number;
}

export function runMain(
  name: string,
  main: (argv: string[]) => Promise<number>,
  opts: RunMainOptions = {},
): void {
  const done = (code: number): void => {
    process.exitCode = code;
    if (opts.lingerMs === undefined) return;
    setTimeout(() => {
      console.error(
        `${name}: still open after the command ended (${process.getActiveResourcesInfo().join(', ')}); exiting`,
      );
      process.exit(code);
    }, opts.lingerMs).unref();
  };
  main(process.argv.slice(2)).then(done, (err: unknown) => {
    console.error(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    done(1);
  });
}
