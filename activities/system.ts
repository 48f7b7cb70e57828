import os from 'node:os';

export function createSystemActivities() {
  return {
    /** Answers with the worker's host name: proves an activity round trip. */
    async probeWorkerActivity(): Promise<string> {
      return os.hostname();
    },
  };
}

export type SystemActivities = ReturnType<typeof createSystemActivities>;
