import { StringDecoder } from 'node:string_decoder';
import { realiseArgs } from './supervision';
import { NixJsonLogParser, type NixBuildEvent } from './nix-json-log';

/**
 * What a batch's one `nix-store --realise d1 … dK` shares wherever it runs (the worker's own Nix or an
 * SSH builder): its arguments, how its stderr becomes events, and what the batch activity
 * (`activities/realise-batch.ts`) asks of the builder it runs on.
 */

export interface BatchRunOptions {
  /** `--max-jobs`: the builder slots the batch holds. */
  slots: number;
  timeoutSeconds: number;
  maxSilentSeconds: number;
  /** Each derivation's start, log line, end and failure, in the order Nix reports them. */
  onEvent: (event: NixBuildEvent) => void;
}

export interface BatchRun {
  /** Kills the process group (a cancel, a log limit, a lost builder): the run then ends with the process. */
  stop(): void;
  /** The exit of the process; `spawnError` when it could not run at all, or its builder was lost. */
  finished: Promise<{ exitCode: number | null; spawnError: string | null }>;
}

/**
 * The builder a batch runs on, as the batch activity sees it. Its errors that come from the builder
 * itself (unreachable, connection lost, an output that does not arrive) are `BuilderConnectionError`s:
 * the batch's unfinished members then end as `builder_failure` and are retried.
 */
export interface BatchBuilder {
  /** The builder id that step rows and builds record: null for the worker's own Nix. */
  readonly recordedBuilderId: string | null;
  /** How a build log names where its derivation builds ("on builder b1"). */
  readonly where: string;
  /** Puts on the builder what realising the members needs (over SSH: their `.drv` closure and the inputs' outputs it lacks). */
  prepare(drvPaths: string[]): Promise<void>;
  /** Starts the batch's one `nix-store --realise`. */
  realise(drvPaths: string[], opts: BatchRunOptions): BatchRun;
  /** Which of `paths` are not valid in the builder's store. */
  invalidPaths(paths: string[]): Promise<Set<string>>;
  /** Brings `paths` (valid in the builder's store) and their closure into the local store. */
  fetch(paths: string[]): Promise<void>;
  /** Releases what the batch held on the builder (over SSH, its store session). */
  close?(): void;
}

/** `nix-store` arguments of a batch: the members, its slots as `--max-jobs`, `--keep-going`, and Nix's JSON log. */
export function batchRealiseArgs(drvPaths: string[], opts: Pick<BatchRunOptions, 'slots' | 'timeoutSeconds' | 'maxSilentSeconds'>): string[] {
  return [...realiseArgs(drvPaths, opts), '--max-jobs', String(Math.max(1, opts.slots)), '--keep-going', '--log-format', 'internal-json'];
}

/**
 * Turns chunks of Nix's stderr (split anywhere, even inside a UTF-8 character) into lines for the
 * JSON log parser, and the parser's events into `onEvent`. `end()` parses a last line without a newline.
 */
export function nixJsonLogFeed(onEvent: (event: NixBuildEvent) => void): { write(chunk: Buffer): void; end(): void } {
  const parser = new NixJsonLogParser();
  const decoder = new StringDecoder('utf8');
  let partial = '';
  const parse = (line: string) => {
    for (const event of parser.parseLine(line.endsWith('\r') ? line.slice(0, -1) : line)) onEvent(event);
  };
  return {
    write(chunk) {
      const lines = (partial + decoder.write(chunk)).split('\n');
      partial = lines.pop()!;
      for (const line of lines) parse(line);
    },
    end() {
      const rest = partial + decoder.end();
      partial = '';
      if (rest) parse(rest);
    },
  };
}
