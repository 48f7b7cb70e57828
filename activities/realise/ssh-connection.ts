import fs from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import type { BuilderSpec } from './types';

/** The builder could not be reached or used: connection refused, authentication or host key failure, connection lost. */
export class BuilderConnectionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BuilderConnectionError';
  }
}

export interface ExecOptions {
  /** Sent to the remote command's stdin; the channel gets EOF when it ends. */
  stdin?: NodeJS.ReadableStream;
  /**
   * Without `stdin`: keep the remote stdin open (never written) instead of sending EOF at once, so the
   * remote command sees EOF only when the channel or the whole session is gone (see remote-process.ts).
   */
  holdStdinOpen?: boolean;
  /** The remote stdout is piped here (with backpressure) instead of, or as well as, going to onStdout. */
  stdout?: Writable;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Aborting closes the channel (it does not kill the remote process: see remote.ts for that). */
  signal?: AbortSignal;
  /** Use the channel slot reserved for urgent commands (a kill must not wait behind the builds it kills). */
  urgent?: boolean;
}

export interface ExecResult {
  /** The remote exit status; null when the command died of a signal, the channel was closed or never reported one. */
  code: number | null;
  signal?: string;
}

const SAFE_WORD = /^[A-Za-z0-9_\/.,:@%+-]+$/;

