import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { describeError, fieldOf, retryDelay } from "./errors";

describe("errors a person understands", () => {
  it("sends a refused token back to sign-in, with the gateway's reason", () => {
    expect(describeError(new ConnectError("Jwt is expired", Code.Unauthenticated))).toEqual({
      kind: "signin",
      message: "Jwt is expired",
    });
  });

  it.each([
    [Code.PermissionDenied, "this needs the stock_manager role"],
    [Code.NotFound, "no hold for reservation 'r-1'"],
    [Code.AlreadyExists, "you already hold reservation r-1 of book 'momo'"],
    [Code.FailedPrecondition, "a PICKED_UP reservation cannot be canceled: return it"],
    [Code.ResourceExhausted, "too many requests"],
    [Code.InvalidArgument, "reservation_id must be 1 to 64 characters"],
  ])("shows the API's own message for code %i (not Connect's [code] prefix)", (code, message) => {
    const problem = describeError(new ConnectError(message, code));
    expect(problem).toEqual({ kind: "refused", code, message });
  });

  it("says unreachable for an unavailable service and for a request that never reached a server", () => {
    expect(describeError(new ConnectError("no healthy upstream", Code.Unavailable)).kind).toBe("unreachable");
    const offline = new ConnectError("Failed to fetch", Code.Unknown, undefined, undefined, new TypeError("Failed to fetch"));
    expect(describeError(offline).kind).toBe("unreachable");
    expect(describeError(new TypeError("Failed to fetch")).kind).toBe("unreachable");
  });

  it("does not call a server's own unknown error unreachable", () => {
    expect(describeError(new ConnectError("boom", Code.Unknown)).kind).toBe("refused");
  });

  it("puts a validation message beside the field it names", () => {
    const fields = ["email", "phone", "channels", "language"];
    const problem = describeError(
      new ConnectError("email: 'x' is not an email address like name@example.com", Code.InvalidArgument),
      fields,
    );
    expect(problem).toMatchObject({ kind: "refused", field: "email", message: "email: 'x' is not an email address like name@example.com" });
    expect(fieldOf("channels: 'messenger' needs a phone number (set phone)", fields)).toBe("channels");
    expect(fieldOf("quantity must be 1 to 100000", ["book_id", "title", "quantity"])).toBe("quantity");
    expect(fieldOf("title is required on a book's first receipt", ["book_id", "title", "quantity"])).toBe("title");
  });

  it("names no field for a message about something else, or for a code other than InvalidArgument", () => {
    expect(fieldOf("reservation_id must be 1 to 64 characters", ["email"])).toBeUndefined();
    expect(fieldOf("Email: capitalised is not a field name", ["email"])).toBeUndefined();
    const notFound = describeError(new ConnectError("email: gone", Code.NotFound), ["email"]);
    expect(notFound).not.toHaveProperty("field");
  });

  it("retries with a doubling delay, capped", () => {
    expect([0, 1, 2, 3].map(retryDelay)).toEqual([500, 1000, 2000, 4000]);
    expect(retryDelay(10)).toBe(8000);
  });
});
