/**
 * A progress indicator for the admin CLI's long operations (redrive, disconnect, tenant create): one line on stderr,
 * redrawn in place, only when stderr is a terminal (pipes and CI logs stay clean). Written by hand: a spinner
 * library for one redrawn line is more than it saves.
 */

export interface Progress {
  /** The total, once known. */
  setTotal(total: number): void;
  /** `n` more done (default 1), or a new step label. */
  tick(n?: number, step?: string): void;
  /** Clears the line. */
  done(): void;
}

export type ProgressFactory = (label: string) => Progress;

export const noProgress: ProgressFactory = () => ({ setTotal() {}, tick() {}, done() {} });

const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** Progress on a TTY stream (stderr); nothing otherwise. */
export function ttyProgress(stream: NodeJS.WriteStream = process.stderr): ProgressFactory {
  if (!stream.isTTY) return noProgress;
  return (label) => {
    let total: number | undefined;
    let count = 0;
    let step = '';
    let frame = 0;
    const draw = () => {
      const spinner = frames[frame++ % frames.length] ?? '';
      const amount = total === undefined ? (count > 0 ? ` ${count}` : '') : ` ${count}/${total}`;
      stream.write(`\r\x1b[2K${spinner} ${label}${amount}${step ? ` ${step}` : ''}`);
    };
    const timer = setInterval(draw, 100);
    timer.unref();
    draw();
    return {
      setTotal(n) {
        total = n;
        draw();
      },
      tick(n = 1, label) {
        count += n;
        if (label !== undefined) step = label;
        draw();
      },
      done() {
        clearInterval(timer);
        stream.write('\r\x1b[2K');
      },
    };
  };
}
