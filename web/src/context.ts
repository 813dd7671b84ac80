// What every page shares: the API, the language, and where problems go.
import { createContext } from "preact";
import { useContext, useEffect, useRef, useState } from "preact/hooks";
import type { Api } from "./api";
import { format, type Lang, type MessageKey } from "./i18n";
import { poll } from "./poller";

export interface AppContext {
  api: Api;
  lang: Lang;
  user: string;
  t: (key: MessageKey, values?: Record<string, string | number>) => string;
  /** A call failed for want of a valid token: back to sign-in with `message`. */
  signOut: (message?: string) => void;
  /** Whether the service is unreachable now (shown once, at the top of the page). */
  setUnreachable: (source: string, down: boolean) => void;
  /** The customer saved a notification language (used for the page when none was chosen). */
  setPreferredLanguage: (language: string | undefined) => void;
}

export const Ctx = createContext<AppContext | null>(null);

export function useApp(): AppContext {
  const ctx = useContext(Ctx);
  if (!ctx) throw new Error("useApp outside the signed-in app");
  return ctx;
}

export function translator(lang: Lang) {
  return (key: MessageKey, values?: Record<string, string | number>) => format(lang, key, values);
}

export interface Loaded<T> {
  data: T | undefined;
  /** The API's message when it refused the load (403, 404...). */
  error: string | undefined;
  reload: () => void;
}

/**
 * Loads with `load` now, again after `every(data)` ms (undefined: once), and after
 * reload(). Unreachable: says so and retries with backoff; 401: back to sign-in.
 */
export function useLoad<T>(
  source: string,
  load: () => Promise<T>,
  deps: readonly unknown[],
  every?: (data: T) => number | undefined,
): Loaded<T> {
  const app = useApp();
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [generation, setGeneration] = useState(0);
  const latest = useRef({ load, every, app });
  latest.current = { load, every, app };

  useEffect(
    () =>
      poll(() => ({
        load: latest.current.load,
        every: latest.current.every,
        onData: (value: T) => {
          setData(value);
          setError(undefined);
        },
        onUnreachable: (down) => latest.current.app.setUnreachable(source, down),
        onSignIn: (message) => latest.current.app.signOut(message),
        onRefused: setError,
      })),
    [...deps, generation],
  );

  return { data, error, reload: () => setGeneration((g) => g + 1) };
}
