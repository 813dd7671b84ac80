// The loop behind every page's data: load, then again after `every(data)` ms; while the
// service is unreachable, say so and retry with a growing delay; a refused token ends it
// with sign-in; any other refusal ends it with the API's message.
import { describeError, retryDelay } from "./errors";

export interface PollHandlers<T> {
  load: () => Promise<T>;
  /** Milliseconds until the next load after this data; undefined: load once. */
  every?: (data: T) => number | undefined;
  onData: (data: T) => void;
  onUnreachable: (down: boolean) => void;
  onSignIn: (message: string) => void;
  onRefused: (message: string) => void;
}

/** Starts the loop; returns its stop. `timers` is for tests. */
export function poll<T>(
  handlers: () => PollHandlers<T>,
  timers: { set: (f: () => void, ms: number) => unknown; clear: (id: unknown) => void } = {
    set: (f, ms) => setTimeout(f, ms),
    clear: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
  },
): () => void {
  let stopped = false;
  let timer: unknown;
  let failures = 0;
  let down = false;
  const run = async () => {
    const h = handlers();
    try {
      const data = await h.load();
      if (stopped) return;
      failures = 0;
      if (down) h.onUnreachable((down = false));
      h.onData(data);
      const next = h.every?.(data);
      if (next !== undefined) timer = timers.set(run, next);
    } catch (err) {
      if (stopped) return;
      const problem = describeError(err);
      if (problem.kind === "signin") {
        h.onSignIn(problem.message);
      } else if (problem.kind === "unreachable") {
        if (!down) h.onUnreachable((down = true));
        timer = timers.set(run, retryDelay(failures++));
      } else {
        h.onRefused(problem.message);
      }
    }
  };
  void run();
  return () => {
    stopped = true;
    timers.clear(timer);
    if (down) handlers().onUnreachable(false);
  };
}
