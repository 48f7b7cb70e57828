/**
 * Reads `nix-store --log-format internal-json` (Nix 2.8) line by line: which derivation a build
 * activity is (`start` of type 105 names the .drv), its log lines (`result` of type 101), the moments
 * a build ends (the process's count of builds done or failed grows: the `stop` of a requested
 * derivation's build comes only when the whole process ends), and the error messages that say how a
 * derivation failed. Pure: no process, no I/O.
 */

/** Nix's activity type of a derivation's build. */
const ACTIVITY_BUILD = 105;
/** Nix's activity type that counts the process's builds. */
const ACTIVITY_BUILDS = 104;
/** Nix's result type of one line of a build's log. */
const RESULT_BUILD_LOG_LINE = 101;
/** Nix's result type of an activity's progress: [done, expected, running, failed]. */
const RESULT_PROGRESS = 105;

export type NixBuildFailure = 'failed' | 'timeout' | 'dependency_failed';

export type NixBuildEvent =
  | { kind: 'build_started'; drvPath: string }
  | { kind: 'log_line'; drvPath: string; line: string }
  /** A build has ended (built or failed; which one, the caller checks): the count of builds done or failed grew, to `ended`. */
  | { kind: 'build_ended'; ended: number }
  /** Nix says at its start how many derivations it will build (members and the inputs it builds along). */
  | { kind: 'will_build'; count: number }
  | { kind: 'build_failed'; drvPath: string; failure: NixBuildFailure; message: string }
  /** A line that is not Nix's JSON, or an error about no single derivation. */
  | { kind: 'other'; line: string };

interface NixJsonMessage {
  action?: string;
  id?: number;
  type?: number;
  fields?: unknown[];
  level?: number;
  msg?: string;
}

const ansi = /\x1b\[[0-9;]*m/g;

/** How an error message of Nix names a failed derivation, and what the failure was. */
const failurePatterns: Array<[RegExp, NixBuildFailure]> = [
  [/^builder for '([^']+\.drv)' failed/, 'failed'],
  [/^building of '([^'!]+\.drv)(?:![^']*)?'.* timed out after/, 'timeout'],
  [/dependencies of derivation '([^']+\.drv)' failed to build/, 'dependency_failed'],
];

export class NixJsonLogParser {
  private readonly builds = new Map<number, string>();
  private buildsActivity: number | undefined;
  private ended = 0;

  parseLine(line: string): NixBuildEvent[] {
    if (!line.startsWith('@nix ')) return line.trim() ? [{ kind: 'other', line }] : [];
    let m: NixJsonMessage;
    try {
      m = JSON.parse(line.slice(5)) as NixJsonMessage;
    } catch {
      return [{ kind: 'other', line }];
    }
    switch (m.action) {
      case 'start': {
        if (m.type === ACTIVITY_BUILDS) this.buildsActivity = m.id;
        const drvPath = m.fields?.[0];
        if (m.type !== ACTIVITY_BUILD || typeof drvPath !== 'string' || m.id === undefined) return [];
        this.builds.set(m.id, drvPath);
        return [{ kind: 'build_started', drvPath }];
      }
      case 'result': {
        if (m.type === RESULT_PROGRESS && m.id !== undefined && m.id === this.buildsActivity) {
          const [done, , , failed] = (m.fields ?? []).map(Number);
          const ended = (done || 0) + (failed || 0);
          if (ended <= this.ended) return [];
          this.ended = ended;
          return [{ kind: 'build_ended', ended }];
        }
        const drvPath = m.id === undefined ? undefined : this.builds.get(m.id);
        const text = m.fields?.[0];
        if (drvPath === undefined || m.type !== RESULT_BUILD_LOG_LINE || typeof text !== 'string') return [];
        return [{ kind: 'log_line', drvPath, line: text }];
      }
      case 'stop': {
        if (m.id !== undefined) this.builds.delete(m.id);
        return [];
      }
      case 'msg': {
        if (typeof m.msg !== 'string') return [];
        if (m.level === 3) {
          const plan = /^th(?:ese (\d+) derivations|is derivation) will be built:$/.exec(m.msg);
          return plan ? [{ kind: 'will_build', count: plan[1] ? Number(plan[1]) : 1 }] : [];
        }
        if (m.level !== 0) return [];
        const message = m.msg.replace(ansi, '').replace(/^error:\s*/, '');
        for (const [pattern, failure] of failurePatterns) {
          const found = pattern.exec(message);
          if (found) return [{ kind: 'build_failed', drvPath: found[1], failure, message }];
        }
        return [{ kind: 'other', line: message }];
      }
      default:
        return [];
    }
  }
}
