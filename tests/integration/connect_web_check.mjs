// The browser app's own client library against the gateway, run by Node.js from
// test_gateway_web.py (web/node_modules, from `make web`): Connect-Web's gRPC-Web
// transport, the service descriptor read from the descriptor set, one call of each kind.
// Prints one JSON line: what the client saw.
import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

const [baseUrl, descriptorSet, token] = process.argv.slice(2);
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSet)));
const client = createClient(
  registry.getService("bookrental.reservation.v1.ReservationService"),
  createGrpcWebTransport({ baseUrl }),
);

async function outcome(call) {
  try {
    return { ok: await call() };
  } catch (e) {
    const err = ConnectError.from(e);
    return { code: Code[err.code], message: err.rawMessage };
  }
}

const bearer = (t) => ({ headers: { authorization: `Bearer ${t}` } });
console.log(JSON.stringify({
  books: await outcome(async () => (await client.listBooks({ pageSize: 100 })).books.map((b) => b.title)),
  anonymous: await outcome(() => client.listReservations({})),
  badToken: await outcome(() => client.listReservations({}, bearer("not-a-jwt"))),
  mine: await outcome(async () => (await client.listReservations({}, bearer(token))).reservations.length),
}));
