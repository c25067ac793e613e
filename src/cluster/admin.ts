// The supervisor's side of the admin port: /status with every worker and the load summed over
// them, cache purges in every worker, and the rolling restart.
import type { AdminState } from '../admin/server.ts';
import type { BackendLoad, LoadView } from '../admin/status.ts';
import type { WorkerStatus } from './messages.ts';
import type { Supervisor } from './supervisor.ts';

export function clusterAdmin(
  supervisor: () => Supervisor | undefined,
): Pick<AdminState, 'cache' | 'cluster'> {
  const purged = async (question: { url?: string; prefix?: string; pool?: string }) => {
    const answers = (await supervisor()?.ask<number>({ what: 'purge', ...question })) ?? [];
    return answers.reduce((sum, answer) => sum + answer.value, 0);
  };
  return {
    cache: {
      purgeUrl: (url, pool) => purged(pool === undefined ? { url } : { url, pool }),
      purgePrefix: (prefix, pool) => purged(pool === undefined ? { prefix } : { prefix, pool }),
    },
    cluster: {
      status: async () => {
        const answers = (await supervisor()?.ask<WorkerStatus>({ what: 'status' })) ?? [];
        const byIndex = new Map(answers.map((answer) => [answer.index, answer.value]));
        const workers = (supervisor()?.list() ?? []).map((worker) => {
          const status = byIndex.get(worker.index);
          return {
            worker: worker.index,
            pid: worker.pid,
            listening: worker.listening,
            startedAt: new Date(worker.startedAt).toISOString(),
            uptimeSeconds: status?.uptimeSeconds ?? null,
            connections: status?.connections ?? null,
            requests: status?.requests ?? null,
          };
        });
        return {
          load: summedLoad(answers.map((answer) => answer.value)),
          more: { workers, spare: supervisor()?.spareStatus() ?? null },
        };
      },
      restart: () => supervisor()?.restart() ?? { started: false, message: 'not running' },
    },
  };
}

function summedLoad(statuses: readonly WorkerStatus[]): LoadView {
  const loads = new Map<string, BackendLoad>();
  const panic = new Set<string>();
  for (const status of statuses) {
    for (const pool of status.panicPools) panic.add(pool);
    for (const [pool, name, inFlight, open, idle] of status.backends) {
      const key = `${pool}\u0000${name}`;
      const load = loads.get(key) ?? { inFlight: 0, open: 0, idle: 0 };
      loads.set(key, { inFlight: load.inFlight + inFlight, open: load.open + open, idle: load.idle + idle });
    }
  }
  return {
    backend: (backend) =>
      loads.get(`${backend.pool}\u0000${backend.name}`) ?? { inFlight: 0, open: 0, idle: 0 },
    panic: (pool) => panic.has(pool.name),
  };
}
