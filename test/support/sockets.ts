// Which process holds a TCP connection: for tests of several processes on one port.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * Which process holds the server side of each connection to `port`: client port -> pid, read
 * from /proc (the sockets each process has open, and the kernel's TCP table).
 */
export function connectionOwners(port: number, pids: readonly number[]): Map<number, number> {
  const inodeOwner = new Map<string, number>();
  for (const pid of pids)
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const link = (() => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          return '';
        }
      })();
      const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
      if (inode) inodeOwner.set(inode, pid);
    }
  const owners = new Map<number, number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6'])
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [local, remote, inode] = [fields[1], fields[2], fields[9]];
      if (!local || !remote || !inode) continue;
      const localPort = Number.parseInt(local.split(':')[1] ?? '', 16);
      const owner = inodeOwner.get(inode);
      if (localPort === port && owner !== undefined)
        owners.set(Number.parseInt(remote.split(':')[1] ?? '', 16), owner);
    }
  return owners;
}
