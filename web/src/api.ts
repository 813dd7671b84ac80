// The API clients, on the services generated from protos/, speaking gRPC-Web to the
// gateway at this page's origin. Every call carries the session's token.
import { create } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AlertService } from "@gen/bookrental/alert/v1/alert_pb";
import { ListBooksRequestSchema, ReservationService, type ListBooksRequest } from "@gen/bookrental/reservation/v1/reservation_pb";
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

/** A ListBooks request for one page of the books whose title or id contains `query` (ignoring case). */
export function listBooksRequest(query: string, pageToken: string, pageSize: number): ListBooksRequest {
  return create(ListBooksRequestSchema, { query: query.trim(), pageToken, pageSize });
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
