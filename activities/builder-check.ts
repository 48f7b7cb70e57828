import crypto from 'node:crypto';
import { secretBoxFor, secretKeyFileOf } from '../lib/secret-box';
import type { ActivityDeps } from './deps';
import { runNix } from './nix/nix-env';
import { localSystem } from './nix-system';
import { realiseOnBuilder } from './realise/remote';
import { builderSpecOf } from './realise/builder-spec';
import { lastErrorLines } from './realise/nix-process';
import { logBuilderCheck } from './operator-lines';

/** A derivation every working builder can build: /bin/sh writes one line. The nonce makes each check build anew. */
const TRIVIAL_DERIVATION = `{ system, nonce }: derivation {
  name = "ringmaster-builder-check";
  inherit system nonce;
  builder = "/bin/sh";
  args = [ "-c" "echo ok > $out" ];
}`;

const CHECK_TIMEOUT_SECONDS = 120;

/** Nix's error lines, with the builder's last output lines before them (where "executing '/bin/sh': …" stands). */
function failureReason(log: string, fallback: string): string {
  // Colours and other control characters (Nix's log may hold NULs, which PostgreSQL's text refuses) are dropped.
  const text = log.replace(/\x1b\[[0-9;]*m/g, '').replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
  const errors = lastErrorLines(text);
  const output = text
    .split('\n')
    .map((l) => l.trim())
    // Nix's own progress lines say nothing about the failure.
    .filter((l) => l && !l.startsWith('error:') && !/^(this derivation|these \d+ derivations|building '|\/nix\/store\/)/.test(l))
    // Nix 2.8 passes the sandbox's setup error through a pipe as a serialised "Error" with a length byte.
    .map((l) => l.replace(/^(?:Error)+[^a-z]?(?=[a-z])/, ''));
  const tail = output.slice(-3).join('\n');
  return [errors ?? fallback, tail].filter(Boolean).join('\n');
}

export interface BuilderCheckResult {
  status: 'passed' | 'failed';
  /** Nix's error (or the connection's) when the check failed. */
  error: string | null;
}

export function createBuilderCheckActivities(deps: ActivityDeps) {
  const { db } = deps;
  return {
    /**
     * Checks that a remote builder can build: instantiates a trivial /bin/sh derivation for the
     * builder's first system, builds it there over SSH as a build step would be, and records the
     * outcome (with Nix's error) on the builder. A check does not count as a builder failure.
     */
    async checkBuilder(input: { builderId: string }): Promise<BuilderCheckResult> {
      const row = await db('remote_builders').where({ id: input.builderId }).first();
      if (!row) return { status: 'failed', error: `builder ${input.builderId} no longer exists` };
      await db('remote_builders').where({ id: row.id }).update({ check_status: 'running' });

      let outcome: BuilderCheckResult;
      const system = (row.systems as string[])[0] ?? (await localSystem());
      const nonce = crypto.randomBytes(8).toString('hex');
      const instantiated = await runNix('nix-instantiate', ['--expr', TRIVIAL_DERIVATION, '--argstr', 'system', system, '--argstr', 'nonce', nonce], { timeoutMs: 60_000 });
      if (instantiated.code !== 0) {
        outcome = { status: 'failed', error: `could not instantiate the check derivation here: ${lastErrorLines(instantiated.stderr) ?? instantiated.stderr.trim()}` };
      } else {
        let log = '';
        const result = await realiseOnBuilder(deps.builderPool, builderSpecOf(row, secretBoxFor(secretKeyFileOf(deps.config))), instantiated.stdout.trim(), {
          timeoutSeconds: CHECK_TIMEOUT_SECONDS,
          maxSilentSeconds: 0,
          logLimitBytes: 1024 * 1024,
          transferTimeoutSeconds: CHECK_TIMEOUT_SECONDS,
          onLog: (chunk) => { log += chunk; },
        });
        outcome = result.status === 'succeeded'
          ? { status: 'passed', error: null }
          : { status: 'failed', error: failureReason(log, result.errorMessage ?? result.status) };
      }
      await db('remote_builders').where({ id: row.id }).update({ check_status: outcome.status, check_error: outcome.error, checked_at: db.fn.now() });
      logBuilderCheck(deps.logger, { id: row.id, name: row.name }, outcome.status, outcome.error);
      return outcome;
    },
  };
}

export type BuilderCheckActivities = ReturnType<typeof createBuilderCheckActivities>;
