// What a failed call means to the person at the page: sign in again, a message from the
// API (beside the field it names, when it names one), or "unreachable; retrying".
import { Code, ConnectError } from "@connectrpc/connect";

export type Problem =
  /** The token is missing, expired or refused (401): back to sign-in, with the reason. */
  | { kind: "signin"; message: string }
  /** The gateway or a service cannot be reached (offline, 503): say so and retry. */
  | { kind: "unreachable"; message: string }
  /** The API refused the request (400/403/404/409/429...): its message, and the field it names. */
  | { kind: "refused"; code: Code; message: string; field?: string };

/**
 * The form field an API message is about: it starts with the field's name ("email: 'x' is not
 * an email address", "quantity must be 1 to 100000"); `fields` are the form's fields.
 */
export function fieldOf(message: string, fields: readonly string[]): string | undefined {
  const match = /^([a-z_][a-z0-9_]*)(?::\s|\s)/.exec(message);
  return match && fields.includes(match[1]) ? match[1] : undefined;
}

/** A fetch that never reached a server rejects with a TypeError, which Connect wraps as Unknown. */
function isNetworkFailure(err: ConnectError): boolean {
  return err.code === Code.Unknown && err.cause instanceof TypeError;
}

/** The Problem behind any error a call threw; `fields` are the fields of the form that sent it. */
export function describeError(error: unknown, fields: readonly string[] = []): Problem {
  const err = ConnectError.from(error);
  const message = err.rawMessage;
  if (err.code === Code.Unauthenticated) return { kind: "signin", message };
  if (err.code === Code.Unavailable || err.code === Code.DeadlineExceeded || isNetworkFailure(err)) {
    return { kind: "unreachable", message };
  }
  const field = err.code === Code.InvalidArgument ? fieldOf(message, fields) : undefined;
  return field ? { kind: "refused", code: err.code, message, field } : { kind: "refused", code: err.code, message };
}

/** Delay before retry number `attempt` (0, 1, ...): doubling from 500 ms, at most 8 s. */
export function retryDelay(attempt: number): number {
  return Math.min(500 * 2 ** Math.max(0, attempt), 8000);
}
