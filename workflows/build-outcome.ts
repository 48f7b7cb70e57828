import type { BuildStatus, DerivationResult, DerivationStatus } from './shared';

/** A derivation step of a build, as planned by the startBuild activity. */
export interface StepPlan {
  drvPath: string;
  isTop: boolean;
  /** drv paths among the build's steps whose outputs this step needs first */
  inputs: string[];
  /** the job this step is, when it is another build's job (for messages) */
  jobName?: string | null;
}

const TOP_STATUS: Record<DerivationStatus, BuildStatus> = {
  succeeded: 'succeeded',
  failed: 'failed',
  timeout: 'timeout',
  log_limit_exceeded: 'log_limit_exceeded',
  cached_failure: 'cached_failure',
  unsupported_system: 'unsupported_system',
  cancelled: 'cancelled',
  aborted: 'aborted',
  dependency_failed: 'dependency_failed',
};

/**
 * The build's outcome once it is known, or undefined while steps are still running:
 * - the top step's result decides, mapped onto the build statuses;
 * - a failed dependency step makes the build dependency_failed (unsupported systems and
 *   cancellations keep their own status).
 */
export function decideBuildOutcome(
  steps: StepPlan[],
  results: Map<string, DerivationResult>,
): { status: BuildStatus; errorMessage: string | null; top: DerivationResult | null } | undefined {
  const top = steps.find((s) => s.isTop);
  if (top) {
    const r = results.get(top.drvPath);
    if (r) return { status: TOP_STATUS[r.status], errorMessage: r.errorMessage, top: r };
  }
  for (const s of steps) {
    if (s.isTop) continue;
    const r = results.get(s.drvPath);
    if (!r || r.status === 'succeeded') continue;
    const what = s.jobName ? `dependency ${s.jobName} (${s.drvPath})` : `dependency ${s.drvPath}`;
    if (r.status === 'unsupported_system') return { status: 'unsupported_system', errorMessage: `${what}: ${r.errorMessage ?? 'unsupported system'}`, top: null };
    if (r.status === 'cancelled') return { status: 'cancelled', errorMessage: `${what} was cancelled`, top: null };
    return { status: 'dependency_failed', errorMessage: `${what} ${r.status.replace(/_/g, ' ')}${r.errorMessage ? `: ${r.errorMessage}` : ''}`, top: null };
  }
  return undefined;
}
