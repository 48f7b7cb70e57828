/**
 * The one set of settings every git command of Ringmaster runs with, in the API (repository probe)
 * and in the worker (jobset sources): never prompt (no terminal, no askpass), ignore the machine's
 * system-wide git config, and let ssh fail instead of asking (BatchMode) or hanging (ConnectTimeout).
 */
export const GIT_SETTINGS: Readonly<Record<string, string>> = {
  GIT_TERMINAL_PROMPT: '0',
  GIT_ASKPASS: '/bin/true',
  SSH_ASKPASS: '/bin/true',
  GIT_SSH_COMMAND: 'ssh -o BatchMode=yes -o ConnectTimeout=15',
  GIT_CONFIG_NOSYSTEM: '1',
};

/** The environment for a git child process: this process's, with GIT_SETTINGS over it (and extra over those). */
export function gitEnvironment(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...GIT_SETTINGS, ...extra };
}
