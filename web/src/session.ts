// The signed-in session, kept in sessionStorage (this tab only; never in a URL, never logged).

export const SESSION_KEY = "bookrental.session";

export interface Session {
  token: string;
  user: string;
  roles: string[];
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

/** The part of the Storage API we use (sessionStorage; a Map-backed fake in tests). */
export type KeyValueStore = Pick<Storage, "getItem" | "setItem" | "removeItem">;

/** A session for a token valid `expiresIn` seconds from `now` (ms). */
export function newSession(token: string, user: string, roles: string[], expiresIn: number, now: number): Session {
  return { token, user, roles, expiresAt: now + expiresIn * 1000 };
}

export function saveSession(store: KeyValueStore, session: Session): void {
  store.setItem(SESSION_KEY, JSON.stringify(session));
}

export function clearSession(store: KeyValueStore): void {
  store.removeItem(SESSION_KEY);
}

function isSession(value: unknown): value is Session {
  const s = value as Session;
  return (
    typeof s === "object" &&
    s !== null &&
    typeof s.token === "string" &&
    s.token !== "" &&
    typeof s.user === "string" &&
    Array.isArray(s.roles) &&
    s.roles.every((r) => typeof r === "string") &&
    typeof s.expiresAt === "number"
  );
}

/**
 * The stored session, or null when there is none, it is malformed, or it expires within
 * `marginMs` of `now` (an expired or unreadable one is removed).
 */
export function loadSession(store: KeyValueStore, now: number, marginMs = 5000): Session | null {
  const raw = store.getItem(SESSION_KEY);
  if (raw === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    value = null;
  }
  if (!isSession(value) || value.expiresAt - marginMs <= now) {
    clearSession(store);
    return null;
  }
  return value;
}

/** The claims of a JWT's payload (not verified: the gateway verifies; the app only reads who). */
export function jwtClaims(token: string): Record<string, unknown> {
  const part = token.split(".")[1];
  if (!part) return {};
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4)), (c) => c.charCodeAt(0));
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims === "object" && claims !== null ? (claims as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** A token's roles claim: one comma-separated string (tools/token.py), or an array from other issuers. */
export function rolesOf(claims: Record<string, unknown>): string[] {
  const roles = claims.roles;
  if (typeof roles === "string") return roles.split(",").map((r) => r.trim()).filter(Boolean);
  if (Array.isArray(roles)) return roles.filter((r): r is string => typeof r === "string");
  return [];
}
