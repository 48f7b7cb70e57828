import fs from 'node:fs/promises';
import { validateConfigContents, type RingmasterConfigFile } from './config-file';

/**
 * The server config file as the running processes see it: read again when it changes on disk
 * (checked at most every `checkEveryMs`; the API's PUT invalidates at once), so the settings it
 * holds apply live in the API and in every worker that shares the file. A file that fails
 * validation (edited by hand) leaves the last good settings in force; with none, the file counts as
 * empty (every setting at its default).
 */
export class LiveConfigFile {
  private settings: RingmasterConfigFile = {};
  private stamp = '';
  private checkedAt = 0;
  private reading: Promise<RingmasterConfigFile> | undefined;
  private warned = '';

  constructor(
    readonly file: string,
    private readonly checkEveryMs = 500,
    private readonly warn: (message: string) => void = (m) => console.warn(m),
  ) {}

  /** The settings now in force. */
  async current(): Promise<RingmasterConfigFile> {
    if (Date.now() - this.checkedAt < this.checkEveryMs) return this.settings;
    this.reading ??= this.refresh().finally(() => (this.reading = undefined));
    return this.reading;
  }

  /** Forgets what was read: the next current() reads the file again (after a PUT). */
  invalidate(): void {
    this.checkedAt = 0;
    this.stamp = '';
  }

  private async refresh(): Promise<RingmasterConfigFile> {
    const stat = await fs.stat(this.file).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    this.checkedAt = Date.now();
    const stamp = stat ? `${stat.ino}:${stat.size}:${stat.mtimeMs}` : 'absent';
    if (stamp === this.stamp) return this.settings;
    this.stamp = stamp;
    if (!stat) return (this.settings = {});
    const validation = validateConfigContents(await fs.readFile(this.file, 'utf8'));
    if (validation.ok) return (this.settings = validation.config);
    const problem = `${validation.problems[0].field} ${validation.problems[0].message}`;
    if (problem !== this.warned) this.warn(`ringmaster: the config file ${this.file} is invalid (${problem}); keeping the settings read before`);
    this.warned = problem;
    return this.settings;
  }
}

const byFile = new Map<string, LiveConfigFile>();

/** The one LiveConfigFile of this process for a path (the API and the activities share it). */
export function liveConfigFile(file: string): LiveConfigFile {
  let live = byFile.get(file);
  if (!live) byFile.set(file, (live = new LiveConfigFile(file)));
  return live;
}
