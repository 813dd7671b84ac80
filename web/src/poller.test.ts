import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { poll, type PollHandlers } from "./poller";

/** Handlers whose load answers from `answers` in turn (an Error is thrown); records what they saw. */
function scripted(answers: (number | Error)[], every?: (n: number) => number | undefined) {
  const seen: string[] = [];
  let calls = 0;
  const handlers: PollHandlers<number> = {
    load: async () => {
      const answer = answers[Math.min(calls++, answers.length - 1)];
      if (answer instanceof Error) throw answer;
      return answer;
    },
    every,
    onData: (n) => seen.push(`data ${n}`),
    onUnreachable: (down) => seen.push(down ? "down" : "up"),
    onSignIn: (m) => seen.push(`signin ${m}`),
    onRefused: (m) => seen.push(`refused ${m}`),
  };
  return { handlers: () => handlers, seen, calls: () => calls };
}

const unavailable = () => new ConnectError("no healthy upstream", Code.Unavailable);

describe("the poll loop", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("loads again after the interval the data asks for", async () => {
    const s = scripted([1, 2, 3], (n) => (n === 1 ? 400 : 2500));
    const stop = poll(s.handlers);
    await vi.advanceTimersByTimeAsync(0);
    expect(s.seen).toEqual(["data 1"]);
    await vi.advanceTimersByTimeAsync(399);
    expect(s.calls()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(s.seen).toEqual(["data 1", "data 2"]);
    await vi.advanceTimersByTimeAsync(2500);
    expect(s.seen).toEqual(["data 1", "data 2", "data 3"]);
    stop();
  });

  it("says unreachable once, retries with a growing delay, and says so when it is back", async () => {
    const s = scripted([unavailable(), unavailable(), unavailable(), 7]);
    const stop = poll(s.handlers);
    await vi.advanceTimersByTimeAsync(0);
    expect(s.seen).toEqual(["down"]);
    await vi.advanceTimersByTimeAsync(500); // first retry after 0.5 s
    expect(s.calls()).toBe(2);
    await vi.advanceTimersByTimeAsync(999); // the second waits 1 s
    expect(s.calls()).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(s.calls()).toBe(3);
    await vi.advanceTimersByTimeAsync(2000);
    expect(s.seen).toEqual(["down", "up", "data 7"]);
    stop();
  });

  it("stops at a refused token and sends the person to sign in", async () => {
    const s = scripted([new ConnectError("Jwt is expired", Code.Unauthenticated)], () => 400);
    poll(s.handlers);
    await vi.advanceTimersByTimeAsync(5000);
    expect(s.seen).toEqual(["signin Jwt is expired"]);
    expect(s.calls()).toBe(1);
  });

  it("stops at any other refusal with the API's message", async () => {
    const s = scripted([new ConnectError("this needs the customer role", Code.PermissionDenied)], () => 400);
    poll(s.handlers);
    await vi.advanceTimersByTimeAsync(5000);
    expect(s.seen).toEqual(["refused this needs the customer role"]);
    expect(s.calls()).toBe(1);
  });

  it("loads nothing more once stopped, and clears its unreachable notice", async () => {
    const s = scripted([unavailable()]);
    const stop = poll(s.handlers);
    await vi.advanceTimersByTimeAsync(0);
    stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(s.calls()).toBe(1);
    expect(s.seen).toEqual(["down", "up"]);
  });
});