/** Quotes one argument for a POSIX shell: single quotes, with `'` written as `'\''`. */
export function quoteShellArg(arg: string): string {
  if (arg.includes('\0')) throw new Error('a command argument cannot contain a NUL byte');
  if (SAFE_WORD.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * The only place a command string exists: SSH exec takes one string that the remote login shell parses,
 * so it is built here from an argument array, every argument quoted.
 */
export function shellCommandFromArgs(args: readonly string[]): string {
  if (args.length === 0) throw new Error('empty command');
  return args.map(quoteShellArg).join(' ');
}

export interface SshTarget {
  username: string;
  host: string;
  port: number;
}

/** Parses `ssh://user@host:port`, `ssh://host`, `user@host` or `host`. */
export function parseSshUri(uri: string): SshTarget {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(uri) ? uri : `ssh://${uri}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`invalid SSH URI: ${uri}`);
  }
  if (url.protocol !== 'ssh:' && url.protocol !== 'ssh-ng:') throw new Error(`unsupported SSH URI scheme: ${url.protocol}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw new Error(`SSH URI has no host: ${uri}`);
  return { username: decodeURIComponent(url.username) || 'root', host, port: url.port ? Number(url.port) : 22 };
}

/**
 * The key blob (base64) of a pinned host key given as "ssh-ed25519 AAAA… [comment]", as the bare
 * base64 blob, or as base64 of the "ssh-ed25519 AAAA…" line (the Nix machines-file form).
 */
export function pinnedHostKeyBlob(publicHostKey: string): string {
  const text = publicHostKey.trim();
  const fields = text.split(/\s+/);
  if (fields.length >= 2 && /^(ssh-|ecdsa-|sk-)/.test(fields[0])) return fields[1];
  const decoded = Buffer.from(text, 'base64').toString('utf8').trim();
  const decodedFields = decoded.split(/\s+/);
  if (decodedFields.length >= 2 && /^(ssh-|ecdsa-|sk-)/.test(decodedFields[0])) return decodedFields[1];
  return text;
}

/** Limits concurrent channels: OpenSSH's default MaxSessions is 10 per connection. */
class ChannelSlots {
  private used = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly normalLimit: number, private readonly urgentLimit: number) {}

  async acquire(urgent: boolean): Promise<() => void> {
    const limit = urgent ? this.urgentLimit : this.normalLimit;
    while (this.used >= limit) {
      if (urgent) throw new BuilderConnectionError('no SSH channel free for an urgent command');
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.used++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used--;
      this.waiting.shift()?.();
    };
  }
}

/** One SSH connection to a builder; each command runs on its own channel. */
export class BuilderConnection {
  private readonly slots: ChannelSlots;
  private readonly openChannels = new Set<(err: Error) => void>();
  private closedError: Error | null = null;

  constructor(
    readonly builderId: string,
    private readonly client: Client,
    maxChannels: number,
  ) {
    this.slots = new ChannelSlots(Math.max(1, maxChannels - 1), maxChannels);
    client.on('close', () => this.markClosed(new BuilderConnectionError('connection to the builder was lost')));
    client.on('error', (err: Error) => this.markClosed(new BuilderConnectionError(`connection to the builder failed: ${err.message}`, { cause: err })));
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  private markClosed(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    for (const fail of [...this.openChannels]) fail(err);
    this.openChannels.clear();
  }

  /** Runs a command (an argument array, quoted here) on a new channel. Rejects with BuilderConnectionError when the connection is lost. */
  async exec(args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const command = shellCommandFromArgs(args);
    if (this.closedError) throw this.closedError;
    const release = await this.slots.acquire(opts.urgent ?? false);
    try {
      if (this.closedError) throw this.closedError;
      return await new Promise<ExecResult>((resolve, reject) => {
        const fail = (err: Error) => reject(err);
        this.openChannels.add(fail);
        this.client.exec(command, (err, stream) => {
          this.openChannels.delete(fail);
          if (err) reject(this.closedError ?? new BuilderConnectionError(`cannot open an SSH channel: ${err.message}`, { cause: err }));
          // Listen at once, in this callback: a quick command's exit status can arrive in the same packet
          // as the channel confirmation, and would be missed by listeners attached a microtask later.
          else resolve(this.runOnChannel(stream, opts));
        });
      });
    } finally {
      release();
    }
  }

  /** Runs a command and collects its stdout and stderr as text. */
  async execCollect(args: string[], opts: Omit<ExecOptions, 'onStdout' | 'onStderr' | 'stdout'> = {}): Promise<ExecResult & { stdout: string; stderr: string }> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const result = await this.exec(args, { ...opts, onStdout: (b) => out.push(b), onStderr: (b) => err.push(b) });
    return { ...result, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
  }

  private runOnChannel(channel: ClientChannel, opts: ExecOptions): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      let exit: ExecResult | null = null;
      let settled = false;
      const finish = (err: Error | null) => {
        if (settled) return;
        settled = true;
        this.openChannels.delete(fail);
        opts.signal?.removeEventListener('abort', onAbort);
        if (opts.stdin && 'unpipe' in opts.stdin) (opts.stdin as Readable).unpipe(channel);
        if (err) reject(err);
        else resolve(exit ?? { code: null });
      };
      const fail = (err: Error) => {
        channel.destroy();
        finish(err);
      };
      const onAbort = () => {
        channel.close();
        finish(null);
      };
      this.openChannels.add(fail);
      if (opts.signal?.aborted) {
        onAbort();
        return;
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });

      channel.on('exit', (code: number | null, signal?: string) => {
        exit = code === null ? { code: null, signal } : { code };
        // The remote command has ended. Its channel normally closes right after; if it does not (output
        // left unread behind a stalled pipe), do not wait forever: settle with the exit status.
        setTimeout(() => {
          if (settled) return;
          channel.destroy();
          finish(null);
        }, 10_000).unref();
      });
      channel.on('close', () => finish(null));
      channel.on('error', (err: Error) => finish(this.closedError ?? new BuilderConnectionError(`SSH channel failed: ${err.message}`, { cause: err })));
      if (opts.onStdout) channel.on('data', opts.onStdout);
      if (opts.stdout) channel.pipe(opts.stdout, { end: true });
      if (!opts.onStdout && !opts.stdout) channel.resume();
      if (opts.onStderr) channel.stderr.on('data', opts.onStderr);
      else channel.stderr.resume();
      if (opts.stdin) (opts.stdin as Readable).pipe(channel);
      else if (!opts.holdStdinOpen) channel.end();
    });
  }

  close(): void {
    this.markClosed(new BuilderConnectionError('connection closed'));
    this.client.end();
  }
}

export interface BuilderConnectionPoolOptions {
  /** Handshake timeout. */
  readyTimeoutMs?: number;
  /** SSH keepalive interval; a connection is dropped after 3 unanswered keepalives. */
  keepaliveIntervalMs?: number;
  /** Channels open at once on one connection (one of them reserved for urgent commands such as kills); match the builder's sshd MaxSessions. */
  maxChannelsPerConnection?: number;
}

function connectionKey(spec: BuilderSpec): string {
  return JSON.stringify([spec.sshUri, spec.sshKeyFile ?? null, spec.sshPrivateKey ?? null, spec.publicHostKey ?? null]);
}

