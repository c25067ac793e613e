// What the config reloads (SIGHUP) did, for sluice_config_reloads_total{result} and the
// sluice_config_last_reload_* gauges (Prometheus's own names and meaning: starting counts as a
// successful load, a failed reload keeps the running config).
export class ReloadHistory {
  successes = 0;
  failures = 0;
  lastSuccessful = true;
  /** Epoch ms of the last successful load, the start included. */
  lastSuccessAt: number;

  constructor(now = Date.now()) {
    this.lastSuccessAt = now;
  }

  record(ok: boolean, now = Date.now()): void {
    this.lastSuccessful = ok;
    if (ok) {
      this.successes++;
      this.lastSuccessAt = now;
    } else this.failures++;
  }
}
