// The download progress bar on stderr: pure rendering (size, percent, speed, ETA) and a small
// meter that redraws it at most every `intervalMs`, once a download has lasted `delayMs`.

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `532 B`, `1.5 KiB`, `12.3 MiB`, `120 MiB` (three significant digits from KiB on). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  const digits = value < 10 ? 2 : value < 100 ? 1 : 0;
  // 1023.96 KiB would show as "1024 KiB": step up instead.
  if (Number(value.toFixed(digits)) >= 1024 && unit < units.length - 1) return `1.00 ${units[unit + 1]}`;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** `0:04`, `12:30`, `1:02:03`. */
export function formatDuration(seconds: number): string {
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

export interface ProgressState {
  received: number;
  /** Content-Length, if known. */
  total: number | undefined;
  elapsedMs: number;
}

/**
 * One line, at most `width` characters:
 * ` 45% [#########           ] 12.3 MiB / 27.1 MiB  4.10 MiB/s  ETA 0:04`, or without a known
 * total `12.3 MiB  4.10 MiB/s  0:03` (the time so far).
 */
export function renderProgress(state: ProgressState, width = 80): string {
  const seconds = state.elapsedMs / 1000;
  const rate = seconds > 0 ? state.received / seconds : 0;
  const speed = `${formatBytes(rate)}/s`;
  if (state.total === undefined || state.total <= 0) {
    return `${formatBytes(state.received)}  ${speed}  ${formatDuration(seconds)}`.slice(0, width);
  }
  const fraction = Math.min(1, state.received / state.total);
  const percent = `${String(Math.floor(fraction * 100)).padStart(3)}%`;
  const done = state.received >= state.total;
  const eta = done
    ? `in ${formatDuration(seconds)}`
    : rate > 0
      ? `ETA ${formatDuration((state.total - state.received) / rate)}`
      : 'ETA --:--';
  const sizes = `${formatBytes(state.received)} / ${formatBytes(state.total)}`;
  const tail = ` ${sizes}  ${speed}  ${eta}`;
  const barWidth = Math.min(30, width - percent.length - tail.length - 3);
  if (barWidth < 5) return `${percent}${tail}`.slice(0, width);
  const filled = Math.round(fraction * barWidth);
  return `${percent} [${'#'.repeat(filled)}${' '.repeat(barWidth - filled)}]${tail}`;
}

export interface ProgressMeterOptions {
  total: number | undefined;
  /** Writes to the terminal (stderr). */
  write: (text: string) => void;
  now?: () => number;
  width?: number;
  /** Nothing is drawn for downloads shorter than this (default 500 ms). */
  delayMs?: number;
  /** Redraw at most this often (default 200 ms). */
  intervalMs?: number;
}

export class ProgressMeter {
  readonly #options: ProgressMeterOptions;
  readonly #now: () => number;
  readonly #start: number;
  #received = 0;
  #lastDraw = -Infinity;
  #shown = false;

  constructor(options: ProgressMeterOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#start = this.#now();
  }

  /** Whether the bar was drawn at least once. */
  get shown(): boolean {
    return this.#shown;
  }

  update(bytes: number): void {
    this.#received += bytes;
    const now = this.#now();
    if (now - this.#start < (this.#options.delayMs ?? 500)) return;
    if (now - this.#lastDraw < (this.#options.intervalMs ?? 200)) return;
    this.#draw(now);
  }

  /** Draws the final state and ends the line, if the bar was shown. */
  finish(): void {
    if (!this.#shown) return;
    this.#draw(this.#now());
    this.#options.write('\n');
  }

  #draw(now: number): void {
    this.#lastDraw = now;
    this.#shown = true;
    const width = (this.#options.width ?? 80) - 1;
    const line = renderProgress(
      { received: this.#received, total: this.#options.total, elapsedMs: now - this.#start },
      width,
    );
    // Back to the line start, draw, erase the rest of the line.
    this.#options.write(`\r${line}\x1b[K`);
  }
}