/** One reused SSH connection per builder; reconnects when it was closed or the builder's settings changed. */
export class BuilderConnectionPool {
  private readonly entries = new Map<string, { key: string; connection: Promise<BuilderConnection> }>();
  constructor(private readonly options: BuilderConnectionPoolOptions = {}) {}

  get(spec: BuilderSpec): Promise<BuilderConnection> {
    const key = connectionKey(spec);
    const entry = this.entries.get(spec.id);
    if (entry && entry.key === key) {
      return entry.connection.then(
        (conn) => (conn.closed ? this.reconnect(spec, key, entry.connection) : conn),
        () => this.reconnect(spec, key, entry.connection),
      );
    }
    if (entry) void entry.connection.then((conn) => conn.close(), () => undefined);
    return this.connectAndStore(spec, key);
  }

  private reconnect(spec: BuilderSpec, key: string, stale: Promise<BuilderConnection>): Promise<BuilderConnection> {
    const current = this.entries.get(spec.id);
    // Someone else already replaced the stale connection: share theirs.
    if (current && current.connection !== stale) return this.get(spec);
    return this.connectAndStore(spec, key);
  }

  private connectAndStore(spec: BuilderSpec, key: string): Promise<BuilderConnection> {
    const connection = connectToBuilder(spec, this.options);
    const entry = { key, connection };
    this.entries.set(spec.id, entry);
    connection.catch(() => {
      if (this.entries.get(spec.id) === entry) this.entries.delete(spec.id);
    });
    return connection;
  }

  /** Closes and forgets a builder's connection (e.g. after it failed). */
  drop(builderId: string): void {
    const entry = this.entries.get(builderId);
    if (!entry) return;
    this.entries.delete(builderId);
    void entry.connection.then((conn) => conn.close(), () => undefined);
  }

  async closeAll(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => e.connection.then((conn) => conn.close(), () => undefined)));
  }
}

async function privateKeyOf(spec: BuilderSpec): Promise<string | undefined> {
  if (spec.sshPrivateKey) return spec.sshPrivateKey;
  if (spec.sshKeyFile) {
    try {
      return await fs.readFile(spec.sshKeyFile, 'utf8');
    } catch (err) {
      throw new BuilderConnectionError(`cannot read the SSH key file of builder ${spec.name}: ${(err as Error).message}`, { cause: err });
    }
  }
  return undefined;
}

/** Opens a new SSH connection to a builder (not pooled). */
export async function connectToBuilder(spec: BuilderSpec, options: BuilderConnectionPoolOptions = {}): Promise<BuilderConnection> {
  let target: SshTarget;
  try {
    target = parseSshUri(spec.sshUri);
  } catch (err) {
    throw new BuilderConnectionError((err as Error).message);
  }
  const privateKey = await privateKeyOf(spec);
  const pinned = spec.publicHostKey ? pinnedHostKeyBlob(spec.publicHostKey) : null;
  let hostKeyMismatch: string | null = null;

  const client = new Client();
  const config: ConnectConfig = {
    host: target.host,
    port: target.port,
    username: target.username,
    privateKey,
    readyTimeout: options.readyTimeoutMs ?? 20_000,
    keepaliveInterval: options.keepaliveIntervalMs ?? 15_000,
    keepaliveCountMax: 3,
  };
  if (pinned) {
    const verify = (key: Buffer): boolean => {
      const offered = key.toString('base64');
      if (offered === pinned) return true;
      hostKeyMismatch = `host key mismatch for builder ${spec.name} (${target.host}:${target.port}): it offered a key that is not the pinned one`;
      return false;
    };
    config.hostVerifier = verify;
  }

  return new Promise<BuilderConnection>((resolve, reject) => {
    let done = false;
    client.once('ready', () => {
      done = true;
      client.setNoDelay(true);
      resolve(new BuilderConnection(spec.id, client, options.maxChannelsPerConnection ?? 10));
    });
    const failed = (err?: Error) => {
      if (done) return;
      done = true;
      client.end();
      const message = hostKeyMismatch ?? `cannot connect to builder ${spec.name} (${target.host}:${target.port}): ${err?.message ?? 'connection closed during the handshake'}`;
      reject(new BuilderConnectionError(message, { cause: err }));
    };
    client.on('error', failed); // stays attached: an 'error' without a listener would crash the process
    client.once('close', () => failed());
    try {
      client.connect(config);
    } catch (err) {
      failed(err as Error);
    }
  });
}
