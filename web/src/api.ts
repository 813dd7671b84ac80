// The API clients, on the services generated from protos/, speaking gRPC-Web to the
// gateway at this page's origin. Every call carries the session's token.
import { create } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AlertService } from "@gen/bookrental/alert/v1/alert_pb";
import {
  ListBooksRequestSchema,
  ReservationService,
  type Book,
  type ListBooksRequest,
} from "@gen/bookrental/reservation/v1/reservation_pb";
import { StockService } from "@gen/bookrental/stock/v1/stock_pb";

export interface Api {
  reservations: Client<typeof ReservationService>;
  stock: Client<typeof StockService>;
  alerts: Client<typeof AlertService>;
}

/** Clients whose calls carry `authorization: Bearer <token()>` when token() gives one. */
export function createApi(baseUrl: string, token: () => string | undefined, fetcher?: typeof fetch): Api {
  const bearer: Interceptor = (next) => (req) => {
    const t = token();
    if (t) req.header.set("authorization", `Bearer ${t}`);
    return next(req);
  };
  const transport = createGrpcWebTransport({
    baseUrl,
    interceptors: [bearer],
    ...(fetcher ? { fetch: fetcher } : {}),
  });
  return {
    reservations: createClient(ReservationService, transport),
    stock: createClient(StockService, transport),
    alerts: createClient(AlertService, transport),
  };
}

/** Whether this build's ListBooksRequest has the `query` field (the server-side search). */
export const SERVER_SEARCH = ListBooksRequestSchema.fields.some((f) => f.localName === "query");

/** A ListBooks request for one page, searching `query` on the server when the contract has it. */
export function listBooksRequest(query: string, pageToken: string, pageSize: number): ListBooksRequest {
  const request = create(ListBooksRequestSchema, { pageToken, pageSize });
  if (SERVER_SEARCH && query) (request as unknown as Record<string, unknown>).query = query;
  return request;
}

/**
 * The search's rule (a case-insensitive substring of the title or the book id), applied here
 * only when the server cannot search (a ListBooksRequest without `query`).
 */
export function matchesSearch(book: Pick<Book, "bookId" | "title">, query: string): boolean {
  const q = query.trim().toLowerCase();
  return !q || book.title.toLowerCase().includes(q) || book.bookId.toLowerCase().includes(q);
}

export class DevSignInError extends Error {}

/** Development sign-in: POST /dev/token (only development gateways have it). */
export async function devSignIn(
  user: string,
  role: string,
  fetcher: typeof fetch = fetch,
): Promise<{ token: string; expiresIn: number }> {
  const response = await fetcher("/dev/token", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ user, role }),
  });
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok || typeof body.token !== "string") {
    throw new DevSignInError(typeof body.message === "string" ? body.message : `HTTP ${response.status}`);
  }
  return { token: body.token, expiresIn: typeof body.expiresIn === "number" ? body.expiresIn : 3600 };
}
