import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import {
  BookSchema,
  ListBooksRequestSchema,
  ListBooksResponseSchema,
  ReservationStatus,
  CreateReservationRequestSchema,
  CreateReservationResponseSchema,
} from "@gen/bookrental/reservation/v1/reservation_pb";
import { describe, expect, it } from "vitest";
import { createApi, devSignIn, listBooksRequest } from "./api";
import { describeError } from "./errors";

function frame(flags: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + data.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}

/** A gRPC-Web answer: one message (if any) and the trailer. */
function grpcWeb(message: Uint8Array | undefined, trailer: string): Response {
  const parts = [...(message ? [frame(0, message)] : []), frame(0x80, new TextEncoder().encode(trailer))];
  const body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    body.set(p, at);
    at += p.length;
  }
  return new Response(body, { status: 200, headers: { "content-type": "application/grpc-web+proto" } });
}

function recorder(answer: () => Response) {
  const calls: { url: string; headers: Headers; body: Uint8Array }[] = [];
  const fetcher = (async (input: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(input), headers: new Headers(init?.headers), body: new Uint8Array(init?.body as ArrayBuffer) });
    return answer();
  }) as typeof fetch;
  return { fetcher, calls };
}

describe("the generated client over gRPC-Web", () => {
  it("posts to the service's method path with the session's bearer token", async () => {
    const books = toBinary(ListBooksResponseSchema, create(ListBooksResponseSchema, { books: [create(BookSchema, { bookId: "momo", title: "Momo", available: 2 })] }));
    const { fetcher, calls } = recorder(() => grpcWeb(books, "grpc-status: 0\r\n"));
    const api = createApi("https://app.example", () => "tok-1", fetcher);
    const answer = await api.reservations.listBooks(listBooksRequest("", "", 10));
    expect(answer.books.map((b) => [b.bookId, b.title, b.available])).toEqual([["momo", "Momo", 2]]);
    expect(calls[0].url).toBe("https://app.example/bookrental.reservation.v1.ReservationService/ListBooks");
    expect(calls[0].headers.get("authorization")).toBe("Bearer tok-1");
    expect(calls[0].headers.get("content-type")).toBe("application/grpc-web+proto");
    const sent = fromBinary(ListBooksRequestSchema, calls[0].body.subarray(5));
    expect(sent.pageSize).toBe(10);
  });

  it("sends no authorization header when signed out", async () => {
    const { fetcher, calls } = recorder(() => grpcWeb(toBinary(ListBooksResponseSchema, create(ListBooksResponseSchema)), "grpc-status: 0\r\n"));
    await createApi("https://app.example", () => undefined, fetcher).reservations.listBooks({});
    expect(calls[0].headers.has("authorization")).toBe(false);
  });

  it("sends the waitlist choice and request id of a reservation", async () => {
    const reply = toBinary(CreateReservationResponseSchema, create(CreateReservationResponseSchema, { reservation: { reservationId: "r-1", status: ReservationStatus.REQUESTED } }));
    const { fetcher, calls } = recorder(() => grpcWeb(reply, "grpc-status: 0\r\n"));
    const answer = await createApi("https://app.example", () => "t", fetcher).reservations.createReservation({ bookId: "momo", requestId: "q-1", waitlist: true });
    expect(answer.reservation?.status).toBe(ReservationStatus.REQUESTED);
    const sent = fromBinary(CreateReservationRequestSchema, calls[0].body.subarray(5));
    expect([sent.bookId, sent.requestId, sent.waitlist]).toEqual(["momo", "q-1", true]);
  });

  it("turns the gateway's grpc-status into the Problem a person sees", async () => {
    const { fetcher } = recorder(() => grpcWeb(undefined, "grpc-status: 9\r\ngrpc-message: a%20PICKED_UP%20reservation%20cannot%20be%20canceled\r\n"));
    const api = createApi("https://app.example", () => "t", fetcher);
    const err = await api.reservations.cancelReservation({ reservationId: "r-1" }).catch((e: unknown) => e);
    expect(describeError(err)).toEqual({ kind: "refused", code: Code.FailedPrecondition, message: "a PICKED_UP reservation cannot be canceled" });
  });

  it("calls a gateway that cannot be reached unreachable", async () => {
    const fetcher = (async () => {
      throw new TypeError("Failed to fetch");
    }) as typeof fetch;
    const err = await createApi("https://app.example", () => "t", fetcher).reservations.listBooks({}).catch((e: unknown) => e);
    expect(describeError(err).kind).toBe("unreachable");
  });

  it("maps a 401 without gRPC trailers (the gateway's JWT check) to sign-in", async () => {
    const { fetcher } = recorder(() => new Response("Jwt is expired", { status: 401 }));
    const err = await createApi("https://app.example", () => "t", fetcher).reservations.listReservations({}).catch((e: unknown) => e);
    expect(describeError(err).kind).toBe("signin");
  });
});

describe("search", () => {
  it("sends the search box's text as ListBooks' query, with the page token", async () => {
    const { fetcher, calls } = recorder(() => grpcWeb(toBinary(ListBooksResponseSchema, create(ListBooksResponseSchema)), "grpc-status: 0\r\n"));
    await createApi("https://app.example", () => undefined, fetcher).reservations.listBooks(listBooksRequest("  Momo ", "tok-2", 10));
    const sent = fromBinary(ListBooksRequestSchema, calls[0].body.subarray(5));
    expect([sent.query, sent.pageToken, sent.pageSize]).toEqual(["Momo", "tok-2", 10]);
  });
});

describe("development sign-in", () => {
  it("posts the user and role as JSON and returns the token", async () => {
    let sent: unknown;
    const fetcher = (async (_: RequestInfo | URL, init?: RequestInit) => {
      sent = JSON.parse(String(init?.body));
      return Response.json({ token: "jwt", expiresIn: 3600 });
    }) as typeof fetch;
    expect(await devSignIn("alice", "customer", fetcher)).toEqual({ token: "jwt", expiresIn: 3600 });
    expect(sent).toEqual({ user: "alice", role: "customer" });
  });
  it("shows the endpoint's message for a bad user or role", async () => {
    const fetcher = (async () => Response.json({ code: 400, message: "role must be customer or stock_manager" }, { status: 400 })) as typeof fetch;
    await expect(devSignIn("alice", "admin", fetcher)).rejects.toThrow("role must be customer or stock_manager");
  });
});
